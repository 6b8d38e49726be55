"""Hugging Face ``transformers.Trainer`` training recorded as a trainrun run: one callback.

>>> from transformers import Trainer, TrainingArguments            # doctest: +SKIP
>>> from trainrun.transformers import TrainrunCallback              # doctest: +SKIP
>>> trainer = Trainer(model=model, args=TrainingArguments("out", report_to=[]),
...                   train_dataset=train, eval_dataset=test,
...                   callbacks=[TrainrunCallback()])               # doctest: +SKIP
>>> trainer.train(); trainer.evaluate()                             # doctest: +SKIP

What lands in the run:

- ``flags.json``: the ``TrainingArguments`` that differ from their defaults, and
  always ``learning_rate``, ``num_train_epochs``, ``per_device_train_batch_size``,
  ``weight_decay``, ``seed`` (``flag_*`` columns); never the output folders.
- ``metrics.jsonl``: everything the Trainer logs (``loss``, ``learning_rate``,
  ``grad_norm``, ``epoch``, ``eval_loss``...), with the global step as ``step``.
- ``evaluation.json``: the latest evaluation's metrics without the Trainer's
  ``eval_`` prefix (``eval_accuracy`` becomes ``accuracy``: the ``eval_accuracy``
  column, as a trainrun estimator's ``evaluate``).
- properties: ``model`` (the model's class), ``optimizer``, ``learning_rate``,
  ``batch_size``, ``epochs``, ``steps``, ``epochs_completed``.
- with ``save_model=True``, the trained weights as ``artifacts/model.safetensors``.

Inside ``trainrun run train.py`` that run is used; otherwise an in-process run
under ``runs/`` (``runs_dir=``) starts with training and is completed when it
ends. Only the main process writes. Pass ``report_to=[]`` (or ``"none"``) to
keep the Trainer's other integrations out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from trainrun._extras import require

require("transformers", "transformers", "trainrun.transformers")

from transformers import TrainerCallback  # noqa: E402

from trainrun.runs import active  # noqa: E402
from trainrun.runs.artifacts import log_model  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

__all__ = ["TrainrunCallback"]

#: always recorded as flags, whether or not they differ from their defaults
CORE_ARGS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "weight_decay",
    "seed",
)
#: never flags: where things go, not how the model trains
SKIPPED_ARGS = frozenset(
    {"output_dir", "logging_dir", "run_name", "hub_token", "hub_model_id", "push_to_hub_token"}
)
EVAL_PREFIX = "eval_"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # an Enum of the Trainer's
        return value.value
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _arg_flags(args: Any) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if not dataclasses.is_dataclass(args):
        return flags
    for field in dataclasses.fields(args):
        if field.name in SKIPPED_ARGS or field.name.startswith("_"):
            continue
        value = getattr(args, field.name, None)
        default = field.default
        if field.name in CORE_ARGS or (
            default is not dataclasses.MISSING and _plain(value) != _plain(default)
        ):
            flags[field.name] = _plain(value)
    return flags


def _numbers(values: dict[str, Any] | None) -> dict[str, Any]:
    out = {}
    for key, value in (values or {}).items():
        ok, plain = active._plain_metric(value)
        if ok and isinstance(plain, (int, float)) and not isinstance(plain, bool):
            out[key] = plain
    return out


class TrainrunCallback(TrainerCallback):
    """Records a ``transformers.Trainer`` into the active run, or an in-process one.

    Args:
        save_model: save the trained weights as ``artifacts/model.safetensors``.
        runs_dir: where an in-process run is created when no run is active
            (default ``runs``); ignored inside ``trainrun run``.
    """

    def __init__(self, *, save_model: bool = False, runs_dir: str | Path | None = None) -> None:
        self.save_model = save_model
        self.runs_dir = runs_dir
        self._training = False

    def _ensure(self, state: Any) -> bool:
        if not getattr(state, "is_world_process_zero", True):
            return False
        _inprocess.ensure_run(self, runs_dir=self.runs_dir, integration="transformers")
        return True

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._ensure(state):
            return
        self._training = True
        active.write_run_metadata("flags", _arg_flags(args))
        model = kwargs.get("model")
        properties = {
            "model": type(model).__name__ if model is not None else None,
            "optimizer": _plain(getattr(args, "optim", None)),
            "learning_rate": getattr(args, "learning_rate", None),
            "batch_size": getattr(args, "train_batch_size", None),
            "epochs": getattr(args, "num_train_epochs", None),
            "steps": getattr(state, "max_steps", None) or None,
        }
        active.write_run_metadata(
            "properties", {k: v for k, v in properties.items() if v is not None}
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not getattr(state, "is_world_process_zero", True):
            return
        values = _numbers(logs)
        if values:
            active.log_metrics(step=state.global_step, **values)

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not getattr(state, "is_world_process_zero", True):
            return
        if not self._training and not _inprocess.recording():
            self._ensure(state)  # evaluate() with no run at all; otherwise the training's run
        values = _numbers(metrics)
        active.write_evaluation(
            {
                k[len(EVAL_PREFIX) :] if k.startswith(EVAL_PREFIX) else k: v
                for k, v in values.items()
            }
        )
        if not self._training:  # trainer.evaluate() after training: the run ends again
            _inprocess.end_owned(self)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        if not getattr(state, "is_world_process_zero", True):
            return
        active.write_run_metadata("properties", {"epochs_completed": state.epoch})
        model = kwargs.get("model")
        if self.save_model and model is not None:
            log_model(model, "model")
        _inprocess.end_owned(self)
