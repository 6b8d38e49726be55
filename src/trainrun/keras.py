"""Keras 3 training recorded as a trainrun run: one callback, what tfruns does for R's keras.

>>> import keras, trainrun.keras                                     # doctest: +SKIP
>>> model.fit(x, y, validation_split=0.2, epochs=10,
...           callbacks=[trainrun.keras.TrainrunCallback()])         # doctest: +SKIP
>>> model.evaluate(x_test, y_test,
...                callbacks=[trainrun.keras.TrainrunCallback()])    # doctest: +SKIP

What lands in the run:

- ``metrics.jsonl``: one row per epoch, ``step`` = epochs completed, every value
  Keras logs (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
  ``learning_rate`` when a scheduler logs it): ``metric_*`` columns in ``ls_runs``.
- ``evaluation.json``: what ``model.evaluate(..., callbacks=[...])`` returns
  (``eval_loss``, ``eval_accuracy``), as a trainrun estimator's ``evaluate``; the
  same callback or a new one, the evaluation goes to the run of the last ``fit``.
- run.json's properties (tfruns' columns): ``optimizer``, ``learning_rate``,
  ``loss_function``, ``epochs``, ``epochs_completed``, ``steps`` (batches an
  epoch), ``batch_size``, ``samples`` (training examples an epoch), ``metrics``,
  ``model`` (the summary as text).
- with ``save_model=True``, the trained model as ``artifacts/model.keras``.

Inside ``trainrun run train.py`` that run is used and the script needs nothing
else. In a plain ``python train.py`` or a notebook the callback starts an
in-process run under ``runs/`` (``runs_dir=``) when training begins and marks it
completed when training ends; the run stays this process's active run, so an
``evaluate`` or a ``log_metrics`` afterwards still lands in it. A callback used
again continues its run; a new callback starts a new one.

Works with any Keras 3 backend; trainrun's tests use the torch backend.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from trainrun._extras import installed, require

require("keras", "keras", "trainrun.keras")
# Keras defaults to TensorFlow; with only torch here (trainrun's estimators' setup) pick
# torch rather than fail, unless the user chose a backend (variable or keras.json)
if (
    "keras" not in sys.modules
    and not os.environ.get("KERAS_BACKEND")
    and not installed("tensorflow")
    and installed("torch")
    and not (Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json").exists()
):
    os.environ["KERAS_BACKEND"] = "torch"

import keras  # noqa: E402

from trainrun.runs import active  # noqa: E402
from trainrun.runs.artifacts import log_model  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

__all__ = ["TrainrunCallback"]


def _number(value: Any) -> float | None:
    """A Python float from a number, a 0-d tensor (of any backend) or a Keras variable."""
    for convert in (
        float,
        lambda v: float(v.item()),
        lambda v: float(keras.ops.convert_to_numpy(v)),
    ):
        try:
            return convert(value)
        except Exception:  # noqa: BLE001 - a schedule or a tensor we cannot read: try the next
            continue
    return None


def _loss_name(loss: Any) -> str | None:
    if loss is None:
        return None
    if isinstance(loss, str):
        return loss
    if isinstance(loss, (list, tuple)):
        return ", ".join(filter(None, (_loss_name(x) for x in loss)))
    if isinstance(loss, dict):
        return ", ".join(f"{k}: {_loss_name(v)}" for k, v in loss.items())
    return getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__


def _summary(model: Any) -> str | None:
    lines: list[str] = []
    try:
        model.summary(print_fn=lambda text, **_: lines.append(str(text)))
    except Exception:  # noqa: BLE001 - an unbuilt subclassed model has no summary yet
        return None
    return "\n".join(lines).strip() or None


class TrainrunCallback(keras.callbacks.Callback):
    """Records a Keras ``fit`` (and ``evaluate``) into the active or an in-process run.

    Args:
        save_model: save the trained model as ``artifacts/model.keras`` when ``fit`` ends.
        runs_dir: where an in-process run is created when no run is active
            (default ``runs``); ignored inside ``trainrun run``.
    """

    def __init__(self, *, save_model: bool = False, runs_dir: str | Path | None = None) -> None:
        super().__init__()
        self.save_model = save_model
        self.runs_dir = runs_dir
        self._in_fit = False
        self._epochs_done = 0
        self._first_epoch = True
        self._batch_size: int | None = None

    # ------------------------------------------------------------ fit

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = True
        self._first_epoch = True
        self._batch_size = None
        _inprocess.ensure_run(self, runs_dir=self.runs_dir, integration="keras")
        params = self.params or {}
        optimizer = getattr(self.model, "optimizer", None)
        properties = {
            "epochs": params.get("epochs"),
            "steps": params.get("steps"),
            "optimizer": type(optimizer).__name__ if optimizer is not None else None,
            "learning_rate": _number(optimizer.learning_rate) if optimizer is not None else None,
            "loss_function": _loss_name(getattr(self.model, "loss", None)),
            "model": _summary(self.model),
        }
        active.write_run_metadata(
            "properties", {k: v for k, v in properties.items() if v is not None}
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._first_epoch:
            return
        # Keras' loss tracker is weighted by the batch's rows: its count after the first
        # batch is the batch size, after the epoch's last one the samples an epoch
        steps = (self.params or {}).get("steps")
        if batch == 0 or (steps is not None and batch == steps - 1):
            count = self._seen()
            if count is None:
                return
            if batch == 0:
                self._batch_size = count
            if steps is not None and batch == steps - 1:
                values = {"samples": count}
                if self._batch_size is not None:
                    values["batch_size"] = self._batch_size
                active.write_run_metadata("properties", values)

    def _seen(self) -> int | None:
        tracker = getattr(self.model, "_loss_tracker", None)
        count = getattr(tracker, "count", None)
        if count is None:
            return None
        value = _number(count)
        return int(value) if value is not None else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._first_epoch = False
        self._epochs_done = epoch + 1
        active.log_metrics(step=epoch + 1, **(logs or {}))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False
        active.write_run_metadata("properties", {"epochs_completed": self._epochs_done})
        if self.save_model:
            log_model(self.model, "model")
        _inprocess.end_owned(self)

    # ------------------------------------------------------------ evaluate

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        # an evaluate() after fit() belongs to the fit's run, whichever callback it is given;
        # only an evaluate() with no run at all starts one
        if not self._in_fit and not _inprocess.recording():
            _inprocess.ensure_run(self, runs_dir=self.runs_dir, integration="keras")

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._in_fit:
            return  # fit's validation: already in the epoch's row as val_*
        values = {}
        for name, value in (logs or {}).items():
            number = _number(value)
            if number is not None:
                values[name] = number
        active.write_evaluation(values)
        _inprocess.end_owned(self)
