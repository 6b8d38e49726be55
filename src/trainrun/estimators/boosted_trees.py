"""BoostedTreesClassifier and BoostedTreesRegressor: gradient-boosted trees on XGBoost or LightGBM.

tf.estimator's (and R tfestimators') boosted trees, with the same feature columns,
input_fn, model_dir, metric and prediction keys, run recording and export as the
other estimators. ``engine=`` chooses what grows the trees: ``"lightgbm"`` (its mapping of
tf's arguments is the table in ``trainrun.estimators._lightgbm``) or ``"xgboost"`` (XGBoost's
``hist`` method; the table below). The default, ``"auto"``, continues the trees a model_dir
holds with their own engine and grows new ones with LightGBM (XGBoost for
``label_dimension > 1``, which LightGBM cannot grow): on the churn data and scikit-learn's
four data sets LightGBM was as good or better (the only engine within issue 12's quality
target on all four) and no slower (docs/estimator-families.md, "Which engine"; figures
from ``scripts/quality_sklearn.py``, ``scripts/churn_quality.py`` and
``bench/boosted_trees.py``). ``engine_params`` passes the engine's own parameters (they
override what tf's arguments set).

==========================  =====================================================
tf argument                 XGBoost
==========================  =====================================================
``n_trees``                 boosting rounds (one global step per tree)
``max_depth``               ``max_depth``
``learning_rate``           ``eta``
``l1_regularization``       ``alpha``
``l2_regularization``       ``lambda``
``tree_complexity``         ``gamma`` (minimum loss reduction of a split)
``pruning_mode``            ``"none"``: no pruning (tree_complexity must be 0);
                            ``"pre"`` / ``"post"``: splits gaining less than
                            ``tree_complexity`` are pruned (XGBoost prunes after
                            growing each tree, as tf's "post")
``min_node_weight``         ``min_child_weight`` (hessian sum of a leaf)
``center_bias``             True: start from the (weighted) prior (binary), the
                            log class priors (one margin per class) or the label
                            mean; False: from a zero logit
``n_batches_per_layer``     None: every tree sees the whole input; k: each tree
                            sees a random ``k * batch_size`` rows (``subsample``)
``quantile_sketch_epsilon`` ``max_bin = ceil(1 / epsilon)`` (at most 256)
==========================  =====================================================

Columns: ``numeric_column`` (its values), ``bucketized_column`` (the bucket index),
``indicator_column`` (one 0/1 feature per category, as tf), and plain categorical
columns (one native categorical feature). Embedding and weighted columns are refused.

Checkpoints are ``trees-<n>.ubj`` (XGBoost's own UBJSON model format, never pickle) with
``trees-<n>.json`` (the settings and columns); training resumes from the newest. An
export is ``spec.json`` + ``model.ubj``, read back by :func:`trainrun.load_exported`.
Input files (CSV / Parquet) are streamed chunk by chunk into XGBoost's quantised
``QuantileDMatrix``: the raw data is never held in memory whole. With LightGBM the same
are ``trees-<n>.txt`` / ``model.txt`` (LightGBM's text model), and files go through a
spill file, read back a batch at a time and deleted once LightGBM has binned it.

>>> import trainrun as tr
>>> est = tr.BoostedTreesClassifier(feature_columns=[tr.numeric_column("tenure")],
...                                 n_batches_per_layer=None, n_trees=50)
"""

from __future__ import annotations

import abc
import copy
import json
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.estimators._sklearn import ScikitLearnMixin
from trainrun.estimators.run_config import RunConfig
from trainrun.exceptions import (
    FeatureColumnError,
    InputError,
    MissingExtraError,
    ModelDirError,
    NotTrainedError,
    UsageError,
)

__all__ = [
    "BoostedTreesClassifier",
    "BoostedTreesRegressor",
    "ExportedBoostedTrees",
    "load_boosted_trees_export",
]

CHECKPOINT_FORMAT = "trainrun.boosted_trees/1"
EXPORT_FORMAT = "trainrun.boosted_trees_export/1"
_CKPT = re.compile(r"^trees-(\d+)\.json$")
#: Rows gathered from an input_fn's batches before they go to XGBoost as one chunk.
CHUNK_ROWS = 262_144
#: Rows of the tree matrix written together (all their features while they are in cache).
MATRIX_BAND = 4_096


def _engine_module(engine: str) -> Any:
    """The engine's module, imported (a MissingExtraError naming the extra if absent)."""
    if engine == "lightgbm":
        from trainrun.estimators import _lightgbm

        return _lightgbm.lgb()
    return _xgb()


def _save_model(engine: str, booster: Any) -> bytes:
    if engine == "lightgbm":
        from trainrun.estimators import _lightgbm

        return _lightgbm.save(booster)
    return bytes(booster.save_raw(raw_format="ubj"))


def _load_model(engine: str, path: Path) -> Any:
    data = path.read_bytes()
    if engine == "lightgbm":
        from trainrun.estimators import _lightgbm

        return _lightgbm.load(data, path)
    booster = _xgb().Booster()
    booster.load_model(bytearray(data))
    return booster


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError:
        raise MissingExtraError("xgboost", "trees", "BoostedTreesClassifier/Regressor") from None
    return xgboost


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


# --------------------------------------------------------------------- columns -> matrix


