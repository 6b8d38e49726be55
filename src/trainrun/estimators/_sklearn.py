"""The scikit-learn contract, shared by every estimator: ``fit`` / ``predict`` / ``score``.

tf.estimator's verbs take input functions; scikit-learn's take the data. This mixin
maps the second onto the first, so that a trainrun estimator works in a ``Pipeline``,
under ``GridSearchCV`` and in ``cross_val_score``:

* ``fit(X, y, sample_weight=None)`` trains a fresh model (a new temporary model
  directory each call, or ``model_dir`` when it holds no checkpoint yet) on ``X``: a
  pandas DataFrame (columns found by name), a 2-D array (columns taken in the order of
  the feature columns' raw keys, or ``x0 .. x{n-1}`` when the estimator infers its
  columns) or a dict of arrays;
* ``predict``, ``predict_proba`` / ``decision_function`` (classifiers), ``score``
  (accuracy, or R²), with ``classes_``, ``n_features_in_`` and ``feature_names_in_``.

scikit-learn itself is not needed to call these; it is imported only to build its tags.

>>> import numpy as np, trainrun as tr
>>> est = tr.DNNClassifier(hidden_units=[8], feature_columns=[tr.numeric_column("a")])
>>> est.fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1], epochs=2).classes_  # doctest: +SKIP
array([0, 1])
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import InputError, ModelDirError, NotTrainedError, UsageError

__all__ = ["NotFittedError", "ScikitLearnMixin"]

#: Keys the mixin adds to the data it hands to input_fn (never a user's column name).
LABEL_KEY = "__trainrun_y__"
WEIGHT_KEY = "__trainrun_sample_weight__"


class NotFittedError(NotTrainedError, ValueError):
    """predict / score before fit (also a ValueError, as scikit-learn's NotFittedError)."""


_NOT_FITTED: list[type] = []


def _not_fitted_class() -> type:
    """NotFittedError, also scikit-learn's NotFittedError when scikit-learn is in use."""
    import sys

    if "sklearn" not in sys.modules:
        return NotFittedError
    if not _NOT_FITTED:
        from sklearn.exceptions import NotFittedError as SklearnNotFitted

        _NOT_FITTED.append(
            type("NotFittedError", (NotFittedError, SklearnNotFitted), {"__module__": __name__})
        )
    return _NOT_FITTED[0]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _warn_column_vector(cls: str) -> None:
    import warnings

    try:
        from sklearn.exceptions import DataConversionWarning as category
    except ImportError:  # scikit-learn is optional: its warning class when it is there
        category = UserWarning  # type: ignore[assignment,misc]
    warnings.warn(
        f"A column-vector y was passed when a 1d array was expected by {cls}: y is raveled "
        "to shape (n_samples,). Pass y.ravel() to silence this.",
        category,
        stacklevel=4,
    )


def _num_samples(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    if isinstance(X, Mapping):
        return len(next(iter(X.values()))) if X else 0
    try:
        return len(X) if hasattr(X, "__len__") else int(np.asarray(X).shape[0])
    except (TypeError, IndexError):
        raise UsageError(
            f"X must be a DataFrame, a 2-D array or a dict of columns. Received: {type(X).__name__}"
        ) from None


def _check_array(arr: np.ndarray, cls: str, allow_nan: bool) -> None:
    """scikit-learn's checks on a plain 2-D array, before its columns get names."""
    if arr.shape[1] == 0:
        raise UsageError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is "
            f"required by {cls}."
        )
    if arr.shape[0] == 0:
        raise UsageError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is "
            f"required by {cls}."
        )
    if arr.dtype.kind in "fiub" and not allow_nan and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr.astype(np.float64)).any() else "infinity"
        raise UsageError(
            f"Input X contains {bad}; {cls} needs finite values: impute them first (e.g. "
            "sklearn.impute.SimpleImputer)."
        )


