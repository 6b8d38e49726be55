"""train_and_evaluate: training with evaluations on checkpoints along the way, as tf.estimator.

One ``train()`` call runs the training input to its end (or ``TrainSpec.max_steps``);
every ``EvalSpec.every_n_steps`` steps (subject to ``start_delay_secs`` and
``throttle_secs``) the estimator checkpoints, evaluates ``EvalSpec.input_fn``, runs
the exporters, and goes on training; a final evaluation (and the final exports)
follows the last step. Each evaluation is kept (``result.evaluations``), written to
the model directory's TensorBoard ``eval`` (or ``eval_<name>``) events and, inside a
training run, to the run's metrics as ``val_<metric>`` rows.

Early stopping: hooks in ``TrainSpec.hooks`` see every evaluation, so
:func:`stop_if_no_decrease_hook`, :func:`stop_if_no_increase_hook` and
``EarlyStopping(monitor="val_auc")`` stop training on an evaluation metric.

>>> import trainrun as tr                                                # doctest: +SKIP
>>> est = tr.DNNClassifier(hidden_units=[32], feature_columns=cols, model_dir="churn_dnn")
>>> result = tr.train_and_evaluate(                                      # doctest: +SKIP
...     est,
...     tr.TrainSpec(train_fn, max_steps=5_000,
...                  hooks=[tr.stop_if_no_increase_hook(est, "auc", 1_000)]),
...     tr.EvalSpec(eval_fn, every_n_steps=200, exporters=[tr.BestExporter(metric="auc")]))
>>> eval_result, export_paths = result                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainrun.exceptions import UsageError
from trainrun.training.callbacks import Callback
from trainrun.training.loop import TrainState

__all__ = [
    "EvalSpec",
    "TrainAndEvaluateResult",
    "TrainSpec",
    "stop_if_no_decrease_hook",
    "stop_if_no_increase_hook",
    "train_and_evaluate",
]

DEFAULT_EVERY_N_STEPS = 100


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _hook_list(value: Any, arg: str, spec: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise UsageError(
            f"{spec} needs {arg} to be a list of callbacks. Received: {arg}={value!r:.80}"
        )
    return tuple(value)


@dataclass(frozen=True)
class TrainSpec:
    """What to train on: ``input_fn``, up to global step ``max_steps`` (None: the input's end).

    ``hooks`` (tf's name) and ``callbacks`` are the same thing: training callbacks, which
    also see each evaluation (``on_evaluate_end``).
    """

    input_fn: Any
    max_steps: int | None = None
    hooks: Sequence[Any] = ()
    callbacks: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if self.max_steps is not None and not (_is_int(self.max_steps) and self.max_steps > 0):
            raise UsageError(
                f"TrainSpec needs max_steps to be a positive int or None. "
                f"Received: max_steps={self.max_steps!r}"
            )
        object.__setattr__(self, "hooks", _hook_list(self.hooks, "hooks", "TrainSpec"))
        object.__setattr__(self, "callbacks", _hook_list(self.callbacks, "callbacks", "TrainSpec"))


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate on, how often, and what to export.

    ``steps``: batches per evaluation (None: the whole input). ``every_n_steps``:
    training steps between evaluations (None: ``RunConfig.save_checkpoints_steps``, else
    100). ``start_delay_secs``: no evaluation before that many seconds of training;
    ``throttle_secs``: at least that many seconds between two evaluations (tf.estimator
    evaluates by time only; both default to 0 here, so evaluations follow the steps).
    """

    input_fn: Any
    steps: int | None = None
    name: str | None = None
    hooks: Sequence[Any] = ()
    exporters: Sequence[Any] = ()
    start_delay_secs: float = 0
    throttle_secs: float = 0
    every_n_steps: int | None = None

    def __post_init__(self) -> None:
        from trainrun.training.exporters import Exporter

        for arg in ("steps", "every_n_steps"):
            v = getattr(self, arg)
            if v is not None and not (_is_int(v) and v > 0):
                raise UsageError(
                    f"EvalSpec needs {arg} to be a positive int or None. Received: {arg}={v!r}"
                )
        for arg in ("start_delay_secs", "throttle_secs"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise UsageError(
                    f"EvalSpec needs {arg} to be a number of seconds >= 0. Received: {arg}={v!r}"
                )
        object.__setattr__(self, "hooks", _hook_list(self.hooks, "hooks", "EvalSpec"))
        exporters = self.exporters
        if isinstance(exporters, Exporter):
            exporters = (exporters,)
        exporters = _hook_list(exporters, "exporters", "EvalSpec")
        bad = [e for e in exporters if not isinstance(e, Exporter)]
        if bad:
            raise UsageError(
                "EvalSpec needs exporters to be BestExporter / LatestExporter / FinalExporter "
                f"objects. Received: {bad[0]!r:.80}"
            )
        names = [e.name for e in exporters]
        if len(set(names)) != len(names):
            raise UsageError(f"EvalSpec's exporters need distinct names. Received: {names}")
        object.__setattr__(self, "exporters", exporters)


@dataclass
class TrainAndEvaluateResult:
    """What :func:`train_and_evaluate` returns; unpacks as tf's ``(eval_result, export_results)``.

    ``evaluations``: every evaluation's metrics, in order (each with ``global_step``);
    ``history``: the training :class:`~trainrun.training.callbacks.History`;
    ``export_results``: the folders the exporters wrote.
    """

    eval_result: dict[str, Any]
    export_results: list[Path]
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    history: Any = None

    def __iter__(self) -> Any:
        return iter((self.eval_result, self.export_results))

    def to_frame(self) -> Any:
        """The evaluations as a pandas DataFrame, one row per evaluation."""
        import pandas as pd

        return pd.DataFrame(self.evaluations)

    def plot(self, metric: str = "auc") -> Any:
        """Training loss and evaluation ``metric`` against the global step (a matplotlib Figure)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.add_subplot()
        if self.history is not None and self.history.steps:
            ax.plot(self.history.steps, self.history.losses, lw=0.8, alpha=0.6, label="loss")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        points = [(e["global_step"], e[metric]) for e in self.evaluations if metric in e]
        if points:
            right = ax.twinx()
            steps, values = [p[0] for p in points], [p[1] for p in points]
            right.plot(steps, values, "o-", color="tab:orange", label=f"eval {metric}")
            right.set_ylabel(f"evaluation {metric}")
            lines = ax.get_legend_handles_labels()
            more = right.get_legend_handles_labels()
            right.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
        ax.set_title(f"Training loss and evaluation {metric}")
        return fig


class _Evaluator(Callback):
    """Checkpoint, evaluate and export every ``every`` steps, and after the last one."""

    def __init__(self, estimator: Any, spec: EvalSpec, every: int, listeners: Sequence[Any]):
        self.estimator = estimator
        self.spec = spec
        self.every = every
        self.listeners = [cb for cb in listeners if hasattr(cb, "on_evaluate_end")]
        self.evaluations: list[dict[str, Any]] = []
        self.exports: list[Path] = []
        self._last_step: int | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self._t0 = time.monotonic()
        self._last_time = -math.inf

    def on_step_end(self, state: TrainState) -> None:
        if state.global_step % self.every:
            return
        now = time.monotonic()
        if now - self._t0 < self.spec.start_delay_secs:
            return
        if now - self._last_time < self.spec.throttle_secs:
            return
        self._evaluate(state.global_step, final=False)

    def on_train_end(self, state: TrainState) -> None:
        if state.steps_done and self._last_step != state.global_step:
            self._evaluate(state.global_step, final=True)
        elif self.evaluations:
            self._export(self.evaluations[-1], final=True)

    def _evaluate(self, step: int, final: bool) -> None:
        from trainrun.training.run_recorder import record_eval_metrics

        est = self.estimator
        est._save_from_loop(step)  # evaluations run on checkpoints, as in tf.estimator
        result = est.evaluate(
            self.spec.input_fn,
            steps=self.spec.steps,
            name=self.spec.name,
            callbacks=[*self.spec.hooks, *self.listeners],
        )
        self._last_step, self._last_time = step, time.monotonic()
        self.evaluations.append(result)
        record_eval_metrics(result, step)
        self._export(result, final)

    def _export(self, result: Mapping[str, Any], final: bool) -> None:
        base = Path(self.estimator.model_dir_) / "export"
        for exporter in self.spec.exporters:
            path = exporter.export(self.estimator, base / exporter.name, result, final)
            if path is not None:
                self.exports.append(Path(path))


def train_and_evaluate(estimator: Any, train_spec: TrainSpec, eval_spec: EvalSpec) -> Any:
    """Train ``estimator`` on ``train_spec`` with evaluations on ``eval_spec`` along the way.

    Returns a :class:`TrainAndEvaluateResult` (unpacks as ``eval_result, export_results``).
    """
    if not isinstance(train_spec, TrainSpec):
        raise UsageError(
            f"train_and_evaluate() needs a TrainSpec. Received: train_spec={train_spec!r:.80}"
        )
    if not isinstance(eval_spec, EvalSpec):
        raise UsageError(
            f"train_and_evaluate() needs an EvalSpec. Received: eval_spec={eval_spec!r:.80}"
        )
    config = estimator.config_
    every = eval_spec.every_n_steps or config.save_checkpoints_steps or DEFAULT_EVERY_N_STEPS
    hooks = [*train_spec.hooks, *train_spec.callbacks]
    evaluator = _Evaluator(estimator, eval_spec, every, hooks)
    history = estimator.train(
        train_spec.input_fn, max_steps=train_spec.max_steps, callbacks=[evaluator, *hooks]
    )
    if not evaluator.evaluations:
        # Nothing trained (max_steps already reached): evaluate the model as it is.
        result = estimator.evaluate(
            eval_spec.input_fn,
            steps=eval_spec.steps,
            name=eval_spec.name,
            callbacks=list(eval_spec.hooks),
        )
        evaluator.evaluations.append(result)
        evaluator._export(result, final=True)
    return TrainAndEvaluateResult(
        eval_result=evaluator.evaluations[-1],
        export_results=evaluator.exports,
        evaluations=evaluator.evaluations,
        history=history,
    )


# ---------------------------------------------------------------- early stopping hooks


class _StopIfNoImprovement(Callback):
    """Stops training once ``metric`` has not improved for ``max_steps`` global steps."""

    def __init__(self, metric: str, max_steps: int, mode: str, min_steps: int) -> None:
        self.metric = metric
        self.max_steps = max_steps
        self.mode = mode
        self.min_steps = min_steps
        self.best: float | None = None
        self.best_step: int | None = None
        self.stopped_at: int | None = None
        self._stop = False

    def on_evaluate_end(self, results: Mapping[str, Any], name: str | None) -> None:
        if self.metric not in results:
            from trainrun.exceptions import InputError

            raise InputError(
                f"The early-stopping hook watches evaluation metric {self.metric!r}, which "
                f"evaluate() does not report. Available: "
                f"{sorted(k for k in results if k != 'global_step')}"
            )
        value = float(results[self.metric])
        step = int(results.get("global_step", 0))
        if not math.isnan(value) and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        ):
            self.best, self.best_step = value, step
        if self.best_step is None:
            self.best_step = step
        if step - self.best_step >= self.max_steps and step >= self.min_steps:
            self._stop = True

    def on_step_end(self, state: TrainState) -> None:
        if self._stop and not state.stop_training:
            state.stop_training = True
            self.stopped_at = state.global_step


def _check_hook_args(fn: str, metric: Any, max_steps: Any, min_steps: Any) -> None:
    if not isinstance(metric, str) or not metric:
        raise UsageError(f"{fn}() needs metric_name to be a metric's name. Received: {metric!r}")
    for arg, value in (("max_steps_without_*", max_steps), ("min_steps", min_steps)):
        if not _is_int(value) or value < 0:
            raise UsageError(f"{fn}() needs {arg} to be an int >= 0. Received: {value!r}")


def stop_if_no_decrease_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_decrease: int,
    eval_dir: Any = None,
    min_steps: int = 0,
    run_every_secs: Any = None,
    run_every_steps: Any = None,
) -> Callback:
    """A training hook that stops when ``metric_name`` has not decreased for
    ``max_steps_without_decrease`` global steps (tf.estimator.experimental's hook).

    It watches the evaluations made while it trains: put it in ``TrainSpec(hooks=...)``
    of :func:`train_and_evaluate`. (``eval_dir``, ``run_every_secs`` and
    ``run_every_steps`` are accepted for tf's signature; evaluations arrive directly.)
    """
    _check_hook_args("stop_if_no_decrease_hook", metric_name, max_steps_without_decrease, min_steps)
    return _StopIfNoImprovement(metric_name, max_steps_without_decrease, "min", min_steps)


def stop_if_no_increase_hook(
    estimator: Any,
    metric_name: str,
    max_steps_without_increase: int,
    eval_dir: Any = None,
    min_steps: int = 0,
    run_every_secs: Any = None,
    run_every_steps: Any = None,
) -> Callback:
    """As :func:`stop_if_no_decrease_hook`, for a metric that should increase (``auc``)."""
    _check_hook_args("stop_if_no_increase_hook", metric_name, max_steps_without_increase, min_steps)
    return _StopIfNoImprovement(metric_name, max_steps_without_increase, "max", min_steps)