class TreeFeatures:
    """Feature columns -> a float32 matrix for XGBoost (NaN = missing), with feature names."""

    def __init__(self, columns: Sequence[Any]) -> None:
        from trainrun.feature_columns import (
            BucketizedColumn,
            CategoricalColumn,
            EmbeddingColumn,
            FeatureTransform,
            IndicatorColumn,
            NumericColumn,
            WeightedCategoricalColumn,
        )
        from trainrun.feature_columns._sequence import is_sequence_column

        self.columns = list(columns)
        self.names: list[str] = []
        self.types: list[str] = []
        self.owner: list[str] = []  # the feature column each matrix column comes from
        self.plan: list[tuple[str, Any, int]] = []
        for col in self.columns:
            if isinstance(col, EmbeddingColumn) or type(col).__name__ == "SharedEmbeddingColumn":
                raise FeatureColumnError(
                    f"Boosted trees cannot use embedding column {col.name!r}: trees split on "
                    "values, and an embedding is learned by gradient descent. Pass its categorical "
                    f"column instead (or indicator_column of it). Received: {col!r}"[:400]
                )
            if is_sequence_column(col) or isinstance(col, WeightedCategoricalColumn):
                raise FeatureColumnError(
                    f"Boosted trees take numeric, bucketized, categorical and indicator columns; "
                    f"{type(col).__name__} {col.name!r} is not one of them."
                )
            if isinstance(col, NumericColumn):
                d = col.dimension
                self.plan.append(("numeric", col, d))
                self._add([col.name] if d == 1 else [f"{col.name}_{i}" for i in range(d)], "q", col)
            elif isinstance(col, IndicatorColumn):
                k = col.categorical_column.num_buckets
                self.plan.append(("indicator", col, k))
                self._add(
                    [f"{col.name}={v}" for v in _category_names(col.categorical_column)], "q", col
                )
            elif isinstance(col, BucketizedColumn):
                self.plan.append(("bucket", col, 1))
                self._add([col.name], "q", col)
            elif isinstance(col, CategoricalColumn):
                self.plan.append(("category", col, 1))
                self._add([col.name], "c", col)
            else:
                raise FeatureColumnError(
                    f"Boosted trees cannot use {type(col).__name__} {getattr(col, 'name', col)!r}."
                )
        self.transform = FeatureTransform(self.columns)

    def _add(self, names: list[str], kind: str, col: Any) -> None:
        self.names.extend(_clean(n) for n in names)
        self.types.extend([kind] * len(names))
        self.owner.extend([col.name] * len(names))

    def matrix(self, encoded: Mapping[str, Any]) -> np.ndarray:
        """One float32 ``[N, features]`` matrix, each column block written in place.

        Written a band of rows at a time: every feature of a band while the band is in
        the cache, instead of one pass over all rows per feature column."""
        from trainrun.feature_columns import encoded_column
        from trainrun.feature_columns._blocks import IDS, _blocks

        n = len(next(iter(encoded.values())))
        out = np.zeros((n, len(self.names)), dtype=np.float32)
        # the packed ids block read in numpy, once: {name: (its column, offset, "no value")}
        packed: dict[str, tuple[np.ndarray, int, int]] = {}
        for layout, ids_block in _blocks(dict(encoded), IDS):
            arr = ids_block.numpy()
            pad = sum(size for _, size, _ in layout.values())
            for j, (name, (start, _, _)) in enumerate(layout.items()):
                packed[name] = (arr[:, j], start, pad)
        sources: list[tuple[str, Any, int, int]] = []  # (how, values, first column, width)
        at = 0
        for kind, col, width in self.plan:
            if kind == "numeric":
                values = encoded_column(encoded, col.name).numpy().reshape(n, width)
                sources.append(("values", values, at, width))
            else:
                name = (col.categorical_column if kind == "indicator" else col).name
                if name not in encoded and name in packed:
                    g, start, pad = packed[name]
                    # ids within the column, "no value" -> -1
                    sources.append((kind, (g, start, pad), at, width))
                else:
                    ids = encoded_column(encoded, name).numpy().reshape(n, -1)
                    sources.append((kind, (ids, 0, None), at, width))
            at += width
        for lo in range(0, n, MATRIX_BAND):
            hi = min(n, lo + MATRIX_BAND)
            band = out[lo:hi]
            for how, values, first, width in sources:
                block = band[:, first : first + width]
                if how == "values":
                    block[:] = values[lo:hi]
                    continue
                ids, shift, pad = values
                ids = ids[lo:hi]
                if pad is not None:  # a packed column: one id per row
                    rows = np.flatnonzero(ids != pad)
                    local = ids[rows] - shift
                    if how == "indicator":
                        block[rows, local] = 1.0
                    else:
                        block[:, 0] = np.nan
                        block[rows, 0] = local
                elif how != "indicator":
                    block[:, 0] = np.where(ids[:, 0] >= 0, ids[:, 0], np.nan)
                elif ids.shape[1] == 1:  # one value per row: a plain scatter
                    rows = np.flatnonzero(ids[:, 0] >= 0)
                    block[rows, ids[rows, 0]] = 1.0
                else:  # multi-valent: counts (a value may repeat)
                    rows, slots = np.nonzero(ids >= 0)
                    np.add.at(block, (rows, ids[rows, slots]), 1.0)
        return out


def _clean(name: str) -> str:
    # XGBoost refuses feature names with '[', ']' or '<'.
    return re.sub(r"[\[\]<]", "_", str(name))


def _category_names(col: Any) -> list[str]:
    vocab = getattr(col, "vocabulary_list", None) or getattr(col, "vocabulary", None)
    n = col.num_buckets
    if vocab is not None:
        names = [str(v) for v in vocab]
        return names + [f"oov{i}" for i in range(n - len(names))]
    return [str(i) for i in range(n)]


# --------------------------------------------------------------------- checks

_PRUNING = ("none", "pre", "post")
ENGINES = ("xgboost", "lightgbm")
#: The model file's suffix in a checkpoint (``trees-<n>.<suffix>``) and an export (``model.<suffix>``).
SUFFIX = {"xgboost": ".ubj", "lightgbm": ".txt"}

