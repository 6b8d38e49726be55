"""The seam between the estimators and the runs half: the only import of ``trainrun.runs``.

Inside a training run (``trainrun.runs.active.is_active()``), estimators:

- keep checkpoints in the run's ``model/`` folder when no ``model_dir`` is given,
- write TensorBoard events to the run's ``tensorboard/`` folder,
- log the loss history with ``log_metrics(step=global_step, loss=...)``,
- write ``evaluate()``'s result with ``write_evaluation`` (``eval_*`` in ``ls_runs``),
- log each evaluation of ``train_and_evaluate`` as ``val_<metric>`` rows of the history,
- record tfruns' properties when training ends: ``model``, ``optimizer``,
  ``learning_rate``, ``steps``, ``steps_completed``, ``samples``, ``epochs``.

Outside a run every function here is a no-op, so estimators work the same in a
plain script.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun.training.callbacks import Callback, _IntervalMean
from trainrun.training.loop import TrainState

__all__ = [
    "RunRecorder",
    "active_model_dir",
    "active_tensorboard_dir",
    "is_active",
    "record_eval_metrics",
    "record_evaluation",
]


def _active() -> Any:
    try:
        from trainrun.runs import active
    except ImportError:  # the runs half is optional for the estimators
        return None
    return active


def is_active() -> bool:
    active = _active()
    return bool(active is not None and active.is_active())


def active_model_dir() -> Path | None:
    """The active run's model/ folder, or None outside a run."""
    active = _active()
    if active is None or not active.is_active():
        return None
    path = active.model_dir()
    return Path(path) if path is not None else None


def active_tensorboard_dir() -> Path | None:
    """The active run's tensorboard/ folder, or None outside a run."""
    active = _active()
    if active is None or not active.is_active():
        return None
    path = active.tensorboard_dir()
    return Path(path) if path is not None else None


def events_dir(model_dir: Path, *, evaluating: bool = False, eval_name: str | None = None) -> Path:
    """Where a model's TensorBoard events go: the active run's tensorboard/ folder inside a run
    (training and evaluation side by side), else the model directory, evaluations in
    ``eval/`` (or ``eval_<name>/``) as tf.estimator lays them out."""
    run_tb = active_tensorboard_dir()
    if run_tb is not None:
        return run_tb
    if evaluating:
        return model_dir / ("eval" if eval_name is None else f"eval_{eval_name}")
    return model_dir


def record_evaluation(results: Mapping[str, Any], name: str | None = None) -> None:
    """Merge evaluation results into the run's evaluation.json (named ones as ``name/key``)."""
    active = _active()
    if active is None or not active.is_active():
        return
    values = {k: v for k, v in results.items() if isinstance(v, (int, float))}
    if name is not None:
        values = {f"{name}/{k}": v for k, v in values.items()}
    active.write_evaluation(values)


def record_eval_metrics(results: Mapping[str, Any], step: int) -> None:
    """Log an evaluation made during training as ``val_<metric>`` at ``step`` (metrics.jsonl)."""
    active = _active()
    if active is None or not active.is_active():
        return
    values = {
        "val_" + k.replace("/", "_"): v
        for k, v in results.items()
        if k != "global_step" and isinstance(v, (int, float))
    }
    active.log_metrics(step=step, **values)


def _train_properties(state: TrainState) -> dict[str, Any]:
    """tfruns' listing columns for an estimator's training (``prop_*`` in ``ls_runs``)."""
    est = state.estimator
    props: dict[str, Any] = {
        "steps": state.global_step,
        "steps_completed": state.global_step - state.start_step,
        "samples": state.examples,
    }
    if est is not None:
        props["model"] = type(est).__name__
        optimizers = getattr(est, "optimizers_", None) or []
        if optimizers:
            props["optimizer"] = ", ".join(type(o).__name__ for o in optimizers)
            rates = [g.get("lr") for o in optimizers for g in getattr(o, "param_groups", [])]
            if rates and all(isinstance(r, (int, float)) for r in rates):
                props["learning_rate"] = rates[0]
    if state.epochs is not None:
        props["epochs"] = state.epochs
    return props


class RunRecorder(Callback):
    """Logs the mean loss every ``every`` steps into the active run's metrics.jsonl."""

    def __init__(self, every: int = 100) -> None:
        self.every = every

    def on_train_begin(self, state: TrainState) -> None:
        self._active = _active() if is_active() else None
        self._interval = _IntervalMean(self.every)
        self._interval.reset(state.global_step, state.examples)

    def on_losses(self, state: TrainState) -> None:
        if self._active is None:
            return
        for step, loss, _ in self._interval.add(state):
            self._active.log_metrics(step=step, loss=loss)

    def on_train_end(self, state: TrainState) -> None:
        if self._active is None:
            return
        tail = self._interval.flush(state)
        if tail is not None:
            self._active.log_metrics(step=tail[0], loss=tail[1])
        self._active.write_run_metadata("properties", _train_properties(state))

    def on_evaluate_end(self, results: Mapping[str, Any], name: str | None) -> None:
        record_evaluation(results, name)
