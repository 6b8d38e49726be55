"""PyTorch Lightning training recorded as a trainrun run: one ``Logger``.

>>> import lightning.pytorch as pl                                  # doctest: +SKIP
>>> from trainrun.lightning import TrainrunLogger                  # doctest: +SKIP
>>> trainer = pl.Trainer(max_epochs=5, logger=TrainrunLogger())     # doctest: +SKIP
>>> trainer.fit(model, train_loader, val_loader)                    # doctest: +SKIP
>>> trainer.test(model, test_loader)                                # doctest: +SKIP

What lands in the run:

- ``flags.json``: the hyperparameters Lightning logs (``self.save_hyperparameters()``
  in the module, the datamodule's too), nested ones as ``optimizer/lr``:
  ``flag_*`` columns in ``ls_runs``.
- ``metrics.jsonl``: everything ``self.log(...)`` sends to loggers, with
  Lightning's global step as ``step`` (and its ``epoch``).
- ``evaluation.json``: metrics logged while testing, named ``test_<name>`` or
  ``test/<name>`` by Lightning's convention, without that prefix
  (``test_acc`` becomes ``eval_acc``, as a trainrun estimator's ``evaluate``).
- ``artifacts/checkpoints/``: ``ModelCheckpoint``'s files (the default one's too),
  unless the checkpoint callback was given its own ``dirpath``.

Inside ``trainrun run train.py`` that run is used. Otherwise the logger starts
an in-process run under ``runs/`` (``runs_dir=``) when Lightning first uses it,
and Lightning's ``finalize`` marks it completed, failed (with the traceback) or
interrupted. Only the global-zero process writes (``rank_zero_only``).

Uses the ``lightning`` package (``lightning.pytorch``), or ``pytorch_lightning``
when only that one is installed.
"""

from __future__ import annotations

import os
import sys
import time
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun._extras import installed, require

if installed("lightning"):
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
else:
    require("pytorch_lightning", "lightning", "trainrun.lightning", package="lightning")
    from pytorch_lightning.loggers.logger import (  # type: ignore[no-redef,assignment]
        Logger,
        rank_zero_experiment,
    )
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]

from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

__all__ = ["TrainrunLogger"]

#: the prefixes Lightning users give test metrics; those metrics also become evaluation
TEST_PREFIXES = ("test_", "test/")
#: where ModelCheckpoint's files go inside the run (``<run>/<version>/checkpoints``)
CHECKPOINTS_PARENT = "artifacts"
#: metric rows are kept at most this long before they are appended to metrics.jsonl
FLUSH_S = 1.0


def _rank() -> int:
    """This process's global rank as Lightning sets it (0 when not distributed)."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "/"))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, (list, tuple)) and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value
        ):
            flat[name] = list(value)
        else:
            text = repr(value)
            flat[name] = text if len(text) <= 200 else text[:197] + "..."
    return flat


class TrainrunLogger(Logger):
    """A Lightning ``Logger`` that records into the active run, or an in-process one.

    Args:
        runs_dir: where an in-process run is created when no run is active
            (default ``runs``); ignored inside ``trainrun run``.
    """

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self._rows: list[dict[str, Any]] = []
        self._rows_for: Path | None = None  # the run the kept rows belong to
        self._flushed_at = time.monotonic()
        self._next_step = 0
        # what the last lookup of the run saw, so that a step's log_metrics needs no lookup
        self._seen: tuple[Any, ...] | None = None
        self._seen_folder: Path | None = None

    # ------------------------------------------------------------ where

    def _run_dir(self, writing: bool = False) -> Path | None:
        """The run this logger writes to, started (in-process) on first use when none is active.

        ``writing``: an ended in-process run of this logger is marked running again
        (``trainer.test`` after ``trainer.fit``); reading where it is does not.
        """
        run = _inprocess.owned_run(self)
        if run is not None:
            if writing:
                run.reopen()
            return run.run_dir
        _inprocess.ensure_run(self, runs_dir=self.runs_dir, integration="lightning")
        return active.run_dir()

    @property
    def name(self) -> str:
        if _rank() != 0:
            return "trainrun"
        folder = self._run_dir()
        return folder.name if folder is not None else "trainrun"

    @property
    def version(self) -> str:
        return CHECKPOINTS_PARENT

    @property
    def save_dir(self) -> str | None:
        """The runs folder, so that ``save_dir/name/version`` is the run's ``artifacts/``."""
        if _rank() != 0:
            return None
        folder = self._run_dir()
        return str(folder.parent) if folder is not None else None

    @property
    def root_dir(self) -> str | None:
        return self.save_dir

    @property
    def log_dir(self) -> str | None:
        folder = self._run_dir() if _rank() == 0 else None
        return str(folder) if folder is not None else None

    @property
    @rank_zero_experiment
    def experiment(self) -> Path | None:
        """The run folder (Lightning's "experiment" object for this logger)."""
        return self._run_dir()

    # ------------------------------------------------------------ what

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        self._run_dir(writing=True)
        flat = _flatten(dict(params or {}))
        if flat:
            active.write_run_metadata("flags", flat)

    def _writing_dir(self) -> Path | None:
        """``_run_dir(writing=True)``, remembered while nothing that decides it has changed.

        Lightning may log every step; the lookup (a lock and a stat of the folder) is then
        most of a call's cost, and the answer only changes when a run is activated or
        ended, or the environment names another run.
        """
        run = _inprocess.owned_run()
        key = (
            active._explicit,
            os.environ.get(active.RUN_DIR_ENV),
            run,
            run is not None and run.status,
        )
        if key != self._seen:
            self._seen_folder = self._run_dir(writing=True)
            run = _inprocess.owned_run()
            self._seen = (
                active._explicit,
                os.environ.get(active.RUN_DIR_ENV),
                run,
                run is not None and run.status,
            )
        return self._seen_folder

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        folder = self._writing_dir()
        row: dict[str, Any] = {"step": step, "time": round(time.time(), 6)}
        evaluation = {}
        for key, value in metrics.items():
            ok, plain = active._plain_metric(value)
            if not ok:
                continue
            row[key] = plain
            if key.startswith(TEST_PREFIXES):
                for prefix in TEST_PREFIXES:
                    if key.startswith(prefix) and len(key) > len(prefix):
                        evaluation[key[len(prefix) :]] = plain
        if step is None:
            row["step"] = self._next_step
        self._next_step = int(row["step"]) + 1
        if folder != self._rows_for:
            self._flush()  # kept rows go to the run they were logged in
            self._rows_for = folder
        self._rows.append(row)
        if evaluation:
            active.write_evaluation(evaluation)
        # Lightning may log every step (and calls save() after each): rows are appended at
        # most every FLUSH_S seconds, when the run changes, and at finalize
        if time.monotonic() - self._flushed_at >= FLUSH_S:
            self._flush()

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        self._flushed_at = time.monotonic()
        if not rows or self._rows_for is None:
            return
        try:
            record.append_jsonl(self._rows_for / record.METRICS_FILE, rows)
        except OSError as exc:
            active._warn_once(
                "lightning-metrics", f"could not write metrics to {self._rows_for}: {exc}"
            )

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._rows:
            self._flush()
        run = _inprocess.owned_run(self)
        if run is None:
            return  # a launched run: its launcher writes the outcome
        if status == "failed":
            exc = sys.exc_info()[1]
            run.end(exc if exc is not None else RuntimeError("Lightning: the training failed"))
            return
        run.end()