CHECKS: dict[str, tuple[Any, str]] = {
    "n_trees": (lambda v: _is_int(v) and v > 0, "a positive int"),
    "max_depth": (lambda v: _is_int(v) and v > 0, "a positive int"),
    "learning_rate": (lambda v: _is_num(v) and v > 0, "a positive number"),
    "l1_regularization": (lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    "l2_regularization": (lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    "tree_complexity": (lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    "min_node_weight": (lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    "center_bias": (lambda v: isinstance(v, bool), "a bool"),
    "pruning_mode": (lambda v: v in _PRUNING, "'none', 'pre' or 'post'"),
    "n_batches_per_layer": (
        lambda v: v is None or (_is_int(v) and v > 0),
        "a positive int or None",
    ),
    "quantile_sketch_epsilon": (lambda v: _is_num(v) and 0 < v < 1, "a number in (0, 1)"),
    "n_classes": (lambda v: _is_int(v) and v >= 2, "an int >= 2"),
    "label_dimension": (lambda v: _is_int(v) and v >= 1, "a positive int"),
    "label_vocabulary": (
        lambda v: (
            v is None
            or (
                isinstance(v, (list, tuple))
                and all(isinstance(s, str) for s in v)
                and len(set(v)) == len(v)
            )
        ),
        "a list of distinct strings or None",
    ),
    "weight_column": (
        lambda v: v is None or isinstance(v, str) or isinstance(getattr(v, "key", None), str),
        "a column name, a numeric_column or None",
    ),
    "model_dir": (lambda v: v is None or isinstance(v, (str, os.PathLike)), "a path or None"),
    "config": (lambda v: v is None or isinstance(v, RunConfig), "a RunConfig or None"),
    "num_threads": (lambda v: v is None or (_is_int(v) and v > 0), "a positive int or None"),
    "engine": (lambda v: v in ("auto", *ENGINES), "'auto', 'lightgbm' or 'xgboost'"),
    "engine_params": (
        lambda v: v is None or (isinstance(v, Mapping) and all(isinstance(k, str) for k in v)),
        "a dict of the engine's own parameters (str keys) or None",
    ),
}


# --------------------------------------------------------------------- the estimator


class _BoostedTrees(ScikitLearnMixin, abc.ABC):
    """Shared by the classifier and the regressor: settings, data, train, evaluate, predict."""

    # settings (stored by the subclasses' __init__) and learned state
    feature_columns: Any
    n_batches_per_layer: int | None
    model_dir: Any
    weight_column: Any
    n_trees: int
    max_depth: int
    learning_rate: float
    l1_regularization: float
    l2_regularization: float
    tree_complexity: float
    min_node_weight: float
    config: RunConfig | None
    center_bias: bool
    pruning_mode: str
    quantile_sketch_epsilon: float
    engine: str
    engine_params: Mapping[str, Any] | None
    booster_: Any
    feature_columns_: list[Any] | None
    head_: Any

    def _fit_budget(self, rows: int, batch_size: int) -> tuple[int | None, int | None]:
        return 1, None  # n_trees trees, each over the whole data

    @abc.abstractmethod
    def _build_head(self) -> Any:
        """The classifier's or the regressor's head."""

    def _forget_fitted(self) -> None:
        self.booster_ = None

    def _validate_params(self) -> None:
        cls = type(self).__name__
        for name in self._param_names():
            check = CHECKS.get(name)
            if check is not None and not check[0](getattr(self, name)):
                raise UsageError(
                    f"The {name!r} parameter of {cls} must be {check[1]}. Got {getattr(self, name)!r} instead."
                )
        if self.pruning_mode == "none" and self.tree_complexity > 0:
            raise UsageError(
                f"{cls}: tree_complexity={self.tree_complexity} prunes splits, but pruning_mode='none'. "
                "Pass pruning_mode='pre' or 'post' with it, or tree_complexity=0."
            )
        if self.pruning_mode != "none" and self.tree_complexity <= 0:
            raise UsageError(
                f"{cls}: pruning_mode={self.pruning_mode!r} needs tree_complexity > 0 (the gain a "
                "split must reach), as in tf.estimator. Received: tree_complexity=0"
            )
        dims = getattr(self, "label_dimension", 1)
        if self.engine == "lightgbm" and dims > 1:
            raise UsageError(
                f"{cls}(engine='lightgbm') grows one output per model, but label_dimension="
                f"{dims}. Pass engine='xgboost' (one output per tree), or train one "
                "regressor per label."
            )
        vocab = getattr(self, "label_vocabulary", None)
        if vocab is not None and len(vocab) != self.n_classes:
            raise UsageError(
                f"The 'label_vocabulary' parameter of {cls} must be a list of n_classes={self.n_classes} "
                f"distinct strings. Got {vocab!r} instead."
            )
        if self.feature_columns is None and getattr(self, "feature_columns_", None) is None:
            raise UsageError(
                f"The 'feature_columns' parameter of {cls} must be a non-empty list of feature columns "
                "for train(input_fn); None only works with fit(X, y), which infers them from X. Got None instead."
            )

    @property
    def config_(self) -> RunConfig:
        return self.config if self.config is not None else RunConfig()

    def _columns_list(self) -> list[Any]:
        cols = self.feature_columns if self.feature_columns is not None else self.feature_columns_
        return list(cols) if isinstance(cols, (list, tuple)) else [cols]

    # ------------------------------------------------------------ scikit-learn hooks
    def _declared_columns(self) -> list[Any] | None:
        return None if self.feature_columns is None else self._columns_list()

    def _infer_columns(self, frame: Any) -> list[Any]:
        """columns_from_frame's proposal (missing numbers filled with the median), with each
        many-valued text column as one native categorical feature instead of an embedding."""
        from trainrun.feature_columns import EmbeddingColumn, columns_from_frame

        return [
            c.categorical_column if isinstance(c, EmbeddingColumn) else c
            for c in columns_from_frame(frame)
        ]

    def _fit_prepare(self, frame: Any) -> None:
        if self.feature_columns is None:
            self.feature_columns_ = self._infer_columns(frame)

    def _reset(self) -> None:
        self.booster_ = None
        self.feature_columns_ = None
        self._trees = 0
        for name in ("classes_", "n_features_in_", "feature_names_in_", "_array_keys_"):
            if hasattr(self, name):
                delattr(self, name)

    def _allows_nan(self) -> bool:
        # fit(X, y) infers numeric columns whose default_value (the median) fills NaN
        return self.feature_columns is None

    # ------------------------------------------------------------ build
    def _build(self) -> None:
        if getattr(self, "booster_", None) is not None or getattr(self, "_built_empty", False):
            self._reload_if_newer()
            return
        self._validate_params()
        from trainrun.estimators.base import Estimator

        self.model_dir_ = Estimator._resolve_model_dir(self)  # type: ignore[arg-type]
        found = latest_tree_checkpoint(self.model_dir_)
        self.engine_ = self._resolve_engine(found)
        _engine_module(self.engine_)
        self.head_ = self._build_head()
        self.features_ = TreeFeatures(self._columns_list())
        self.booster_ = None
        self._trees = 0
        self._checkpoint_path: Path | None = None
        if found is not None:
            self._restore(found)
        self._built_empty = self.booster_ is None

    def _resolve_engine(self, checkpoint: Path | None) -> str:
        """``engine``, or for ``"auto"``: the engine of the trees in model_dir, else LightGBM
        (XGBoost for ``label_dimension > 1``, which LightGBM cannot grow)."""
        if self.engine != "auto":
            return self.engine
        if checkpoint is not None:
            try:
                stored = json.loads(checkpoint.read_text()).get("engine", "xgboost")
            except (OSError, ValueError, AttributeError):
                stored = None  # _restore says what is wrong with the file
            if stored in ENGINES:
                return str(stored)
        return "xgboost" if getattr(self, "label_dimension", 1) > 1 else "lightgbm"

    @property
    def global_step_(self) -> int:
        """Trees grown so far (a tree is a step)."""
        return getattr(self, "_trees", 0)

    def _objective(self) -> dict[str, Any]:
        kind = self.head_.kind
        if kind == "binary":
            return {"objective": "binary:logistic", "eval_metric": "logloss"}
        if kind == "multiclass":
            return {
                "objective": "multi:softprob",
                "num_class": self.n_classes,
                "eval_metric": "mlogloss",
            }
        return {"objective": "reg:squarederror", "eval_metric": "rmse"}

    def _booster_params(self, rows: int | None, batch_size: int) -> dict[str, Any]:
        from trainrun.estimators import _lightgbm  # its thread rule serves both engines

        params = {
            **self._objective(),
            "tree_method": "hist",
            "max_depth": int(self.max_depth),
            "eta": float(self.learning_rate),
            "alpha": float(self.l1_regularization),
            "lambda": float(self.l2_regularization),
            "gamma": float(self.tree_complexity) if self.pruning_mode != "none" else 0.0,
            "min_child_weight": float(self.min_node_weight),
            "max_bin": int(min(256, max(2, math.ceil(1 / self.quantile_sketch_epsilon)))),
            "nthread": _lightgbm.threads(self),
            "seed": self.config_.seed or 0,
            "verbosity": 0,
        }
        if self.n_batches_per_layer is not None and rows:
            params["subsample"] = min(1.0, self.n_batches_per_layer * batch_size / rows)
        if self.head_.kind == "regression" and self.head_.label_dimension > 1:
            params["multi_strategy"] = "one_output_per_tree"
        params.update(self.engine_params or {})
        return params

    # ------------------------------------------------------------ data
    def _chunks(
        self, input_fn: Any, labels: bool, max_batches: int | None = None, rows: int | None = None
    ) -> Any:
        """(matrix, labels or None, weights or None) per chunk (of about CHUNK_ROWS rows, or
        ``rows`` when fewer) of one pass over the input (its first ``max_batches`` batches,
        when given)."""
        from trainrun.estimators.base import _NamedLabels, _resolve_input_fn

        fn = copy.copy(_resolve_input_fn(input_fn))
        fn.epochs = 1  # trees see each example once per tree; a pass is read once
        response = getattr(fn, "response", None)
        label_fn = _NamedLabels(self.head_.label_fn, response) if labels else None
        weight_key = self._weight_key() if labels else None
        if labels and response is None:
            raise InputError(
                "train() and evaluate() need labels, but the input_fn has no response column. "
                "Pass response='<label column>' to input_fn."
            )
        pending: list[Any] = []
        chunk_rows, rows = min(rows or CHUNK_ROWS, CHUNK_ROWS), 0
        if max_batches is None and getattr(fn, "in_memory", False):
            # rows in memory are encoded whole and sliced into batches: slices of a chunk's
            # size need no joining back (joining cost as much as encoding the columns)
            fn.batch_size = max(fn.batch_size, chunk_rows)
        batches = fn.batches(self.features_.transform, label_fn=label_fn, weight_key=weight_key)
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            pending.append(batch)
            rows += len(next(iter(batch.features.values())))
            if rows >= chunk_rows:
                yield self._join(pending, labels)
                pending, rows = [], 0
        if pending:
            yield self._join(pending, labels)

    def _join(self, batches: list[Any], labels: bool) -> tuple[np.ndarray, Any, Any]:
        import torch

        from trainrun.inputs._input_fn import _concat

        feats = _concat([b.features for b in batches]) if len(batches) > 1 else batches[0].features
        x = self.features_.matrix(feats)
        y = torch.cat([b.labels for b in batches]).numpy() if labels else None
        w = None
        if labels and batches[0].weights is not None:
            w = torch.cat([b.weights for b in batches]).numpy().reshape(-1)
        return x, y, w

    def _weight_key(self) -> str | None:
        if getattr(self, "_sample_weight_key", None) is not None:
            return self._sample_weight_key
        w = self.weight_column
        return w if w is None or isinstance(w, str) else w.key

    def _dmatrix(self, input_fn: Any) -> tuple[Any, int]:
        """A QuantileDMatrix fed chunk by chunk, and the row count.

        XGBoost reads the chunks more than once (to sketch the bins, then to quantise):
        in-memory data is encoded once and its chunks kept; files are read again on each
        pass, so that only XGBoost's quantised copy (a byte per value) stays in memory.
        """
        from trainrun.estimators.base import _resolve_input_fn

        xgb = _xgb()
        feats, est = self.features_, self
        fn = _resolve_input_fn(input_fn)
        cached = list(self._chunks(fn, labels=True)) if getattr(fn, "in_memory", True) else None
        rows: list[int] = []  # per pass

        class _Iter(xgb.DataIter):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__(release_data=True)
                self._source: Any = iter(())

            def next(self, input_data: Any) -> bool:
                item = next(self._source, None)
                if item is None:
                    return False
                x, y, w = item
                rows[-1] += len(x)
                input_data(
                    data=x,
                    label=_xgb_label(y),
                    weight=w,
                    feature_names=feats.names,
                    feature_types=feats.types,
                )
                return True

            def reset(self) -> None:
                rows.append(0)
                self._source = iter(cached) if cached is not None else est._chunks(fn, True)

        it = _Iter()
        it.reset()
        params = self._booster_params(None, 1)
        empty = InputError(
            "input_fn produced no rows to train on. Check that the data is not empty."
        )
        if cached is not None and not cached:
            raise empty
        try:
            dtrain = xgb.QuantileDMatrix(
                it, max_bin=params["max_bin"], enable_categorical=True, nthread=params["nthread"]
            )
        except xgb.core.XGBoostError:
            if not rows[0]:
                raise empty from None
            raise
        return dtrain, rows[0]

    # ------------------------------------------------------------ train
    def train(
        self,
        input_fn: Any,
        steps: int | None = None,
        max_steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        hooks: Sequence[Any] | None = None,
    ) -> Any:
        """Grow trees on ``input_fn``'s data, up to ``n_trees`` in all; returns a History.

        A step is a tree: ``steps`` grows that many more (``max_steps``: up to that many),
        never past ``n_trees``. Each tree is built from one pass over the input.
        ``TRAINRUN_MAX_STEPS`` caps the trees of one call, as for every estimator.
        """
        from trainrun.estimators.base import _check_steps, _merge_hooks
        from trainrun.training.callbacks import History, TensorBoardLogger
        from trainrun.training.loop import TrainState

        _check_steps(steps, max_steps)
        self._build()
        start = self.global_step_
        limit = self._limit(start, steps, max_steps)
        history = History()
        own = self._own_callbacks(history)
        all_cbs = [*own, *_merge_hooks(callbacks, hooks, "train")]
        state = TrainState(global_step=start, start_step=start, max_steps=limit, estimator=self)
        state.total_steps = limit
        if start >= limit:
            history.start_step = history.end_step = start
            return history
        batch_size = getattr(input_fn, "batch_size", 128)

        def tree_done(booster: Any, loss: float | None, rows: int) -> bool:
            """After each tree, whichever engine grew it: the step's callbacks; True stops."""
            state.global_step += 1
            state.examples += rows
            self._trees = state.global_step
            self.booster_ = booster
            state.step_losses = [] if loss is None else [(state.global_step, loss)]
            if loss is not None:
                for cb in all_cbs:
                    cb.on_losses(state)
            for cb in all_cbs:
                cb.on_step_end(state)
            return bool(state.stop_training)

        grow = self._grow_lightgbm if self.engine_ == "lightgbm" else self._grow_xgboost
        for cb in all_cbs:
            cb.on_train_begin(state)
        try:
            with self.config_.threads():
                self.booster_ = grow(input_fn, start, limit, batch_size, tree_done)
            self._trees = state.global_step
        finally:
            for cb in all_cbs:
                cb.on_train_end(state)
            for cb in own:
                if isinstance(cb, TensorBoardLogger):
                    cb.close()
        return history

    def _grow_xgboost(
        self, input_fn: Any, start: int, limit: int, batch_size: int, tree_done: Any
    ) -> Any:
        """Trees ``start..limit`` with XGBoost; ``tree_done(booster, loss or None, rows)``."""
        xgb = _xgb()
        dtrain, rows = self._dmatrix(input_fn)
        params = self._booster_params(rows, batch_size)
        if self.center_bias:
            params["base_score"] = self._prior(input_fn)
        else:
            params["base_score"] = 0.5 if self.head_.kind == "binary" else 0.0
        if self.booster_ is not None:
            params.pop("base_score")  # a resumed model keeps its own

        # The training loss of at most ~20 trees: each one costs XGBoost a pass over the data.
        every = max(1, (limit - start) // 20)
        done = [start]

        class _Steps(xgb.callback.TrainingCallback):  # type: ignore[misc,name-defined]
            def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> bool:
                done[0] += 1
                loss = None
                if (done[0] - start) % every == 0 or done[0] == limit:
                    text = model.eval_set([(dtrain, "train")], epoch)  # "[3]\ttrain-logloss:0.41"
                    metric = float(text.rsplit(":", 1)[1])
                    loss = metric**2 if params["eval_metric"] == "rmse" else metric
                return bool(tree_done(model, loss, rows))

        return xgb.train(
            params,
            dtrain,
            num_boost_round=limit - start,
            xgb_model=self.booster_,
            callbacks=[_Steps()],
            verbose_eval=False,
        )

    def _grow_lightgbm(
        self, input_fn: Any, start: int, limit: int, batch_size: int, tree_done: Any
    ) -> Any:
        """Trees ``start..limit`` with LightGBM; ``tree_done(booster, loss or None, rows)``."""
        from trainrun.estimators import _lightgbm
        from trainrun.estimators.base import _resolve_input_fn

        in_memory = bool(getattr(_resolve_input_fn(input_fn), "in_memory", True))
        return _lightgbm.grow(self, input_fn, start, limit, batch_size, in_memory, tree_done)

    def _limit(self, start: int, steps: int | None, max_steps: int | None) -> int:
        from trainrun.estimators.base import _env_max_steps

        limit = self.n_trees
        if max_steps is not None:
            limit = min(limit, max_steps)
        if steps is not None:
            limit = min(limit, start + steps)
        cap = _env_max_steps()
        return limit if cap is None else min(limit, start + cap)

    def _own_callbacks(self, history: Any) -> list[Any]:
        from trainrun.training.callbacks import CheckpointSaver, ProgressLogger, TensorBoardLogger
        from trainrun.training.run_recorder import RunRecorder

        config = self.config_
        own: list[Any] = [history]
        tb = self._tensorboard_dir()
        if tb is not None:
            own.append(TensorBoardLogger(tb, every=1))
        if config.progress:
            own.append(ProgressLogger(every=max(1, min(config.log_step_count_steps, 10))))
        own.append(RunRecorder(every=1))
        own.append(CheckpointSaver(self._save_checkpoint, every=config.save_checkpoints_steps))
        return own

    def _prior(self, input_fn: Any) -> float | list[float]:
        """tf's center_bias: the start the (weighted) labels of ``input_fn`` give."""
        sums: Any = 0.0
        count = 0.0
        for _, y, w in self._chunks(input_fn, labels=True):
            s, c = self._label_sums(y, w)
            sums, count = sums + s, count + c
        return self._bias(sums, count)

    def _base_score(self, y: Any, w: Any = None) -> float | list[float]:
        """center_bias's start for labels ``y`` (weights ``w``) in XGBoost's base_score units:
        the prior of a binary label (a probability), the log class priors of several classes
        (one margin per class, centered, as a softmax's intercepts), the label mean."""
        return self._bias(*self._label_sums(np.asarray(y), w))

    def _label_sums(self, y: np.ndarray, w: Any) -> tuple[Any, float]:
        ww = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64).reshape(-1)
        if self.head_.kind == "multiclass":
            ids = y.reshape(-1).astype(np.int64)
            return np.bincount(ids, weights=ww, minlength=self.n_classes), float(ww.sum())
        y = y.reshape(len(y), -1).astype(np.float64)
        return float((y.mean(axis=1) * ww).sum()), float(ww.sum())

    def _bias(self, sums: Any, count: float) -> float | list[float]:
        if self.head_.kind == "multiclass":
            # softmax's best constant logits: log priors (an absent class gets a tiny one)
            prior = np.asarray(sums, dtype=np.float64) / count if count else np.ones(self.n_classes)
            logs = np.log(np.clip(prior, 1e-6, None))
            return [float(v) for v in logs - logs.mean()]
        mean = float(sums) / count if count else 0.0
        if self.head_.kind == "binary":
            return float(min(max(mean, 1e-6), 1 - 1e-6))
        return mean

    def _tensorboard_dir(self, evaluating: bool = False, name: str | None = None) -> Path | None:
        if not self.config_.tensorboard:
            return None
        from trainrun.training.run_recorder import events_dir

        return events_dir(self.model_dir_, evaluating=evaluating, eval_name=name)

    # ------------------------------------------------------------ checkpoints
    def _meta(self) -> dict[str, Any]:
        from trainrun.estimators.base import _jsonable
        from trainrun.feature_columns import columns_to_config

        return {
            "format": CHECKPOINT_FORMAT,
            "estimator": type(self).__name__,
            "engine": self.engine_,
            "global_step": self.global_step_,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "head": self.head_.to_config(),
            "columns": columns_to_config(self._columns_list()),
            "feature_names": self.features_.names,
        }

    def _save_from_loop(self, step: int) -> None:
        """Checkpoint the trees grown so far (train_and_evaluate evaluates checkpoints)."""
        self._trees = step
        self._save_checkpoint(step)

    def _save_checkpoint(self, step: int) -> Path:
        if self.booster_ is None:
            raise NotTrainedError("No trees to checkpoint yet.")
        suffix = SUFFIX[self.engine_]
        _write_atomic(
            self.model_dir_ / f"trees-{step}{suffix}", _save_model(self.engine_, self.booster_)
        )
        meta = json.dumps(self._meta(), indent=1, sort_keys=True).encode()
        path = self.model_dir_ / f"trees-{step}.json"
        _write_atomic(path, meta)
        self._checkpoint_path = path
        keep = self.config_.keep_checkpoint_max
        if keep:
            for old in list_tree_checkpoints(self.model_dir_)[:-keep]:
                for suffix in SUFFIX.values():
                    old.with_suffix(suffix).unlink(missing_ok=True)
                old.unlink(missing_ok=True)
        return path

    def _restore(self, path: Path) -> None:
        from trainrun.feature_columns import columns_to_config

        meta = json.loads(path.read_text())
        stored_engine = meta.get("engine", "xgboost")
        if stored_engine != self.engine_:
            raise ModelDirError(
                f"model_dir {self.model_dir_} holds trees grown by {stored_engine}, but this "
                f"{type(self).__name__} has engine={self.engine_!r}. Pass engine="
                f"{stored_engine!r} to use or continue them, or use a new model_dir."
            )
        mine = {
            "estimator": type(self).__name__,
            "head": _strip_reduction(self.head_.to_config()),
            "columns": json.loads(json.dumps(columns_to_config(self._columns_list()), default=str)),
        }
        stored = {
            "estimator": meta.get("estimator"),
            "head": _strip_reduction(meta.get("head") or {}),
            "columns": meta.get("columns"),
        }
        diffs = [k for k in mine if mine[k] != stored[k]]
        if diffs:
            raise ModelDirError(
                f"model_dir {self.model_dir_} holds an incompatible model: its {', '.join(diffs)} "
                "differ. Use a new model_dir, delete the old one, or construct the estimator with "
                "the stored settings."
            )
        self.booster_ = _load_model(self.engine_, path.with_suffix(SUFFIX[self.engine_]))
        self._trees = int(meta["global_step"])
        self._checkpoint_path = path

    def _reload_if_newer(self) -> None:
        found = latest_tree_checkpoint(self.model_dir_)
        if found is not None and found != getattr(self, "_checkpoint_path", None):
            self._restore(found)

    def _checkpoint_in(self, path: Path) -> Path | None:
        return latest_tree_checkpoint(path)

    def latest_checkpoint(self) -> Path | None:
        """The newest ``trees-<n>.json`` in the model directory, or None."""
        path = getattr(self, "model_dir_", None)
        return None if path is None else latest_tree_checkpoint(path)

    # ------------------------------------------------------------ evaluate / predict
    def _require_trained(self, verb: str) -> None:
        self._build()
        if self.booster_ is None:
            raise NotTrainedError(
                f"{type(self).__name__} cannot {verb} before it is trained: no checkpoint in "
                f"model_dir {self.model_dir_}. Call train() first, or pass the model_dir of a "
                "trained model."
            )

    def _margins(self, x: np.ndarray) -> np.ndarray:
        if self.engine_ == "lightgbm":
            from trainrun.estimators import _lightgbm

            return _lightgbm.raw_margins(self.booster_, x, _lightgbm.threads(self))
        xgb = _xgb()
        d = xgb.DMatrix(
            x,
            feature_names=self.features_.names,
            feature_types=self.features_.types,
            enable_categorical=True,
        )
        m = self.booster_.predict(d, output_margin=True)
        return m.reshape(len(x), -1).astype(np.float64)

    def evaluate(
        self,
        input_fn: Any,
        steps: int | None = None,
        name: str | None = None,
        callbacks: Any = None,
    ) -> dict[str, float]:
        """tf.estimator's metrics over ``input_fn`` (the same keys as the other estimators);
        ``steps`` evaluates the first ``steps`` batches only."""
        import torch

        from trainrun.training.callbacks import TensorBoardLogger
        from trainrun.training.run_recorder import RunRecorder

        if steps is not None and not (_is_int(steps) and steps > 0):
            raise UsageError(
                f"evaluate() needs steps to be a positive int or None. Received: steps={steps!r}"
            )
        self._require_trained("evaluate")
        logits, labels, weights = [], [], []
        for x, y, w in self._chunks(input_fn, labels=True, max_batches=steps):
            logits.append(torch.from_numpy(self._margins(x)))
            labels.append(torch.from_numpy(np.asarray(y)))
            if w is not None:
                weights.append(torch.from_numpy(w))
        if not logits:
            raise InputError(
                "input_fn produced no batches to evaluate. Check that the data is not empty."
            )
        z, y = torch.cat(logits), torch.cat(labels)
        w = torch.cat(weights) if weights else None
        loss = float(self.head_.loss(z, y, w))
        results = {k: float(v) for k, v in self.head_.metrics(z, y, w, loss).items()}
        results["global_step"] = self.global_step_
        hooks: list[Any] = [RunRecorder()]
        tb = self._tensorboard_dir(evaluating=True, name=name)
        if tb is not None:
            hooks.append(TensorBoardLogger(tb))
        for cb in [*hooks, *(callbacks or ())]:
            cb.on_evaluate_end(results, name)
        for cb in hooks:
            if isinstance(cb, TensorBoardLogger):
                cb.close()
        return results

    def _prediction_batches(self, input_fn: Any, predict_keys: Sequence[str] | None) -> Any:
        import torch

        self._require_trained("predict")
        keys = self.head_.check_predict_keys(predict_keys)
        for x, _, _ in self._chunks(input_fn, labels=False):
            out = self.head_.predictions(torch.from_numpy(self._margins(x)))
            yield {k: out[k] for k in keys} if keys else out

    def experimental_predict_with_explanations(
        self, input_fn: Any, predict_keys: Sequence[str] | None = None
    ) -> Any:
        """tf's method of this name: one dict per example, its predictions (``predict_keys``
        of them, or all) plus ``"dfc"`` and ``"bias"``.

        ``dfc`` (directional feature contributions) maps each feature column's name to how
        much that column moved this example's prediction, largest in size first; ``bias`` is
        the prediction before any split, the same for every example. For a classifier they
        are in probability units and ``bias + sum(dfc.values())`` is the probability of class
        1 (``probabilities[1]``), for a regressor in the label's units and summing to
        ``predictions``. How they are computed (tf's method: each split's change, read down
        the tree, in the order the trees grew) is in ``trainrun.estimators._explain``. Like
        tf, two classes or one regression output only; unlike tf, ``center_bias`` need not be
        set (the bias is the base margin plus each tree's root value either way).
        """
        import torch

        from trainrun.estimators._explain import TreePaths

        self._require_trained("explain predictions")
        kind = self.head_.kind
        if kind not in ("binary", "regression") or self.head_.logits_dimension != 1:
            raise UsageError(
                f"experimental_predict_with_explanations() explains a binary classifier or a "
                f"regressor of one output, as tf's does; this {type(self).__name__} has "
                f"{self.head_.logits_dimension} outputs. Explain one class (or label) at a time "
                "with a model trained for it."
            )
        keys = self.head_.check_predict_keys(predict_keys)
        features = self.features_
        if self.engine_ == "lightgbm":
            from trainrun.estimators import _lightgbm

            if _lightgbm.engine_params(self).get("linear_tree"):
                raise UsageError(
                    "experimental_predict_with_explanations() reads each leaf as one value; "
                    "with engine_params linear_tree=True a leaf is a linear model of the "
                    "features. Train without linear_tree to explain the model."
                )
            paths = TreePaths.from_lightgbm(self.booster_, _lightgbm.threads(self))
        else:
            paths = TreePaths.from_xgboost(self.booster_, features.names, features.types)
        columns = [c.name for c in features.columns]
        owner = np.asarray([columns.index(o) for o in features.owner], dtype=np.int64)
        for x, _, _ in self._chunks(input_fn, labels=False):
            z = self._margins(x)
            out = self.head_.predictions(torch.from_numpy(z))
            if keys:
                out = {k: out[k] for k in keys}
            bias, contrib = paths.contributions(
                x, z[:, 0], len(features.names), probability=kind == "binary"
            )
            by_column = np.zeros((len(x), len(columns)))
            np.add.at(by_column.T, owner, contrib.T)  # an indicator column's categories summed
            order = np.argsort(-np.abs(by_column), axis=1, kind="stable").tolist()
            values = by_column.tolist()
            for i in range(len(x)):
                example = {k: v[i] for k, v in out.items()}
                row = values[i]
                example["dfc"] = {columns[j]: row[j] for j in order[i]}
                example["bias"] = bias
                yield example

    def predict_frame(self, input_fn: Any, predict_keys: Sequence[str] | None = None) -> Any:
        """Predictions as a DataFrame, one row per example (as every estimator's)."""
        from trainrun.model_dir.export import predictions_to_frame

        return predictions_to_frame(
            list(self._prediction_batches(input_fn, predict_keys)), predict_keys
        )

    # ------------------------------------------------------------ importances
    def experimental_feature_importances(self, normalize: bool = False) -> dict[str, float]:
        """Gain-based importance per feature column, largest first (tf's method of this name).

        The total gain of the splits on each column (an indicator column's categories
        summed); ``normalize=True`` divides by the total so that the values sum to 1.
        """
        self._require_trained("give feature importances of")
        if self.engine_ == "lightgbm":
            from trainrun.estimators import _lightgbm

            gains = _lightgbm.gains(self.booster_, self.features_.names)
        else:
            gains = self.booster_.get_score(importance_type="total_gain")
        out = {c.name: 0.0 for c in self.features_.columns}
        for name, owner in zip(self.features_.names, self.features_.owner, strict=True):
            out[owner] += float(gains.get(name, 0.0))
        if normalize:
            total = sum(out.values())
            if total <= 0:
                raise UsageError("No split has any gain yet, so importances cannot be normalized.")
            out = {k: v / total for k, v in out.items()}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Normalized importances in feature-column order (scikit-learn's attribute)."""
        imp = self.experimental_feature_importances(normalize=True)
        return np.asarray([imp[c.name] for c in self.features_.columns])

    # ------------------------------------------------------------ export
    def export(
        self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
    ) -> Path:
        """``spec.json`` (head, columns; ``metadata``'s JSON values too) and the engine's model
        (``model.ubj`` for XGBoost, ``model.txt`` for LightGBM); load with
        :func:`trainrun.load_exported`."""
        from trainrun import __version__
        from trainrun.feature_columns import columns_to_config

        self._require_trained("export")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ModelDirError(
                f"Cannot export into {path}: it is a file. Received: path={os.fspath(path)!r}"
            )
        path.mkdir(parents=True, exist_ok=True)
        for other in SUFFIX.values():  # a re-export with the other engine leaves one model
            if other != SUFFIX[self.engine_]:
                (path / f"model{other}").unlink(missing_ok=True)
        _write_atomic(
            path / f"model{SUFFIX[self.engine_]}", _save_model(self.engine_, self.booster_)
        )
        spec = {
            **(metadata or {}),
            "format": EXPORT_FORMAT,
            "trainrun_version": __version__,
            "estimator": type(self).__name__,
            "engine": self.engine_,
            "global_step": self.global_step_,
            "head": self.head_.to_config(),
            "columns": columns_to_config(self._columns_list()),
        }
        _write_atomic(path / "spec.json", json.dumps(spec, indent=1).encode())
        return path

    @property
    def model_dir_path(self) -> Path | None:
        return getattr(self, "model_dir_", None)


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` through a temporary file and a rename."""
    from trainrun._atomic import _tmp_path

    tmp = _tmp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _xgb_label(y: Any) -> Any:
    if y is None:
        return None
    y = np.asarray(y)
    return y.reshape(len(y), -1) if y.ndim > 1 and y.shape[1] > 1 else y.reshape(-1)


def _strip_reduction(head: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in head.items() if k not in ("loss_reduction", "label_mean", "label_scale")
    }


def list_tree_checkpoints(model_dir: Path) -> list[Path]:
    """``trees-<n>.json`` files whose model file exists, oldest first."""
    found = []
    for p in Path(model_dir).glob("trees-*.json"):
        m = _CKPT.match(p.name)
        if m and any(p.with_suffix(suffix).exists() for suffix in SUFFIX.values()):
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_tree_checkpoint(model_dir: Path) -> Path | None:
    found = list_tree_checkpoints(model_dir)
    return found[-1] if found else None


class BoostedTreesClassifier(_BoostedTrees):
    """Gradient-boosted trees for classification (tf.estimator's BoostedTreesClassifier).

    ``n_classes=2`` is one logit (the binary head's metrics: accuracy, auc, precision ...);
    more classes one logit per class. See the module docstring for the arguments.
    """

    _estimator_type = "classifier"

    def __init__(
        self,
        *,
        feature_columns: Sequence[Any] | None = None,
        n_batches_per_layer: int | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        n_trees: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        l1_regularization: float = 0.0,
        l2_regularization: float = 0.0,
        tree_complexity: float = 0.0,
        min_node_weight: float = 0.0,
        config: RunConfig | None = None,
        center_bias: bool = False,
        pruning_mode: str = "none",
        quantile_sketch_epsilon: float = 0.01,
        engine: str = "auto",
        engine_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.feature_columns = feature_columns
        self.n_batches_per_layer = n_batches_per_layer
        self.model_dir = model_dir
        self.n_classes = n_classes
        self.weight_column = weight_column
        self.label_vocabulary = label_vocabulary
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.l1_regularization = l1_regularization
        self.l2_regularization = l2_regularization
        self.tree_complexity = tree_complexity
        self.min_node_weight = min_node_weight
        self.config = config
        self.center_bias = center_bias
        self.pruning_mode = pruning_mode
        self.quantile_sketch_epsilon = quantile_sketch_epsilon
        self.engine = engine
        self.engine_params = engine_params

    def _build_head(self) -> Any:
        from trainrun.modules.heads import make_classification_head

        return make_classification_head(self.n_classes, self.label_vocabulary)


class BoostedTreesRegressor(_BoostedTrees):
    """Gradient-boosted trees for regression (tf.estimator's BoostedTreesRegressor): squared error."""

    _estimator_type = "regressor"

    def __init__(
        self,
        *,
        feature_columns: Sequence[Any] | None = None,
        n_batches_per_layer: int | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        n_trees: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        l1_regularization: float = 0.0,
        l2_regularization: float = 0.0,
        tree_complexity: float = 0.0,
        min_node_weight: float = 0.0,
        config: RunConfig | None = None,
        center_bias: bool = False,
        pruning_mode: str = "none",
        quantile_sketch_epsilon: float = 0.01,
        engine: str = "auto",
        engine_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.feature_columns = feature_columns
        self.n_batches_per_layer = n_batches_per_layer
        self.model_dir = model_dir
        self.label_dimension = label_dimension
        self.weight_column = weight_column
        self.n_trees = n_trees
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.l1_regularization = l1_regularization
        self.l2_regularization = l2_regularization
        self.tree_complexity = tree_complexity
        self.min_node_weight = min_node_weight
        self.config = config
        self.center_bias = center_bias
        self.pruning_mode = pruning_mode
        self.quantile_sketch_epsilon = quantile_sketch_epsilon
        self.engine = engine
        self.engine_params = engine_params

    def _build_head(self) -> Any:
        from trainrun.modules.heads import RegressionHead

        return RegressionHead(self.label_dimension)


# --------------------------------------------------------------------- exports


class ExportedBoostedTrees:
    """A loaded boosted-trees export: ``predict(data)`` / ``predict_frame(data)``."""

    def __init__(
        self, spec: Mapping[str, Any], booster: Any, head: Any, features: TreeFeatures, path: Path
    ) -> None:
        self.spec = dict(spec)
        self.booster = booster
        self.head = head
        self.features = features
        self.transform = features.transform
        self.path = path

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(self.transform.required_keys)

    def _outputs(
        self, data: Any, keys: Sequence[str] | None, batch_size: int
    ) -> list[dict[str, np.ndarray]]:
        import torch

        from trainrun.model_dir.export import _as_columns, _num_rows

        engine = self.spec.get("engine", "xgboost")
        cols = _as_columns(data)
        n = _num_rows(cols)
        outs = []
        for start in range(0, max(n, 1), batch_size):
            chunk = {k: v[start : start + batch_size] for k, v in cols.items()}
            x = self.features.matrix(self.transform.encode(chunk))
            if engine == "lightgbm":
                from trainrun.estimators import _lightgbm

                z = _lightgbm.raw_margins(self.booster, x)
            else:
                d = _xgb().DMatrix(
                    x,
                    feature_names=self.features.names,
                    feature_types=self.features.types,
                    enable_categorical=True,
                )
                z = self.booster.predict(d, output_margin=True).reshape(len(x), -1)
                z = z.astype(np.float64)
            out = self.head.predictions(torch.from_numpy(z))
            outs.append({k: out[k] for k in keys} if keys else out)
            if n == 0:
                break
        return outs

    def predict(
        self, data: Any, predict_keys: Sequence[str] | None = None, batch_size: int = 65536
    ) -> dict[str, np.ndarray]:
        keys = self.head.check_predict_keys(predict_keys)
        outs = self._outputs(data, keys, batch_size)
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def predict_frame(
        self, data: Any, predict_keys: Sequence[str] | None = None, batch_size: int = 65536
    ) -> Any:
        from trainrun.model_dir.export import predictions_to_frame

        keys = self.head.check_predict_keys(predict_keys)
        return predictions_to_frame(self._outputs(data, keys, batch_size), keys)

    def __repr__(self) -> str:
        return f"ExportedBoostedTrees({self.spec.get('estimator', '?')}, path={str(self.path)!r})"


def load_boosted_trees_export(path: str | os.PathLike[str]) -> ExportedBoostedTrees:
    """Load what ``BoostedTrees*.export(path)`` wrote (also reached through load_exported)."""
    from trainrun.feature_columns import columns_from_config
    from trainrun.modules.heads import head_from_config

    path = Path(path)
    spec_path = path / "spec.json"
    if not spec_path.exists():
        raise ModelDirError(f"{path} is not a boosted-trees export: it needs spec.json.")
    spec = json.loads(spec_path.read_text())
    if spec.get("format") != EXPORT_FORMAT:
        raise ModelDirError(
            f"{spec_path} has format {spec.get('format')!r}; this trainrun reads {EXPORT_FORMAT!r}."
        )
    engine = spec.get("engine", "xgboost")
    if engine not in SUFFIX:
        raise ModelDirError(
            f"{spec_path} names engine {engine!r}; this trainrun reads {' and '.join(ENGINES)} trees."
        )
    model = path / f"model{SUFFIX[engine]}"
    if not model.exists():
        raise ModelDirError(
            f"{path} is not a boosted-trees export: it needs spec.json and {model.name}."
        )
    booster = _load_model(engine, model)
    features = TreeFeatures(columns_from_config(spec["columns"]))
    return ExportedBoostedTrees(spec, booster, head_from_config(spec["head"]), features, path)
