"""The estimator base: settings in, train / evaluate / predict / export out.

Subclasses only declare their settings (a keyword-only ``__init__`` that stores
them), the checks on those settings, and how to build their head and network.
Everything else — model directory, checkpoints, the training loop, evaluation,
prediction, export and recording into an active training run — lives here.

Learned state carries a trailing underscore (``network_``, ``head_``,
``transform_``, ``model_dir_``, ``global_step_``), as in scikit-learn.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import copy
import logging
import numbers
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainrun.estimators._sklearn import ScikitLearnMixin, _short_repr
from trainrun.estimators.run_config import RunConfig
from trainrun.exceptions import InputError, ModelDirError, NotTrainedError, UsageError

if TYPE_CHECKING:
    from trainrun.training.callbacks import History

__all__ = ["Estimator"]

log = logging.getLogger("trainrun")

CHECKPOINT_FORMAT = "trainrun.checkpoint/1"
MAX_STEPS_ENV = "TRAINRUN_MAX_STEPS"
# As trainrun.modules.linear.SPARSE_COMBINERS (not imported here: that module imports torch).
SPARSE_COMBINERS = ("sum", "mean", "sqrtn")


# --------------------------------------------------------------------- parameter checks
# Each check is (predicate, what the value must be); the sentence is built in one place.


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _columns_ok(v: Any) -> bool:
    from trainrun.feature_columns import FeatureColumn

    if isinstance(v, FeatureColumn):
        return True
    return (
        isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(c, FeatureColumn) for c in v)
    )


def _optional_columns_ok(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and len(v) == 0) or _columns_ok(v)


def _hidden_units_ok(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_int(u) and u > 0 for u in v)


def _optimizer_ok(v: Any) -> bool:
    import torch

    if isinstance(v, str):
        return True
    if isinstance(v, torch.optim.Optimizer):
        return False  # its parameters are not ours; a class or factory is needed
    return callable(v)


def _activation_ok(v: Any) -> bool:
    from trainrun.modules._activations import activation_name

    return activation_name(v) is not None or (callable(v) and not isinstance(v, str))


def _dropout_ok(v: Any) -> bool:
    return v is None or (
        isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= float(v) < 1
    )


def _loss_reduction_ok(v: Any) -> bool:
    from trainrun.modules.heads import LOSS_REDUCTIONS

    name = getattr(v, "name", v)
    return isinstance(name, str) and name.lower() in LOSS_REDUCTIONS


def _weight_column_ok(v: Any) -> bool:
    return v is None or isinstance(v, str) or isinstance(getattr(v, "key", None), str)


def _path_ok(v: Any) -> bool:
    return v is None or isinstance(v, (str, os.PathLike))


def _warm_start_ok(v: Any) -> bool:
    from trainrun.estimators.warm_start import WarmStartSettings

    return _path_ok(v) or isinstance(v, WarmStartSettings)


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "feature_columns": (_columns_ok, "a non-empty list of feature columns"),
    "linear_feature_columns": (_optional_columns_ok, "a list of feature columns or None"),
    "dnn_feature_columns": (_optional_columns_ok, "a list of feature columns or None"),
    "hidden_units": (_hidden_units_ok, "a non-empty list of positive ints"),
    "dnn_hidden_units": (
        lambda v: v is None or _hidden_units_ok(v),
        "a non-empty list of positive ints",
    ),
    "n_classes": (lambda v: _is_int(v) and v >= 2, "an int >= 2"),
    "label_dimension": (lambda v: _is_int(v) and v >= 1, "a positive int"),
    "weight_column": (_weight_column_ok, "a column name, a numeric_column or None"),
    "optimizer": (
        _optimizer_ok,
        "an optimizer name, a torch optimizer class or a factory of params",
    ),
    "linear_optimizer": (
        _optimizer_ok,
        "an optimizer name, a torch optimizer class or a factory of params",
    ),
    "dnn_optimizer": (
        _optimizer_ok,
        "an optimizer name, a torch optimizer class or a factory of params",
    ),
    "activation_fn": (_activation_ok, "an activation name such as 'relu' or a function"),
    "dnn_activation_fn": (_activation_ok, "an activation name such as 'relu' or a function"),
    "dropout": (_dropout_ok, "a float in [0, 1) or None"),
    "dnn_dropout": (_dropout_ok, "a float in [0, 1) or None"),
    "batch_norm": (lambda v: isinstance(v, bool), "a bool"),
    "loss_reduction": (_loss_reduction_ok, "'sum_over_batch_size' or 'sum'"),
    "sparse_combiner": (lambda v: v in SPARSE_COMBINERS, "'sum', 'mean' or 'sqrtn'"),
    "linear_sparse_combiner": (lambda v: v in SPARSE_COMBINERS, "'sum', 'mean' or 'sqrtn'"),
    "model_dir": (_path_ok, "a path or None"),
    "warm_start_from": (
        _warm_start_ok,
        "a path to a model directory, checkpoint or export, a WarmStartSettings, or None",
    ),
    "standardize_labels": (lambda v: isinstance(v, bool), "a bool"),
    "config": (lambda v: v is None or isinstance(v, RunConfig), "a RunConfig or None"),
}


def _jsonable(value: Any) -> Any:
    """Settings as JSON for checkpoints: columns as configs, anything else by its repr."""
    from trainrun.feature_columns import FeatureColumn

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, FeatureColumn):
        return value.to_config()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, RunConfig):
        return value.to_dict()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    from trainrun.modules._activations import activation_name

    name = activation_name(value) if callable(value) else None
    return name if name is not None else repr(value)


# Network settings that do not shape the weights: a model_dir restores under other values.
_FREE_NETWORK_KEYS = ("dropout", "sparse_combiner")
# Head settings that do not shape the weights; the target scaling is restored with them.
_FREE_HEAD_KEYS = ("loss_reduction", "label_mean", "label_scale")


def _strip(config: Any, keys: Sequence[str]) -> Any:
    """A copy of a nested config without ``keys`` (settings that do not shape the weights)."""
    if isinstance(config, Mapping):
        return {k: _strip(v, keys) for k, v in config.items() if k not in keys}
    if isinstance(config, list):
        return [_strip(v, keys) for v in config]
    return config


# --------------------------------------------------------------------- the base


class Estimator(ScikitLearnMixin, abc.ABC):
    """Base class of the six canned estimators (scikit-learn's conventions).

    Subclasses define a keyword-only ``__init__`` that stores each argument
    unchanged, and ``_build_head``, ``_columns``, ``_network_config`` and
    ``_optimizer_settings``.
    """

    # scikit-learn reads this attribute (sklearn.base.is_classifier / is_regressor).
    _estimator_type: str = ""
    _takes_sequence_columns = False  # canned estimators refuse them, as tf's (custom: True)
    # constructor arguments every family takes (each __init__ stores them as given)
    model_dir: str | os.PathLike[str] | None
    config: RunConfig | None
    warm_start_from: str | os.PathLike[str] | None
    _checkpoint_path: Path | None  # the last checkpoint written or restored
    # fitted state, None until built (``_build``); read only after ``_build`` has run, so it is
    # typed as the built objects' interface rather than narrowed at every use
    network_: Any
    transform_: Any
    head_: Any
    # this rank's share of the input under torchrun (a TrainShard or an EvalShard, by use)
    shard_: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # tf's Estimator(model_fn=...): the base class itself builds a custom-model estimator.
        if cls is Estimator:
            from trainrun.estimators.custom import CustomEstimator

            cls = CustomEstimator
        return super().__new__(cls)

    # ------------------------------------------------------------ settings
    def _forget_fitted(self) -> None:
        # new settings mean a new network: rebuild (and restore from model_dir) on next use
        self.network_ = None

    def _validate_params(self) -> None:
        cls = type(self).__name__
        for name in ("feature_columns", "linear_feature_columns", "dnn_feature_columns"):
            given = getattr(self, name, None)
            if isinstance(given, (list, tuple)):
                keys = [c for c in given if isinstance(c, str)]
                if keys:
                    raise UsageError(
                        f"The {name!r} parameter of {cls} must hold feature columns, not raw "
                        f"keys: wrap each key in a column, e.g. numeric_column({keys[0]!r}) "
                        f"or indicator_column(categorical_column_with_vocabulary_list("
                        f"{keys[0]!r}, [...])); trainrun.columns_from_frame(df) proposes "
                        f"columns from a DataFrame's dtypes. Got {list(given)!r} instead."
                    )
        for name in self._param_names():
            check = CHECKS.get(name)
            if check is None:
                continue
            ok, what = check
            value = getattr(self, name)
            if not ok(value):
                raise UsageError(
                    f"The {name!r} parameter of {cls} must be {what}. Got {value!r} instead."
                )
        validate_kind = getattr(self, "_validate_kind", None)
        if validate_kind is not None:
            validate_kind()  # the classifier / regressor mixin's own settings
        self._validate_more()

    def _validate_more(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Checks that involve several settings (overridden by the combined estimators)."""

    # ------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _build_head(self) -> Any: ...

    @abc.abstractmethod
    def _columns(self) -> dict[str, list[Any]]: ...

    @abc.abstractmethod
    def _network_config(self, units: int) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _optimizer_settings(self) -> list[tuple[str, Any]]:
        """(part, identifier) pairs: part "linear", "dnn" or "all"."""

    # ------------------------------------------------------------ state
    @property
    def config_(self) -> RunConfig:
        return self.config if self.config is not None else RunConfig()

    @property
    def global_step_(self) -> int:
        return getattr(self, "_global_step", 0)

    def _is_built(self) -> bool:
        return getattr(self, "network_", None) is not None

    def _build(self) -> None:
        """Validate, resolve model_dir, build the network, restore or warm-start it."""
        if self._is_built():
            self._reload_if_newer()
            return
        import torch

        self._validate_params()
        config = self.config_
        self.device_ = config.resolved_device()
        self._data_parallel = _setup_distributed(self.device_)  # torchrun: join the group
        self.model_dir_ = self._resolve_model_dir()
        head = self._build_head()
        columns = self._columns()
        for part, cols in columns.items():
            arg = f"{part}_feature_columns"  # wide-and-deep's two; the others' one
            arg = arg if hasattr(self, arg) else "feature_columns"
            _check_feature_columns(cols, arg)
            if not self._takes_sequence_columns:
                from trainrun.feature_columns._sequence import refuse_sequence_columns

                refuse_sequence_columns(cols, type(self).__name__, arg)
        net_config = self._network_config(head.logits_dimension)
        with torch.random.fork_rng(devices=[]):
            if config.seed is not None:
                torch.manual_seed(config.seed)
            network = self._make_network(net_config, columns)
        self.head_ = head
        self.columns_ = columns
        self.transform_ = self._make_transform(columns)
        self.network_ = network.to(self.device_)
        self.optimizers_ = self._make_optimizers()
        self._global_step = 0
        self._checkpoint_path = None

        from trainrun.model_dir.checkpoints import latest_checkpoint

        try:
            found = latest_checkpoint(self.model_dir_)
            if found is not None:
                self._restore(found)
            elif self.warm_start_from is not None:
                self._warm_start(self.warm_start_from)
        except BaseException:
            # Never keep a half-built network: it would train over an incompatible model_dir.
            self.network_ = None
            raise

    def _make_network(self, config: dict[str, Any], columns: dict[str, list[Any]]) -> Any:
        """The network for ``config`` (a hook: the custom-model estimator builds the user's)."""
        from trainrun.modules._build import build_network

        return build_network(config, columns)

    def _make_transform(self, columns: dict[str, list[Any]]) -> Any:
        from trainrun.model_dir.export import transform_for  # the same choice as load_exported

        return transform_for(columns)

    def _resolve_model_dir(self) -> Path:
        earlier = getattr(self, "model_dir_", None)
        if self.model_dir is None and earlier is not None:
            return earlier  # a rebuild (after set_params) keeps its temporary or run folder
        if self.model_dir is not None:
            path = Path(self.model_dir).expanduser()
            if path.exists() and not path.is_dir():
                raise ModelDirError(
                    f"model_dir must be a directory, but {path} is a file. "
                    f"Received: model_dir={os.fspath(self.model_dir)!r}"
                )
            path.mkdir(parents=True, exist_ok=True)
            return path
        from trainrun.training.run_recorder import active_model_dir

        run_model = active_model_dir()
        if run_model is not None:
            run_model.mkdir(parents=True, exist_ok=True)
            return run_model
        path = Path(tempfile.mkdtemp(prefix="trainrun-model-"))
        if self.config_.keep_temp_model_dir:
            log.warning("Using temporary folder as model directory: %s", path)
        else:
            _TEMP_MODEL_DIRS.add(path)
            log.warning(
                "Using temporary folder as model directory (deleted at exit; pass model_dir= "
                "or RunConfig(keep_temp_model_dir=True) to keep it): %s",
                path,
            )
        return path

    def _make_optimizers(self) -> list[Any]:
        from trainrun.training.optimizers import get_optimizer

        opts = []
        for part, identifier in self._optimizer_settings():
            module = self.network_ if part == "all" else getattr(self.network_, part)
            if module is None:
                continue
            params = [p for p in module.parameters() if p.requires_grad]
            if not params:
                continue
            opts.append(get_optimizer(identifier, params))
        return opts

    # ------------------------------------------------------------ checkpoints
    def _architecture(self) -> dict[str, Any]:
        """What must match for a checkpoint to fit: settings that shape or give meaning to weights."""
        from trainrun.feature_columns import columns_to_config

        return {
            "estimator": type(self).__name__,
            "head": _strip(self.head_.to_config(), _FREE_HEAD_KEYS),
            "network": _strip(self.network_.to_config(), _FREE_NETWORK_KEYS),
            "columns": {part: columns_to_config(cols) for part, cols in self.columns_.items()},
        }

    def _meta(self) -> dict[str, Any]:
        from trainrun.feature_columns import columns_to_config

        return {
            "format": CHECKPOINT_FORMAT,
            "estimator": type(self).__name__,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "architecture": self._architecture(),
            "head": self.head_.to_config(),
            "network": self.network_.to_config(),
            "columns": {part: columns_to_config(cols) for part, cols in self.columns_.items()},
            "transform": self.transform_.to_config(),
            "optimizer_classes": [type(o).__name__ for o in self.optimizers_],
        }

    def _save_checkpoint(self, step: int) -> Path:
        from trainrun.model_dir.checkpoints import save_checkpoint

        meta = self._meta()
        position = getattr(self, "_input_position", None)
        if position is not None:  # a streamed input's place, to resume at (inputs/_resume.py)
            meta["input_position"] = position.at(step)
        return save_checkpoint(
            self.model_dir_,
            step,
            self.network_.state_dict(),
            [o.state_dict() for o in self.optimizers_],
            meta,
            keep=self.config_.keep_checkpoint_max,
        )

    def _check_compatible(self, meta: Mapping[str, Any], where: Path) -> None:
        import json

        # Stripped here too: checkpoints written before a key became free still hold it.
        stored = _strip(meta.get("architecture") or {}, _FREE_NETWORK_KEYS)
        mine = json.loads(json.dumps(self._architecture(), default=str))
        diffs = [k for k in mine if stored.get(k) != mine[k]]
        if not diffs:
            return
        details = []
        for key in diffs:
            if key == "estimator":
                details.append(f"it holds a {stored.get('estimator')}, not a {mine['estimator']}")
            elif key == "columns":
                details.append("its feature columns differ")
            else:
                details.append(f"its {key} differs ({stored.get(key)} vs {mine[key]})")
        raise ModelDirError(
            f"model_dir {where} holds an incompatible model: {'; '.join(details)}. Use a new "
            "model_dir, delete the old one, or construct the estimator with the stored settings."
        )

    def _restore(self, path: Path) -> None:
        from trainrun.model_dir._checks import check_optimizer_state
        from trainrun.model_dir.checkpoints import load_checkpoint, read_checkpoint_meta

        self._check_compatible(read_checkpoint_meta(path), self.model_dir_)
        ckpt = load_checkpoint(path)
        self._load_weights(ckpt.model_state, strict=True, source=path)
        stored_classes = ckpt.meta.get("optimizer_classes", [])
        mine = [type(o).__name__ for o in self.optimizers_]
        if stored_classes == mine and len(ckpt.optimizer_states) == len(self.optimizers_):
            for opt, state in zip(self.optimizers_, ckpt.optimizer_states, strict=True):
                check_optimizer_state(opt, state, path.with_suffix(".optim.safetensors"))
                opt.load_state_dict(state)
                _move_optimizer_state(opt, self.device_)
        else:
            warnings.warn(
                f"The checkpoint in {self.model_dir_} was trained with optimizers {stored_classes}, "
                f"this estimator uses {mine}: weights restored, optimizer state starts fresh.",
                stacklevel=3,
            )
        self._adopt_head_scaling(ckpt.meta.get("head") or {})
        self._global_step = ckpt.global_step
        self._checkpoint_path = path
        self._saved_input_position = ckpt.meta.get("input_position")

    def _adopt_head_scaling(self, head_config: Mapping[str, Any]) -> None:
        """A regression head takes the target scaling its weights were trained with."""
        setter = getattr(self.head_, "set_label_scaling", None)
        if setter is not None and "label_mean" in head_config:
            setter(head_config.get("label_mean"), head_config.get("label_scale"))

    def _reload_if_newer(self) -> None:
        """Another estimator may have trained in the same model_dir since: follow it (as tf does)."""
        from trainrun.model_dir.checkpoints import latest_checkpoint

        found = latest_checkpoint(self.model_dir_)
        if found is not None and found != getattr(self, "_checkpoint_path", None):
            self._restore(found)

    def _load_weights(self, state: Mapping[str, Any], strict: bool, source: Path) -> list[str]:
        own = self.network_.state_dict()
        if strict:  # exactly this model's tensors: names, shapes, dtypes (no silent casts)
            from trainrun.model_dir._checks import check_state

            check_state(own, state, Path(source).with_suffix(".safetensors"))
        loaded = {
            k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)
        }
        self.network_.load_state_dict(loaded, strict=False)
        return sorted(loaded)

    def _warm_start(self, source: Any) -> None:
        """Initialise from another model (a path or WarmStartSettings; see warm_start.py)."""
        from trainrun.estimators.warm_start import WarmStartSettings, warm_start

        loaded = warm_start(self, source)
        self._warm_started = True  # its weights bring their target scaling (or none)
        where = source.ckpt_to_initialize_from if isinstance(source, WarmStartSettings) else source
        if not loaded:
            raise ModelDirError(
                f"warm_start_from={os.fspath(where)!r} shares no weight (same name and shape, "
                "or a remappable vocabulary table) with this model; check its feature "
                "columns, layer sizes and vars_to_warm_start."
            )
        log.info(
            "Warm-started %d of %d weights from %s",
            len(loaded),
            len(self.network_.state_dict()),
            where,
        )

    # ------------------------------------------------------------ inputs
    def _weight_key(self) -> str | None:
        if getattr(self, "_sample_weight_key", None) is not None:
            return self._sample_weight_key  # fit(X, y, sample_weight=...)
        w = getattr(self, "weight_column", None)
        if w is None or isinstance(w, str):
            return w
        return w.key

    def _batches(
        self,
        input_fn: Any,
        labels: bool,
        seed: int | None = None,
        shard: str | None = None,
        steps: int | None = None,
        start: int = 0,
    ) -> Iterator[Any]:
        fn = _resolve_input_fn(input_fn)
        if seed is not None and getattr(fn, "shuffle", False) and getattr(fn, "seed", 0) is None:
            # RunConfig(seed=...) also fixes the order of an unseeded shuffled input, as
            # tf_random_seed does in tf.estimator. A shallow copy: the user's InputFn keeps
            # its own seed, and the copy shares its cache of encoded data.
            fn = copy.copy(fn)
            fn.seed = seed
        # Without labels, a response column that is present is skipped, not decoded.
        response = getattr(fn, "response", None)
        label_fn = _NamedLabels(self.head_.label_fn, response) if labels else _ignore_labels
        weight_key = self._weight_key() if labels else None
        if shard is not None and getattr(self, "_data_parallel", False):
            # several processes: this rank's share ("train" or "eval"; see inputs/_sharding.py)
            from trainrun.inputs._sharding import make_shard

            self.shard_ = make_shard(shard, fn, self.transform_, label_fn, weight_key, steps, start)
            batches = self.shard_
        else:
            kw = {"start": start} if start else {}  # a resumed stream (inputs/_resume.py)
            batches = iter(
                fn.batches(self.transform_, label_fn=label_fn, weight_key=weight_key, **kw)
            )
        column = getattr(self, "weight_column", None)
        if labels and getattr(column, "normalizer_fn", None) is not None:
            return _normalized_weights(batches, column)
        return batches

    def _to_device(self, batch: Any) -> Any:
        if self.device_.type == "cpu":
            return batch
        dev = self.device_
        feats = {k: v.to(dev, non_blocking=True) for k, v in batch.features.items()}
        labels = None if batch.labels is None else batch.labels.to(dev, non_blocking=True)
        weights = None if batch.weights is None else batch.weights.to(dev, non_blocking=True)
        return type(batch)(feats, labels, weights)

    def _tensorboard_dir(
        self, eval_name: str | None = None, evaluating: bool = False
    ) -> Path | None:
        if not self.config_.tensorboard:
            return None
        from trainrun.training.run_recorder import events_dir

        return events_dir(self.model_dir_, evaluating=evaluating, eval_name=eval_name)

    # ------------------------------------------------------------ train
    def train(
        self,
        input_fn: Any,
        steps: int | None = None,
        max_steps: int | None = None,
        callbacks: Sequence[Any] | None = None,
        hooks: Sequence[Any] | None = None,
    ) -> History:
        """Train on ``input_fn``'s batches; returns a :class:`~trainrun.training.callbacks.History`.

        ``steps`` trains that many more steps; ``max_steps`` stops at that global
        step (and does nothing when already there). With neither, training runs
        until the input is exhausted (its ``epochs``), and warns when that is very few
        steps. The environment variable ``TRAINRUN_MAX_STEPS`` caps the steps of every
        call (for smoke tests). ``hooks`` is tf.estimator's name for ``callbacks``.

        >>> history = est.train(input_fn(train_df, response="churn"), steps=200)  # doctest: +SKIP
        >>> history                                                               # doctest: +SKIP
        Trained for 200 steps (global step 200) in 1.3 s, 19,210 examples/s; loss 0.4411 (mean of the last 20 steps)
        """
        from trainrun.training.callbacks import History
        from trainrun.training.loop import TrainState

        _check_steps(steps, max_steps)
        extra = _merge_hooks(callbacks, hooks, "train")
        self._build()
        start = self.global_step_
        limit = _step_limit(start, steps, max_steps)
        history = History()
        if limit is not None and start >= limit:
            log.info(
                "Skipping training: global step %d already reached max_steps=%d.", start, limit
            )
            history.start_step = history.end_step = start
            return history
        fn = _resolve_input_fn(input_fn)
        self._fit_label_scaling(fn)
        state = TrainState(global_step=start, start_step=start, max_steps=limit, estimator=self)
        _describe_input(state, fn)
        self._run_training(fn, state, [*self._training_callbacks(history), *extra])
        if state.steps_done == 0 and (limit is None or start < limit):
            raise InputError(
                "input_fn produced no batches to train on. Check that the data is not empty."
            )
        if steps is None and max_steps is None and _env_max_steps() is None:
            _warn_if_few_steps(state, fn)
        return history

    def _training_callbacks(self, history: Any) -> list[Any]:
        """The side effects of every train() call, in order: the NaN guard first, so that
        no logger or checkpoint sees a NaN loss."""
        from trainrun.training.callbacks import (
            CheckpointSaver,
            NanLossGuard,
            ProgressLogger,
            TensorBoardLogger,
        )
        from trainrun.training.run_recorder import RunRecorder

        config = self.config_
        own: list[Any] = [NanLossGuard()]
        if getattr(self, "_data_parallel", False):
            from trainrun.training.distributed import GlobalLosses

            own.insert(0, GlobalLosses())  # the loss of the global batch, on every rank
        if not self._is_chief():  # data-parallel: only rank 0 writes (events, metrics, checkpoints)
            return [*own, history]
        tb_dir = self._tensorboard_dir()
        if tb_dir is not None:
            own.append(TensorBoardLogger(tb_dir, every=config.save_summary_steps))
        own.append(history)
        if config.progress:
            own.append(ProgressLogger(every=config.log_step_count_steps))
        own.append(RunRecorder(every=config.log_step_count_steps))
        own.append(CheckpointSaver(self._save_from_loop, every=config.save_checkpoints_steps))
        return own

    def _step_fn(self) -> Callable[[Any], Any]:
        """One optimisation step on a batch; returns the loss people see (detached)."""
        if getattr(self, "_data_parallel", False):
            from trainrun.training.distributed import step_fn

            return step_fn(self, lambda: self.shard_.global_rows)
        network, head, opts = self.network_, self.head_, self.optimizers_
        to_device = self._to_device

        def step(batch: Any) -> Any:
            batch = to_device(batch)
            logits = network(batch.features)
            loss = head.loss(logits, batch.labels, batch.weights)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in opts:
                opt.step()
            return head.reported_loss(loss.detach(), logits, batch.labels, batch.weights)

        return step

    def _run_training(self, fn: Any, state: Any, callbacks: list[Any]) -> None:
        """The loop over ``fn``'s batches; Ctrl-C checkpoints, a NaN loss drops the weights."""
        import torch

        from trainrun.exceptions import NanLossError
        from trainrun.training.callbacks import TensorBoardLogger
        from trainrun.training.loop import train_loop

        config, start = self.config_, state.global_step
        if config.seed is not None:
            # Dropout masks and shuffles that use torch's global generator repeat per step.
            torch.manual_seed(config.seed + start)
        # Per train() call, so that a second call does not replay the first one's order.
        seed = None if config.seed is None else config.seed + start
        # A streamed input continues where the last checkpoint of it left off.
        self._input_position = position = _stream_position(self, fn, seed, start)
        if position is not None:
            seed = position.seed
        at = 0 if position is None else position.start
        batches = _checked_batches(
            self._batches(fn, labels=True, seed=seed, shard="train", start=at), "train"
        )
        self.network_.train()
        try:
            with config.threads():
                train_loop(
                    self._step_fn(),
                    batches,
                    callbacks,
                    state,
                    batch_size=_batch_size,
                    sync_every=_sync_every(config),
                )
            if getattr(self, "_data_parallel", False):
                _barrier()  # rank 0's last checkpoint is on disk before any rank reads it
        except KeyboardInterrupt:
            # Ctrl-C keeps the steps done so far: checkpoint them, then stop as asked.
            if state.global_step > start:
                self._save_from_loop(state.global_step)
            raise
        except NanLossError:
            # The weights in memory are NaN: drop them, so that the next call restores
            # the last checkpoint (or starts afresh) instead of predicting NaN.
            self.network_ = None
            raise
        finally:
            self._global_step = state.global_step
            if position is not None:
                self._saved_input_position = position.at(state.global_step)
            if self.network_ is not None:
                self.network_.eval()
            for cb in callbacks:
                if isinstance(cb, TensorBoardLogger):
                    cb.close()  # flush what was logged, even when training failed

    def _fit_label_scaling(self, fn: Any) -> None:
        """Standardise a regression target from the training data, once (before the first step).

        A restored or warm-started model keeps the scaling its weights were trained with.
        """
        head = self.head_
        wants = getattr(self, "_wants_label_scaling", None)
        if wants is None or not wants() or getattr(head, "scaled", True):
            return
        if self.global_step_ > 0 or getattr(self, "_checkpoint_path", None) is not None:
            return
        if getattr(self, "_warm_started", False):
            return  # warm-started weights keep the scaling they were trained with
        import torch

        limit = fn.num_rows if getattr(fn, "num_rows", None) else _SCALING_SAMPLE
        seen, parts = 0, []
        for batch in _checked_batches(self._batches(fn, labels=True, seed=0), "train"):
            parts.append(batch.labels)
            seen += batch.labels.shape[0]
            if seen >= min(limit, _SCALING_SAMPLE):
                break
        if parts:
            head.fit_label_scaling(torch.cat(parts))

    def _is_chief(self) -> bool:
        """False on ranks other than 0 of a data-parallel run (they write nothing)."""
        if not getattr(self, "_data_parallel", False):
            return True
        from trainrun.training.distributed import is_chief

        return is_chief()

    def _save_from_loop(self, step: int) -> None:
        self._global_step = step
        if not self._is_chief():
            return
        self._checkpoint_path = self._save_checkpoint(step)

    # ------------------------------------------------------------ evaluate
    def _require_trained(self, verb: str) -> None:
        self._build()
        if self.global_step_ == 0 and getattr(self, "_checkpoint_path", None) is None:
            if self.warm_start_from is None:
                raise NotTrainedError(
                    f"{type(self).__name__} cannot {verb} before it is trained: no checkpoint in "
                    f"model_dir {self.model_dir_}. Call train() first, or pass the model_dir of a "
                    "trained model."
                )

    def evaluate(
        self,
        input_fn: Any,
        steps: int | None = None,
        name: str | None = None,
        callbacks: Sequence[Any] | None = None,
        hooks: Sequence[Any] | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
    ) -> dict[str, float]:
        """Metrics over ``input_fn`` (tf.estimator's keys, ``global_step`` included).

        Binary classifiers: accuracy, accuracy_baseline, auc (exact), auc_precision_recall,
        average_loss, label/mean, loss, precision, prediction/mean, recall. Multi-class:
        accuracy, average_loss, loss. Regressors: average_loss, label/mean, loss,
        prediction/mean (in the target's own units). ``loss`` is the mean of per-batch
        losses, ``average_loss`` the weighted mean per-example loss. ``checkpoint_path``
        evaluates an older checkpoint of the model directory instead of the latest (the
        estimator keeps its own weights). Inside a training run the result is also
        written to the run's evaluation.json.

        >>> est.evaluate(input_fn(test_df, response="churn", shuffle=False))  # doctest: +SKIP
        {'accuracy': 0.80, 'auc': 0.84, ..., 'global_step': 200}
        """
        from trainrun.training.callbacks import TensorBoardLogger
        from trainrun.training.run_recorder import RunRecorder

        if steps is not None and not (_is_int(steps) and steps > 0):
            raise UsageError(
                f"evaluate() needs steps to be a positive int or None. Received: steps={steps!r}"
            )
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise UsageError(
                f"evaluate() needs name to be a non-empty string without '/'. Received: name={name!r}"
            )
        extra = _merge_hooks(callbacks, hooks, "evaluate")
        fn = _resolve_input_fn(input_fn)
        if steps is None and getattr(fn, "epochs", 1) is None:
            raise InputError(
                "evaluate() over an input_fn with epochs=None would never end. "
                "Pass steps=N, or build the input_fn with epochs=1."
            )
        with self._weights_of(checkpoint_path, "evaluate") as step:
            results = self._evaluate_batches(fn, steps)
        results["global_step"] = step
        own: list[Any] = [RunRecorder()] if self._is_chief() else []
        tb_dir = self._tensorboard_dir(name, evaluating=True)
        if tb_dir is not None and self._is_chief():
            own.append(TensorBoardLogger(tb_dir))
        for cb in [*own, *extra]:
            cb.on_evaluate_end(results, name)
        return results

    def _evaluate_batches(self, fn: Any, steps: int | None) -> dict[str, Any]:
        import torch

        from trainrun.modules.metrics import MetricAccumulator

        logits, labels, weights, losses = [], [], [], []
        was_training = self.network_.training
        self.network_.eval()
        head = self.head_
        # Bounded memory: running sums, plus score/label/weight columns for the exact AUCs.
        # Batches are kept whole only for a head whose metrics need the whole set. Under
        # data parallelism each batch's share is kept apart, to fold every rank's in
        # one-process order.
        acc = MetricAccumulator.for_head(head)
        parallel = getattr(self, "_data_parallel", False)
        pieces: list[Any] = []
        try:
            with torch.no_grad(), self.config_.threads():
                batches = _checked_batches(
                    self._batches(fn, labels=True, shard="eval", steps=steps), "evaluate"
                )
                for i, batch in enumerate(batches):
                    if steps is not None and i >= steps:
                        break
                    batch = self._to_device(batch)
                    out = self.network_(batch.features)
                    loss = head.loss(out, batch.labels, batch.weights)
                    loss = head.reported_loss(loss, out, batch.labels, batch.weights)
                    if acc is not None and not parallel:
                        acc.update(out, batch.labels, batch.weights, loss=loss)
                        continue
                    if acc is not None:  # (global batch index, its piece, its columns)
                        part = acc.piece(out, batch.labels, batch.weights, loss=loss)
                        pieces.append((self.shard_.indices[len(pieces)], part, part.take_columns()))
                        continue
                    losses.append(loss)
                    logits.append(out)
                    labels.append(batch.labels)
                    if batch.weights is not None:
                        weights.append(batch.weights)
        finally:
            self.network_.train(was_training)
        if parallel and acc is not None:  # every rank's pieces, in one-process order
            from trainrun.training.distributed import fold_pieces

            results = fold_pieces(acc, pieces)
            return {k: float(v) for k, v in results.items()}
        if parallel:  # every rank's batches, in one-process order
            from trainrun.training.distributed import gather_evaluation

            indices = self.shard_.indices
            logits, labels, weights, losses = gather_evaluation(
                logits, labels, weights, losses, indices
            )
        if not logits and (acc is None or acc.num_batches == 0):
            raise InputError(
                "input_fn produced no batches to evaluate. Check that the data is not empty."
            )
        if acc is not None:
            results = acc.result()
        else:
            loss = float(torch.stack(losses).mean())
            all_w = torch.cat(weights).cpu() if weights else None
            results = head.metrics(torch.cat(logits).cpu(), torch.cat(labels).cpu(), all_w, loss)
        return {
            k: (float(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v)
            for k, v in results.items()
        }

    @contextlib.contextmanager
    def _weights_of(self, checkpoint_path: Any, verb: str) -> Iterator[int]:
        """The trained model, or for the block only the weights of ``checkpoint_path``;
        yields the global step of the weights in use."""
        self._require_trained(verb)
        if checkpoint_path is None:
            yield self.global_step_
            return
        from trainrun.model_dir.checkpoints import load_checkpoint

        path = Path(checkpoint_path)
        if not path.exists():
            raise ModelDirError(
                f"{verb}() found no checkpoint at {path}: pass a ckpt-N.json path from "
                f"estimator.latest_checkpoint() or the model directory's checkpoint.json. "
                f"Received: checkpoint_path={os.fspath(checkpoint_path)!r}"
            )
        ckpt = load_checkpoint(path)
        self._check_compatible(ckpt.meta, ckpt.path)
        saved = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
        scaling = _head_scaling(self.head_.to_config())
        try:
            self._load_weights(ckpt.model_state, strict=True, source=ckpt.path)
            self._adopt_head_scaling(ckpt.meta.get("head") or {})
            yield ckpt.global_step
        finally:
            self.network_.load_state_dict(saved)
            self._adopt_head_scaling(scaling)

    # ------------------------------------------------------------ predict
    def _prediction_batches(
        self,
        input_fn: Any,
        predict_keys: Sequence[str] | None,
        checkpoint_path: str | os.PathLike[str] | None = None,
        callbacks: Sequence[Any] = (),
        batches: Iterator[Any] | None = None,  # instead of input_fn's (a rank's share)
    ) -> Iterator[dict[str, Any]]:
        import torch

        fn = _resolve_input_fn(input_fn)
        with self._weights_of(checkpoint_path, "predict"):
            keys = self.head_.check_predict_keys(predict_keys)
            if getattr(fn, "shuffle", False):
                warnings.warn(
                    "predict() over a shuffled input_fn returns the examples in shuffled "
                    "order. Build it with input_fn(..., shuffle=False) to keep the data's order.",
                    stacklevel=3,
                )
            self.network_.eval()
            for batch in self._batches(fn, labels=False) if batches is None else batches:
                batch = self._to_device(batch)
                with torch.no_grad(), self.config_.threads():
                    out = self.head_.predictions(self.network_(batch.features))
                yield {k: out[k] for k in keys} if keys else out
        for cb in callbacks:
            hook = getattr(cb, "on_predict_end", None)
            if hook is not None:
                hook()

    def predict(
        self,
        input_fn: Any,
        predict_keys: Sequence[str] | None = None,
        hooks: Sequence[Any] | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
        yield_single_examples: bool = True,
    ) -> Any:
        """Yield one dict per example with tf.estimator's keys (numpy arrays, one row each).

        Classifiers: logits, logistic (binary only), probabilities, class_ids, classes,
        all_class_ids, all_classes. Regressors: predictions. Build the input_fn with
        ``shuffle=False`` to keep the data's order. ``yield_single_examples=False``
        yields one dict per batch instead; ``checkpoint_path`` predicts with an older
        checkpoint.

        >>> next(est.predict(input_fn(test_df, shuffle=False)))["probabilities"]  # doctest: +SKIP
        array([0.73, 0.27], dtype=float32)

        Given the data itself (a DataFrame or an array), this is scikit-learn's
        ``predict(X)``: one class label or value per row (see ``fit``).
        """
        if not hasattr(input_fn, "batches") and not callable(input_fn):
            return self._sklearn_predict(input_fn)  # scikit-learn's predict(X)
        if not isinstance(yield_single_examples, bool):
            raise UsageError(
                "predict() needs yield_single_examples to be True or False. "
                f"Received: yield_single_examples={yield_single_examples!r}"
            )
        extra = _merge_hooks(None, hooks, "predict")
        batches = self._prediction_batches(input_fn, predict_keys, checkpoint_path, extra)
        return batches if not yield_single_examples else _single_examples(batches)

    def predict_frame(self, input_fn: Any, predict_keys: Sequence[str] | None = None) -> Any:
        """Predictions as a pandas DataFrame, one row per example, in the data's order.

        A key of width one is one column (``class_ids``); a wider one becomes
        ``key_0 .. key_k`` (``probabilities_0``, ``probabilities_1``). A shuffled
        input_fn is refused: its rows would not line up with the data.
        """
        from trainrun.model_dir.export import predictions_to_frame

        fn = _resolve_input_fn(input_fn)
        if getattr(fn, "shuffle", False):
            raise InputError(
                "predict_frame() needs the data's order, but the input_fn shuffles: the rows "
                "would not line up with the data. Build it with input_fn(..., shuffle=False). "
                "Received: an input_fn with shuffle=True"
            )
        return predictions_to_frame(list(self._prediction_batches(fn, predict_keys)), predict_keys)

    def predict_to(
        self,
        path: str | os.PathLike[str],
        input_fn: Any,
        predict_keys: Sequence[str] | None = None,
        id_columns: Sequence[str] | None = None,
        format: str | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Stream predictions into a Parquet or CSV file, in input order, in bounded memory.

        Columns as :meth:`predict_frame`'s, after the input's ``id_columns``; the format
        follows the name (``.parquet``, ``.csv``) unless ``format`` says. The input_fn
        must not shuffle. Under torchrun every rank predicts its share of the input and
        rank 0 joins the shares into the file, in input order (every rank must call it).

        >>> est.predict_to("scores.parquet", input_fn("big/", shuffle=False),
        ...                id_columns=["customer_id"])                  # doctest: +SKIP
        """
        from trainrun.estimators._predict_to import check_input, predict_to

        fn = _resolve_input_fn(input_fn)
        check_input(fn, id_columns)  # before any prediction (and its shuffle warning)
        self._require_trained("predict")  # joins torchrun's process group, if any
        if getattr(self, "_data_parallel", False) and hasattr(fn, "in_memory"):
            from trainrun.estimators._predict_to import sharded_predict_to

            def predict_over(batches: Iterator[Any]) -> Iterator[dict[str, Any]]:
                return self._prediction_batches(fn, predict_keys, checkpoint_path, (), batches)

            def make_batches(f: Any) -> Iterator[Any]:
                return self._batches(f, labels=False)

            return sharded_predict_to(path, fn, make_batches, predict_over, id_columns, format)
        if not self._is_chief():
            _barrier()
            return Path(path)
        with _barrier_after(self):
            batches = self._prediction_batches(fn, predict_keys, checkpoint_path)
            return predict_to(path, fn, batches, id_columns, format)

    # ------------------------------------------------------------ export
    def export(
        self, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
    ) -> Path:
        """Write a self-contained artifact (safetensors weights + JSON spec with the feature columns).

        Load it with :func:`trainrun.load_exported`, which needs neither this
        class nor the training code. ``metadata`` (JSON values) is stored in its spec.

        >>> est.export("churn_model")                                   # doctest: +SKIP
        >>> trainrun.load_exported("churn_model").predict(test_df)      # doctest: +SKIP
        """
        from trainrun.model_dir.export import export_model

        self._require_trained("export")
        if not self._is_chief():  # data-parallel: rank 0 writes it; the others wait for it
            _barrier()
            return Path(path)
        with _barrier_after(self):
            return export_model(
                path,
                network=self.network_,
                head=self.head_,
                columns=self.columns_,
                extra={
                    **(metadata or {}),
                    "estimator": type(self).__name__,
                    "global_step": self.global_step_,
                },
            )

    @property
    def model_dir_path(self) -> Path | None:
        """The resolved model directory (None until the estimator first works)."""
        return getattr(self, "model_dir_", None)

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint's JSON path in the model directory, or None."""
        from trainrun.model_dir.checkpoints import latest_checkpoint

        path = self.model_dir_path
        return None if path is None else latest_checkpoint(path)

    def get_variable_names(self) -> list[str]:
        """The names of the weights in the latest checkpoint (tf.estimator's ``get_variable_names``).

        ``global_step`` is listed too. ``get_variable_value(name)`` reads one.
        """
        meta, state = self._latest_state("get_variable_names")
        return sorted([*state, "global_step"])

    def get_variable_value(self, name: str) -> Any:
        """The value of weight ``name`` in the latest checkpoint, as a numpy array
        (``"global_step"``: an int)."""
        meta, state = self._latest_state("get_variable_value")
        if name == "global_step":
            return int(meta["global_step"])
        if name not in state:
            import difflib

            near = difflib.get_close_matches(str(name), list(state), n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise InputError(
                f"The latest checkpoint has no variable {name!r}.{hint} get_variable_names() "
                f"lists them: {sorted(state)[:10]}. Received: name={name!r}"
            )
        return state[name].numpy()

    def _latest_state(self, verb: str) -> tuple[dict[str, Any], dict[str, Any]]:
        from trainrun.model_dir.checkpoints import load_checkpoint

        found = self.latest_checkpoint()
        if found is None and self.model_dir is not None:
            from trainrun.model_dir.checkpoints import latest_checkpoint

            found = latest_checkpoint(Path(self.model_dir).expanduser())
        if found is None:
            raise NotTrainedError(
                f"{type(self).__name__}.{verb}() reads the latest checkpoint, and there is none "
                f"yet in model_dir {self.model_dir_path or self.model_dir}. Call train() first."
            )
        ckpt = load_checkpoint(found)
        return {**ckpt.meta, "global_step": ckpt.global_step}, ckpt.model_state


# --------------------------------------------------------------------- helpers


#: Rows read to standardise a regression target (all of them up to this many).
_SCALING_SAMPLE = 1_000_000
#: Fewer steps than this, with the budget set by epochs, draws a warning.
FEW_STEPS = 50


def _setup_distributed(device: Any) -> bool:
    """Join torchrun's process group when launched by it (see training/distributed.py)."""
    from trainrun.training.distributed import setup

    return setup(device)


def _barrier() -> None:
    from trainrun.training.distributed import barrier

    barrier()


@contextlib.contextmanager
def _barrier_after(estimator: Any) -> Iterator[None]:
    """Data-parallel: the other ranks wait until rank 0 has written (an export)."""
    try:
        yield
    finally:
        if getattr(estimator, "_data_parallel", False):
            _barrier()


def _merge_hooks(callbacks: Any, hooks: Any, verb: str) -> list[Any]:
    """``callbacks`` and tf.estimator's ``hooks`` (the same objects), as one list."""
    out: list[Any] = []
    for arg, value in (("callbacks", callbacks), ("hooks", hooks)):
        if value is None:
            continue
        if not isinstance(value, (list, tuple)):
            raise UsageError(
                f"{verb}() needs {arg} to be a list of callbacks (trainrun.Callback). "
                f"Received: {arg}={_short_repr(value)}"
            )
        out.extend(value)
    return out


def _step_limit(start: int, steps: int | None, max_steps: int | None) -> int | None:
    """The global step to stop at (None: when the input ends), capped by TRAINRUN_MAX_STEPS."""
    limit = max_steps if max_steps is not None else (start + steps if steps is not None else None)
    cap = _env_max_steps()
    if cap is not None:
        limit = start + cap if limit is None else min(limit, start + cap)
    return limit


def _describe_input(state: Any, fn: Any) -> None:
    """Tell the progress line how many steps the input holds (epochs x batches per epoch)."""
    per_epoch = getattr(fn, "steps_per_epoch", None)
    epochs = getattr(fn, "epochs", None)
    if isinstance(per_epoch, int) and per_epoch > 0:
        state.steps_per_epoch = per_epoch
        state.epochs = epochs
        if epochs is not None:
            state.total_steps = state.start_step + per_epoch * epochs


def _warn_if_few_steps(state: Any, fn: Any) -> None:
    if state.steps_done >= FEW_STEPS or state.stop_training:
        return
    rows = getattr(fn, "num_rows", None)
    what = (
        f"{fn.epochs} epoch(s) of {rows:,} rows at batch_size={fn.batch_size}"
        if rows is not None and getattr(fn, "epochs", None)
        else "one pass over the input"
    )
    # A logged warning, as the temporary model_dir one: it reaches the console and a
    # run's output.log without turning into an error where warnings are errors.
    log.warning(
        "Training ended after only %d steps (%s): the model has most likely not converged. "
        "Train longer: raise input_fn(..., epochs=...), or pass train(..., steps=N) with "
        "input_fn(..., epochs=None), or lower batch_size; watch the loss level off in the "
        "returned History (history.plot()). See 'Choosing a training budget' in "
        "docs/estimators.md.",
        state.steps_done,
        what,
    )


#: Temporary model directories made by estimators without a model_dir: deleted at exit.
_TEMP_MODEL_DIRS: set[Path] = set()


@atexit.register
def _remove_temp_model_dirs() -> None:
    for path in list(_TEMP_MODEL_DIRS):
        shutil.rmtree(path, ignore_errors=True)
    _TEMP_MODEL_DIRS.clear()


def _single_examples(batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for out in batches:
        n = len(next(iter(out.values())))
        for i in range(n):
            yield {k: v[i] for k, v in out.items()}


def _head_scaling(head_config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: head_config.get(k) for k in ("label_mean", "label_scale") if k in head_config}


def _normalized_weights(batches: Iterator[Any], column: Any) -> Iterator[Any]:
    """A numeric_column weight_column's normalizer_fn applied to the weights, as tf does."""
    from trainrun.feature_columns._transform import _encode_numeric

    for batch in batches:
        w = batch.weights
        raw = w.detach().cpu().numpy().reshape(w.shape[0], -1)
        out = _encode_numeric(column, raw).reshape(w.shape).to(w.device)
        yield type(batch)(batch.features, batch.labels, out)


def _check_feature_columns(columns: Sequence[Any], arg: str) -> None:
    from trainrun.feature_columns._columns import check_columns

    check_columns(columns, arg)


def _check_steps(steps: Any, max_steps: Any) -> None:
    if steps is not None and max_steps is not None:
        raise UsageError(
            "train() takes steps (more steps) or max_steps (a total), not both. "
            f"Received: steps={steps!r}, max_steps={max_steps!r}"
        )
    if steps is not None and not (_is_int(steps) and steps > 0):
        raise UsageError(f"train() needs steps to be a positive int. Received: steps={steps!r}")
    if max_steps is not None and not (_is_int(max_steps) and max_steps > 0):
        raise UsageError(
            f"train() needs max_steps to be a positive int. Received: max_steps={max_steps!r}"
        )


def _env_max_steps() -> int | None:
    raw = os.environ.get(MAX_STEPS_ENV)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(
            f"{MAX_STEPS_ENV} must be a positive integer. Received: {MAX_STEPS_ENV}={raw!r}"
        )
    return value


def _stream_position(est: Any, fn: Any, seed: int | None, start: int) -> Any:
    """A training input's position (None for inputs other than input_fn's): resumed
    from the last checkpoint's when that was of the same input."""
    from trainrun.inputs import InputFn

    if not isinstance(fn, InputFn):
        return None
    from trainrun.inputs._resume import StreamPosition

    saved = getattr(est, "_saved_input_position", None)
    return StreamPosition(fn, saved, seed, start, getattr(est, "_data_parallel", False))


def _resolve_input_fn(input_fn: Any) -> Any:
    """An InputFn, or a zero-argument callable returning one (tf.estimator's style)."""
    if hasattr(input_fn, "batches"):
        return input_fn
    if callable(input_fn):
        made = input_fn()
        if hasattr(made, "batches"):
            return made
        raise InputError(
            "input_fn must be an InputFn (from trainrun.input_fn(...)) or a function returning "
            f"one. The function returned {type(made).__name__}."
        )
    if _is_data(input_fn):
        # The commonest slip: passing the data itself, as scikit-learn's fit(X, y) would.
        raise InputError(
            "input_fn must be an InputFn, not the data itself: wrap the data, e.g. "
            "est.train(trainrun.input_fn(df, response='label')) (predict: "
            "trainrun.input_fn(df, shuffle=False)). "
            f"Received: input_fn=<{type(input_fn).__module__}.{type(input_fn).__name__}>"
        )
    raise InputError(
        "input_fn must be an InputFn (from trainrun.input_fn(...)) or a function returning one. "
        f"Received: input_fn={_short_repr(input_fn)}"
    )


def _is_data(value: Any) -> bool:
    kind = type(value).__module__.split(".")[0]
    return kind in ("pandas", "numpy", "pyarrow", "polars") or isinstance(
        value, (dict, str, os.PathLike)
    )


def _checked_batches(batches: Iterator[Any], verb: str) -> Iterator[Any]:
    for batch in batches:
        if batch.labels is None:
            raise InputError(
                f"{verb}() needs labels, but the input_fn has no response column. "
                "Pass response='<label column>' to input_fn."
            )
        yield batch


def _sync_every(config: RunConfig) -> int:
    """How often the loop hands losses to the callbacks (one device sync each).

    At most 20 steps, and never more than a logging interval, or every line of a batch
    would show the same examples/s. A step that checkpoints is always a sync step, so
    the NaN guard has seen every loss before the weights are saved.
    """
    import math

    every = min(20, config.log_step_count_steps, config.save_summary_steps)
    if config.save_checkpoints_steps:
        every = math.gcd(every, config.save_checkpoints_steps)
    return every


class _NamedLabels:
    """The head's ``label_fn``, whose errors name the response column the labels come from.

    Equal for the same head and response, so an InputFn's cache of decoded labels (keyed
    by label_fn) still hits on every train() and evaluate() call.
    """

    __slots__ = ("label_fn", "response")

    def __init__(self, label_fn: Callable[[Any], Any], response: Any) -> None:
        self.label_fn = label_fn
        self.response = response

    def __call__(self, values: Any) -> Any:
        try:
            return self.label_fn(values)
        except InputError as exc:
            if self.response is None:
                raise
            raise InputError(f"Response column {self.response!r}: {exc}") from None

    def _key(self) -> tuple[Any, Any]:
        r = self.response
        return (self.label_fn, tuple(r) if isinstance(r, list) else r)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NamedLabels) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _ignore_labels(values: Any) -> Any:
    import torch

    return torch.zeros(len(values), dtype=torch.uint8)


def _batch_size(batch: Any) -> int:
    return batch.labels.shape[0]


def _move_optimizer_state(opt: Any, device: Any) -> None:
    import torch

    if device.type == "cpu":
        return
    for state in opt.state.values():
        for k, v in state.items():
            # Adam's 'step' counter stays on the CPU unless the optimizer is capturable.
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                state[k] = v.to(device)