class _ClassifierOnly:
    """A method that exists only on classifiers (``hasattr(regressor, 'predict_proba')`` is
    False, as scikit-learn expects)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: Any, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        if obj._estimator_type != "classifier":
            raise AttributeError(f"{type(obj).__name__} is a regressor: it has no {self.name}().")
        return self.fn.__get__(obj, owner)


class ScikitLearnMixin:
    """``fit`` / ``predict`` / ``score`` over the estimator's own train / predict.

    The host class provides ``train(input_fn, steps=...)``, ``_prediction_batches(fn,
    keys)``, ``_estimator_type`` and either feature columns (``_declared_columns()``) or
    column inference from the data (``_infer_columns(frame)``).
    """

    # ------------------------------------------------------------ settings
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor's settings, as given (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Change settings before training; unknown names raise UsageError (a ValueError)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise UsageError(
                    f"{type(self).__name__} has no parameter {name!r}. Valid parameters: {valid}."
                )
            setattr(self, name, value)
        self._forget_fitted()
        return self

    def _forget_fitted(self) -> None:
        """Drop what training learned, after settings changed (each family says what)."""

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)  # type: ignore[misc]
        parts = []
        for p in sig.parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            value = getattr(self, p.name)
            if p.default is p.empty or not _same(value, p.default):
                parts.append(f"{p.name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    _estimator_type: str = ""
    #: Examples per step of fit() when not given.
    _fit_batch_size: int = 128

    # ------------------------------------------------------------ tags and state
    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        tags = Tags(
            estimator_type=self._estimator_type or None,
            target_tags=TargetTags(required=True),
            input_tags=InputTags(
                two_d_array=True, categorical=True, string=True, allow_nan=self._allows_nan()
            ),
        )
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        elif self._estimator_type == "regressor":
            tags.regressor_tags = RegressorTags()
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self, verb: str) -> None:
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_class()(
                f"This {type(self).__name__} instance is not fitted yet: call fit(X, y) before "
                f"{verb}(). (An estimator trained with train() predicts with predict(input_fn)"
                " or predict_frame(input_fn).)"
            )

    # ------------------------------------------------------------ data in
    def _declared_columns(self) -> list[Any] | None:
        """The feature columns the settings declare (None: inferred from the data at fit)."""
        from trainrun.modules._build import union_columns

        return union_columns(self._columns())  # type: ignore[attr-defined]

    def _infer_columns(self, frame: Any) -> list[Any]:
        from trainrun.feature_columns import columns_from_frame

        return columns_from_frame(frame)

    def _frame(self, X: Any, fitting: bool) -> Any:
        """X as a DataFrame with the column names the feature columns read."""
        import pandas as pd

        cls = type(self).__name__
        if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError(
                f"{cls} does not take sparse input; pass a dense array or DataFrame "
                "(X.toarray()). Received: a scipy sparse matrix"
            )
        if isinstance(X, Mapping):
            X = pd.DataFrame({str(k): np.asarray(v) for k, v in X.items()})
        elif not isinstance(X, pd.DataFrame) and not hasattr(X, "shape"):
            X = np.asarray(X)  # lists and other array-likes
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            frame = X.copy(deep=False)
            frame.columns = names
            named = all(isinstance(c, str) for c in X.columns)
        else:
            arr = np.asarray(X)
            if arr.dtype.kind == "c":
                raise UsageError(f"Complex data not supported by {cls}. Received: X of {arr.dtype}")
            if arr.ndim != 2:
                raise UsageError(
                    f"Expected 2D array, got {arr.ndim}D array instead: {cls} takes X of shape "
                    "(n_samples, n_features). Reshape your data with X.reshape(-1, 1) for one "
                    "feature or X.reshape(1, -1) for one sample."
                )
            _check_array(arr, cls, self._allows_nan())
            names = self._array_names(arr.shape[1], fitting)
            frame = pd.DataFrame({n: arr[:, i] for i, n in enumerate(names)})
            named = False
        if frame.shape[1] == 0:
            raise UsageError(
                f"Found array with 0 feature(s) (shape={frame.shape}) while a minimum of 1 is "
                f"required by {cls}."
            )
        if frame.shape[0] == 0:
            raise UsageError(
                f"Found array with 0 sample(s) (shape={frame.shape}) while a minimum of 1 is "
                f"required by {cls}."
            )
        self._check_values(frame, names)
        self._check_names(frame, names, named, fitting)
        return frame

    def _check_values(self, frame: Any, names: list[str]) -> None:
        cls = type(self).__name__
        for name in names:
            col = frame[name]
            if col.dtype.kind == "c":
                raise UsageError(f"Complex data not supported by {cls}. Received: column {name!r}")
            if col.dtype.kind in "fiub":
                values = col.to_numpy(dtype=np.float64)
                if not np.isfinite(values).all() and not self._allows_nan():
                    bad = "NaN" if np.isnan(values).any() else "infinity"
                    raise UsageError(
                        f"Input X contains {bad} (column {name!r}); {cls} needs finite values: "
                        "impute them first (e.g. sklearn.impute.SimpleImputer)."
                    )

    def _check_names(self, frame: Any, names: list[str], named: bool, fitting: bool) -> None:
        cls = type(self).__name__
        if fitting:
            self.n_features_in_ = len(names)
            if named:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            expected = getattr(self, "feature_names_in_", None)
            if named and expected is not None:
                missing = [n for n in expected if n not in names]
                if missing:
                    raise UsageError(
                        f"The feature names should match those that were passed during fit: "
                        f"{cls} was fitted on {list(expected)}, X lacks {missing}."
                    )
            elif not named and frame.shape[1] != self.n_features_in_:
                raise UsageError(
                    f"X has {frame.shape[1]} features, but {cls} is expecting "
                    f"{self.n_features_in_} features as input."
                )

    def _allows_nan(self) -> bool:
        return False

    def _array_names(self, n: int, fitting: bool) -> list[str]:
        """Names for the columns of a plain array: the raw keys in order, or x0 .. x{n-1}."""
        cls = type(self).__name__
        if not fitting:
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and len(fitted) == n:
                return [str(f) for f in fitted]
            keys = getattr(self, "_array_keys_", None)
            if keys is not None and len(keys) == n:
                return list(keys)
            raise UsageError(
                f"X has {n} features, but {cls} is expecting {self.n_features_in_} features as "
                "input."
            )
        declared = self._declared_columns()
        if declared is None:
            return [f"x{i}" for i in range(n)]
        from trainrun.feature_columns import FeatureTransform

        keys = list(FeatureTransform(declared).required_keys)
        if len(keys) != n:
            raise UsageError(
                f"X has {n} features, but {cls}'s feature columns read {len(keys)} raw keys "
                f"{keys}: pass a DataFrame with those columns, or an array with one column per "
                "key in that order."
            )
        return keys

    def _target(self, y: Any, n: int) -> np.ndarray:
        cls = type(self).__name__
        if y is None or (isinstance(y, str) and y == "no_validation"):
            raise UsageError(f"{cls} requires y to be passed, but the target y is None: fit(X, y).")
        arr = np.asarray(y)
        if arr.ndim == 0:
            raise UsageError(f"y should be a 1d array, got a scalar {arr!r} instead.")
        if arr.ndim == 2 and arr.shape[1] == 1 and self._label_width() == 1:
            _warn_column_vector(cls)
            arr = arr[:, 0]
        if arr.shape[0] != n:
            raise UsageError(
                f"Found input variables with inconsistent numbers of samples: X has {n} rows, "
                f"y has {arr.shape[0]}."
            )
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise UsageError(f"Input y contains NaN or infinity; {cls} needs finite targets.")
        return arr

    def _label_width(self) -> int:
        return int(getattr(self, "label_dimension", 1) or 1)

    # ------------------------------------------------------------ classes
    def _fit_classes(self, y: np.ndarray) -> np.ndarray:
        """classes_ (from ``label_vocabulary``, else learned from y as scikit-learn does), and
        y as what the head reads: class ids, or the labels themselves for a vocabulary."""
        cls = type(self).__name__
        vocab = getattr(self, "label_vocabulary", None)
        n_classes = int(getattr(self, "n_classes", 2))
        if y.ndim != 1:
            raise UsageError(f"{cls}.fit takes y as a 1d array of labels; got shape {y.shape}.")
        if vocab is not None:
            self.classes_ = np.asarray(list(vocab), dtype=object)
            return y.astype(str) if y.dtype.kind not in "OU" else y
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise UsageError(
                f"Unknown label type: {cls} is a classifier and y holds continuous values "
                f"(e.g. {y[y != np.round(y)][0]!r}); use a regressor for continuous targets."
            )
        uniques = np.unique(y)
        if len(uniques) < 2:
            raise UsageError(
                f"{cls} needs samples of at least 2 classes in the data, but the data contains "
                f"only one class: {uniques.tolist()!r}."
            )
        numeric = y.dtype.kind in "iubf"
        if numeric and uniques.min() >= 0 and uniques.max() < n_classes:
            uniques = np.arange(n_classes)  # ids 0 .. n_classes-1: a fold may lack a class
        self.classes_ = uniques
        return np.searchsorted(uniques, y).astype(np.int64)

    @contextlib.contextmanager
    def _fit_settings(self) -> Iterator[None]:
        """While fit() builds the model, n_classes is the number of classes learned from y
        (as scikit-learn learns it); the setting itself is restored afterwards."""
        classes = getattr(self, "classes_", None)
        declared = getattr(self, "n_classes", None)
        if classes is None or declared is None or not isinstance(declared, int):
            yield
            return
        if "n_classes" not in self._param_names():  # type: ignore[attr-defined]
            if len(classes) > declared:  # the head is given whole: its classes are fixed
                raise UsageError(
                    f"y has {len(classes)} classes {list(classes)[:10]} but the head of "
                    f"{type(self).__name__} has n_classes={declared}: pass a head with "
                    f"n_classes={len(classes)}."
                )
            yield
            return
        self.n_classes = len(classes)
        try:
            yield
        finally:
            self.n_classes = declared

    # ------------------------------------------------------------ fit
    def _fresh_model_dir(self) -> Path:
        if getattr(self, "model_dir", None) is None:
            return self._fit_temp_dir()
        path = Path(self.model_dir).expanduser()  # type: ignore[attr-defined]
        if path.is_dir() and self._checkpoint_in(path) is not None:
            raise ModelDirError(
                f"fit() trains from scratch, but model_dir {path} already holds a checkpoint. "
                "Use train() to continue training it, or fit with another (or no) model_dir. "
                f"Received: model_dir={str(self.model_dir)!r}"  # type: ignore[attr-defined]
            )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _checkpoint_in(self, path: Path) -> Path | None:
        from trainrun.model_dir.checkpoints import latest_checkpoint

        return latest_checkpoint(path)

    def _fit_temp_dir(self) -> Path:
        """A new temporary model directory for this fit, deleted at exit (as the estimators'
        own temporary ones) unless ``RunConfig(keep_temp_model_dir=True)``; the one of this
        estimator's previous fit goes at once (GridSearchCV refits many times)."""
        import shutil

        from trainrun.estimators import base

        temps = getattr(base, "_TEMP_MODEL_DIRS", None)
        previous = getattr(self, "_fit_dir", None)
        if previous is not None and temps is not None and previous in temps:
            shutil.rmtree(previous, ignore_errors=True)
            temps.discard(previous)
        path = Path(tempfile.mkdtemp(prefix="trainrun-fit-"))
        keep = getattr(self._config(), "keep_temp_model_dir", False)
        if temps is not None and not keep:
            temps.add(path)
        self._fit_dir = path
        return path

    def _reset(self) -> None:
        """Forget learned state, so that fit starts from scratch."""
        self.network_ = None
        forget = ("classes_", "n_features_in_", "feature_names_in_", "_array_keys_")
        # and where the last fit's input stopped: a new fit reads its data from the start
        for name in (*forget, "_input_position", "_saved_input_position"):
            if hasattr(self, name):
                delattr(self, name)

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        steps: int | None = None,
    ) -> Any:
        """Train a fresh model on ``X`` and ``y`` (scikit-learn's ``fit``); returns self.

        ``epochs`` passes of ``batch_size`` (default 128) examples per step, or ``steps``
        steps; with neither, 10 epochs and at least 200 steps. ``sample_weight`` weighs
        each example's loss. Classes are learned from ``y`` (or taken from
        ``label_vocabulary``) and kept in ``classes_``.
        """
        from trainrun.inputs import input_fn

        self._reset()
        # y first: its mistakes (None, one class, continuous labels) are the likelier ones
        target = self._target(y, _num_samples(X))
        if self._estimator_type == "classifier" and self._label_width() == 1:
            target = self._fit_classes(target)
            if sample_weight is not None:
                w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
                if w.shape == target.shape and (w > 0).any() and len(np.unique(target[w > 0])) < 2:
                    raise UsageError(
                        f"{type(self).__name__} needs samples of at least 2 classes with a "
                        "positive sample_weight; only one class has any weight."
                    )
        frame = self._frame(X, fitting=True)
        self._array_keys_ = list(frame.columns)
        data = frame.copy(deep=False)
        response: str | list[str]
        if target.ndim == 2:
            response = [f"{LABEL_KEY}{i}" for i in range(target.shape[1])]
            for i, key in enumerate(response):
                data[key] = target[:, i]
        else:
            response = LABEL_KEY
            data[LABEL_KEY] = target
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if w.shape[0] != len(frame):
                raise UsageError(
                    f"sample_weight has {w.shape[0]} values for {len(frame)} samples; pass one "
                    "weight per sample."
                )
            if not np.isfinite(w).all() or (w < 0).any():
                raise UsageError("sample_weight must be finite and >= 0.")
            if not (w > 0).any():
                raise UsageError(
                    "sample_weight is zero for every sample: nothing to learn from. Give some "
                    "samples a positive weight."
                )
            data[WEIGHT_KEY] = w
        self._fit_prepare(frame)
        if epochs is None and steps is None:
            epochs, steps = self._fit_budget(len(frame), batch_size or self._fit_batch_size)
        fn = input_fn(
            data,
            features=list(frame.columns),
            response=response,
            batch_size=batch_size or self._fit_batch_size,
            epochs=epochs,
            shuffle=True,
            seed=getattr(self._config(), "seed", None),
        )
        self.model_dir_ = self._fresh_model_dir()
        self._sample_weight_key = WEIGHT_KEY if sample_weight is not None else None
        try:
            with self._fit_settings():
                self.train(fn, steps=steps)  # type: ignore[attr-defined]
        except BaseException:
            for name in ("n_features_in_", "classes_"):
                if hasattr(self, name):
                    delattr(self, name)
            raise
        finally:
            self._sample_weight_key = None
        return self

    def _fit_budget(self, rows: int, batch_size: int) -> tuple[int | None, int | None]:
        """(epochs, steps) of fit() when neither is given: 10 epochs, and at least 200 steps."""
        per_epoch = -(-rows // batch_size)
        return None, max(200, 10 * per_epoch)

    def _config(self) -> Any:
        return getattr(self, "config", None)

    def _fit_prepare(self, frame: Any) -> None:  # noqa: B027 - an optional hook
        """Called with the training frame before training (column inference hooks here)."""

    # ------------------------------------------------------------ predict
    def _outputs(self, X: Any, keys: Sequence[str]) -> dict[str, np.ndarray]:
        from trainrun.inputs import input_fn

        self._check_fitted("predict")
        frame = self._frame(X, fitting=False)
        fn = input_fn(frame, batch_size=8192, shuffle=False)
        parts = list(self._prediction_batches(fn, keys))  # type: ignore[attr-defined]
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}

    def predict(self, X: Any, predict_keys: Sequence[str] | None = None) -> Any:
        """Class labels (from ``classes_``) or predicted values, one per row of data ``X``.

        Given an input_fn instead of data, this is tf.estimator's ``predict`` (a generator
        of dicts, one per example); see also ``predict_frame``.
        """
        if hasattr(X, "batches") or (callable(X) and not hasattr(X, "shape")):
            return self._predict_input_fn(X, predict_keys)
        return self._sklearn_predict(X)

    def _sklearn_predict(self, X: Any) -> np.ndarray:
        if self._estimator_type == "classifier":
            ids = self._outputs(X, ["class_ids"])["class_ids"].reshape(-1)
            return np.asarray(self.classes_)[ids]
        preds = self._outputs(X, ["predictions"])["predictions"]
        return preds[:, 0] if preds.ndim == 2 and preds.shape[1] == 1 else preds

    def _predict_input_fn(self, input_fn: Any, predict_keys: Any = None) -> Any:
        for out in self._prediction_batches(input_fn, predict_keys):  # type: ignore[attr-defined]
            n = len(next(iter(out.values())))
            for i in range(n):
                yield {k: v[i] for k, v in out.items()}

    @_ClassifierOnly
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        return self._outputs(X, ["probabilities"])["probabilities"].astype(np.float64)

    @_ClassifierOnly
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    @_ClassifierOnly
    def decision_function(self, X: Any) -> np.ndarray:
        """The logits: one value per row for two classes, one per class above."""
        logits = self._outputs(X, ["logits"])["logits"].astype(np.float64)
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy (classifiers) or R² (regressors), weighted by ``sample_weight``."""
        pred = self.predict(X)
        truth = np.asarray(y)
        if truth.ndim == 2 and truth.shape[1] == 1 and pred.ndim == 1:
            truth = truth[:, 0]
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if self._estimator_type == "classifier":
            hits = (pred.astype(str) == truth.astype(str)).astype(np.float64)
            return float(np.average(hits, weights=w))
        return r2(truth.astype(np.float64), np.asarray(pred, dtype=np.float64), w)


def r2(truth: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The coefficient of determination (scikit-learn's r2_score, uniform over outputs)."""
    truth = truth.reshape(len(truth), -1)
    pred = pred.reshape(truth.shape)
    w = np.ones(len(truth)) if weights is None else weights.reshape(-1)
    mean = np.average(truth, axis=0, weights=w)
    ss_res = (w[:, None] * (truth - pred) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (truth - mean) ** 2).sum(axis=0)
    scores = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
    scores = np.where((ss_tot == 0) & (ss_res == 0), 1.0, scores)
    return float(scores.mean())


def check_positive_int(value: Any, arg: str) -> None:
    if value is not None and not (_is_int(value) and value > 0):
        raise InputError(f"{arg} must be a positive int. Received: {arg}={value!r}")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def _short_repr(value: Any) -> str:
    from trainrun.feature_columns import FeatureColumn

    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(c, FeatureColumn) for c in value)
    ):
        names = [c.name for c in value]
        shown = ", ".join(names[:4]) + (f", ... ({len(names)} columns)" if len(names) > 4 else "")
        return f"[{shown}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
