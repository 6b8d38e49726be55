"""Exporters: which evaluations of ``train_and_evaluate`` leave an export behind.

As tf.estimator's exporters, each writes into ``<model_dir>/export/<name>/``, one
folder per export named by the global step (``export/best_exporter/1200/``), each a
complete :func:`trainrun.load_exported` artifact whose ``spec.json`` also holds the
evaluation that triggered it (``eval_result``):

- :class:`BestExporter` exports when an evaluation beats every earlier one on
  ``metric`` (``"loss"`` by default, lower is better; ``"auc"`` and other
  higher-is-better metrics are maximised), and keeps the ``exports_to_keep`` best;
- :class:`LatestExporter` exports after every evaluation and keeps the newest;
- :class:`FinalExporter` exports once, after the final evaluation.

>>> BestExporter(metric="auc", exports_to_keep=2)
BestExporter(name='best_exporter', metric='auc', mode='max', exports_to_keep=2)
"""

from __future__ import annotations

import abc
import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun.exceptions import UsageError
from trainrun.training.callbacks import metric_mode

__all__ = ["BestExporter", "Exporter", "FinalExporter", "LatestExporter"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _check(name: Any, exports_to_keep: Any, cls: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise UsageError(
            f"{cls} needs name to be a folder name (letters, digits, '_', '-', '.'). "
            f"Received: name={name!r}"
        )
    if exports_to_keep is not None and (
        isinstance(exports_to_keep, bool)
        or not isinstance(exports_to_keep, int)
        or exports_to_keep < 1
    ):
        raise UsageError(
            f"{cls} needs exports_to_keep to be a positive int or None (keep all). "
            f"Received: exports_to_keep={exports_to_keep!r}"
        )


def export_folders(base: Path) -> list[Path]:
    """The exports under ``base`` (folders named by a global step holding spec.json), oldest first."""
    if not base.is_dir():
        return []
    found = [
        p
        for p in base.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name.isdigit() and (p / "spec.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name))


class Exporter(abc.ABC):
    """Base class: ``export(...)`` is called after each evaluation of ``train_and_evaluate``."""

    name: str

    @abc.abstractmethod
    def export(
        self,
        estimator: Any,
        export_path: Path,
        eval_result: Mapping[str, Any],
        is_the_final_export: bool,
    ) -> Path | None:
        """Export (or not); return the export's folder, or None when nothing was written."""

    def _write(self, estimator: Any, export_path: Path, eval_result: Mapping[str, Any]) -> Path:
        step = int(eval_result.get("global_step", estimator.global_step_))
        clean = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in eval_result.items()
            if isinstance(v, (int, float))
        }
        return Path(estimator.export(export_path / str(step), metadata={"eval_result": clean}))

    @staticmethod
    def _prune(folders: list[Path], keep: int | None) -> None:
        if keep is None:
            return
        for path in folders[: max(0, len(folders) - keep)]:
            shutil.rmtree(path, ignore_errors=True)


class LatestExporter(Exporter):
    """Exports after every evaluation; keeps the newest ``exports_to_keep``."""

    def __init__(self, name: str = "latest_exporter", exports_to_keep: int | None = 5) -> None:
        _check(name, exports_to_keep, "LatestExporter")
        self.name = name
        self.exports_to_keep = exports_to_keep

    def export(self, estimator, export_path, eval_result, is_the_final_export):
        path = self._write(estimator, export_path, eval_result)
        self._prune(export_folders(export_path), self.exports_to_keep)
        return path

    def __repr__(self) -> str:
        return f"LatestExporter(name={self.name!r}, exports_to_keep={self.exports_to_keep!r})"


class FinalExporter(Exporter):
    """Exports once, after the final evaluation."""

    def __init__(self, name: str = "final_exporter") -> None:
        _check(name, 1, "FinalExporter")
        self.name = name

    def export(self, estimator, export_path, eval_result, is_the_final_export):
        if not is_the_final_export:
            return None
        return self._write(estimator, export_path, eval_result)

    def __repr__(self) -> str:
        return f"FinalExporter(name={self.name!r})"


class BestExporter(Exporter):
    """Exports when an evaluation is the best so far on ``metric``; keeps the best ``exports_to_keep``.

    ``mode="auto"`` maximises accuracy, AUCs, precision and recall and minimises
    anything else (``loss``, ``average_loss``). Exports already in the folder (from an
    earlier ``train_and_evaluate`` in the same model directory) count: a new one must
    beat them.
    """

    def __init__(
        self,
        name: str = "best_exporter",
        metric: str = "loss",
        mode: str = "auto",
        exports_to_keep: int | None = 5,
    ) -> None:
        _check(name, exports_to_keep, "BestExporter")
        if not isinstance(metric, str) or not metric:
            raise UsageError(
                f"BestExporter needs metric to be an evaluation metric's name such as 'loss' "
                f"or 'auc'. Received: metric={metric!r}"
            )
        self.name = name
        self.metric = metric
        self.mode = metric_mode(metric, mode)
        self.exports_to_keep = exports_to_keep
        self._best: float | None = None
        self._scanned: Path | None = None

    def _better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value < than if self.mode == "min" else value > than

    def _value_of(self, folder: Path) -> float | None:
        from trainrun.model_dir._json import read_json

        try:
            value = (read_json(folder / "spec.json").get("eval_result") or {}).get(self.metric)
        except (OSError, ValueError):
            return None
        return float(value) if isinstance(value, (int, float)) else None

    def _scan(self, export_path: Path) -> None:
        if self._scanned == export_path:
            return
        self._scanned = export_path
        for folder in export_folders(export_path):
            value = self._value_of(folder)
            if value is not None and self._better(value, self._best):
                self._best = value

    def export(self, estimator, export_path, eval_result, is_the_final_export):
        if self.metric not in eval_result:
            from trainrun.exceptions import InputError

            raise InputError(
                f"BestExporter(metric={self.metric!r}) compares evaluations on a metric that "
                f"evaluate() does not report. Available: "
                f"{sorted(k for k in eval_result if k != 'global_step')}"
            )
        self._scan(export_path)
        value = float(eval_result[self.metric])
        if math.isnan(value) or not self._better(value, self._best):
            return None
        self._best = value
        path = self._write(estimator, export_path, eval_result)
        if self.exports_to_keep is not None:
            ranked = [(self._value_of(f), f) for f in export_folders(export_path)]
            known = [(v, f) for v, f in ranked if v is not None]
            known.sort(key=lambda vf: vf[0], reverse=self.mode == "max")
            for _, folder in known[self.exports_to_keep :]:
                shutil.rmtree(folder, ignore_errors=True)
        return path

    def __repr__(self) -> str:
        return (
            f"BestExporter(name={self.name!r}, metric={self.metric!r}, mode={self.mode!r}, "
            f"exports_to_keep={self.exports_to_keep!r})"
        )
