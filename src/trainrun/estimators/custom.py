"""Custom models: tf's ``Estimator(model_fn=...)`` for a torch module of your own.

``trainrun.Estimator(model_fn=..., head=..., feature_columns=[...])`` trains any
``torch.nn.Module`` (or a builder of one) with everything else from trainrun: input_fn,
feature columns, checkpoints, the training loop and its callbacks, evaluation with the
head's metrics, TensorBoard, run recording, export, and the scikit-learn contract.

>>> import torch, trainrun as tr
>>> def mlp(in_features, units, width=16):
...     return torch.nn.Sequential(torch.nn.Linear(in_features, width), torch.nn.ReLU(),
...                                torch.nn.Linear(width, units))
>>> est = tr.Estimator(model_fn=mlp, head=tr.BinaryHead(), params={"width": 32},
...                    feature_columns=[tr.numeric_column("x")])
>>> type(est).__name__
'CustomEstimator'
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainrun.estimators.base import CHECKS, Estimator
from trainrun.estimators.run_config import RunConfig
from trainrun.exceptions import ModelDirError, UsageError

__all__ = ["CustomEstimator"]


def _head_ok(v: Any) -> bool:
    from trainrun.modules.heads import Head

    return isinstance(v, Head)


def _model_fn_ok(v: Any) -> bool:
    from torch import nn

    return isinstance(v, nn.Module) or (callable(v) and not isinstance(v, str))


_OWN_CHECKS = {
    "model_fn": (_model_fn_ok, "a torch.nn.Module or a function building one"),
    "head": (
        _head_ok,
        "a head such as trainrun.BinaryHead(), MultiClassHead(n), RegressionHead(), "
        "MultiLabelHead(n) or PoissonRegressionHead()",
    ),
    "params": (
        lambda v: v is None or isinstance(v, Mapping),
        "a dict of builder arguments or None",
    ),
}


class CustomEstimator(Estimator):
    """An estimator over a user's torch module and a head (what ``Estimator(model_fn=...)`` builds).

    ``model_fn``: a ``torch.nn.Module`` taking the dense features ``[N, in_features]`` and
    returning ``[N, head.logits_dimension]`` logits, or a function / class building one,
    called as ``model_fn(in_features=..., units=..., **params)``. With sequence columns
    the module is called as ``module(sequence, lengths, context)`` (see
    :mod:`trainrun.modules.custom`). ``feature_columns=None`` is for ``fit(X, y)`` only:
    the columns are then inferred from ``X`` (``columns_from_frame``).

    The estimator type (classifier or regressor, for scikit-learn) follows the head.
    """

    def __init__(
        self,
        *,
        model_fn: Any,
        head: Any,
        feature_columns: Sequence[Any] | None = None,
        model_dir: str | os.PathLike[str] | None = None,
        params: Mapping[str, Any] | None = None,
        optimizer: Any = "Adam",
        weight_column: Any = None,
        config: RunConfig | None = None,
        warm_start_from: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model_fn = model_fn
        self.head = head
        self.feature_columns = feature_columns
        self.model_dir = model_dir
        self.params = params
        self.optimizer = optimizer
        self.weight_column = weight_column
        self.config = config
        self.warm_start_from = warm_start_from

    feature_columns_: list[Any] | None
    _takes_sequence_columns = True  # the module gets SequenceFeatures' (sequence, lengths)

    @property  # type: ignore[override]
    def _estimator_type(self) -> str:  # type: ignore[override]
        kind = getattr(self.head, "kind", "")
        if kind in ("binary", "multiclass", "binary_thresholds"):
            return "classifier"
        if kind in ("regression", "poisson_regression"):
            return "regressor"
        return ""

    @property
    def n_classes(self) -> int:  # type: ignore[override]
        return int(getattr(self.head, "n_classes", 2))

    @property
    def label_vocabulary(self) -> Any:
        return getattr(self.head, "label_vocabulary", None)

    @property
    def label_dimension(self) -> int:
        return int(getattr(self.head, "label_dimension", 1))

    # ------------------------------------------------------------ settings
    def _validate_params(self) -> None:
        cls = type(self).__name__
        for name in self._param_names():
            check = _OWN_CHECKS.get(name) or CHECKS.get(name)
            if check is None or (name == "feature_columns" and self.feature_columns is None):
                continue
            ok, what = check
            if not ok(getattr(self, name)):
                raise UsageError(
                    f"The {name!r} parameter of {cls} must be {what}. "
                    f"Got {getattr(self, name)!r} instead."
                )
        if self.feature_columns is None and getattr(self, "feature_columns_", None) is None:
            raise UsageError(
                f"The 'feature_columns' parameter of {cls} must be a non-empty list of feature "
                "columns for train(input_fn); None only works with fit(X, y), which infers them "
                "from X. Got None instead."
            )

    def _fit_prepare(self, frame: Any) -> None:
        if self.feature_columns is None:
            self.feature_columns_ = self._infer_columns(frame)

    def _declared_columns(self) -> list[Any] | None:
        if self.feature_columns is None:
            return None
        return super()._declared_columns()

    def _reset(self) -> None:
        super()._reset()
        self.feature_columns_ = None

    # ------------------------------------------------------------ hooks
    def _build_head(self) -> Any:
        return copy.deepcopy(self.head)

    def _columns(self) -> dict[str, list[Any]]:
        cols = self.feature_columns
        if cols is None:
            cols = getattr(self, "feature_columns_", None) or []
        return {"all": list(cols) if isinstance(cols, (list, tuple)) else [cols]}

    def _network_config(self, units: int) -> dict[str, Any]:
        from trainrun.modules.custom import model_fn_reference

        return {
            "type": "custom",
            "units": units,
            "model_fn": model_fn_reference(self.model_fn),
            "params": dict(self.params or {}),
        }

    def _make_network(self, config: dict[str, Any], columns: dict[str, list[Any]]) -> Any:
        from trainrun.modules.custom import CustomModel

        return CustomModel(columns["all"], config["units"], self.model_fn, self.params)

    def _optimizer_settings(self) -> list[tuple[str, Any]]:
        return [("all", self.optimizer)]

    # ------------------------------------------------------------ export
    def export(self, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Path:
        """Write an export that :func:`trainrun.load_exported` rebuilds by importing ``model_fn``.

        The export stores the builder's reference (``"module:Name"``), ``params`` and the
        weights: ``model_fn`` must be a top-level function or class of an importable module.
        """
        self._require_trained("export")
        if getattr(self.network_, "reference", None) is None:
            raise ModelDirError(
                f"{type(self).__name__}.export() needs model_fn to be a top-level function or "
                "nn.Module class of an importable module (an export holds no code: "
                "load_exported imports it by name). A module instance, lambda or local "
                f"function cannot be named. Received: model_fn={self.model_fn!r}"[:400]
            )
        return super().export(path, *args, **kwargs)
