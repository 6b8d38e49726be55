"""Wide and deep: the sum of a linear model's and a DNN's logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainrun.exceptions import UsageError
from trainrun.modules.dnn import DNNModel
from trainrun.modules.linear import LinearModel

__all__ = ["WideDeepModel"]


class WideDeepModel(nn.Module):
    """``logits = linear(encoded) + dnn(encoded)``; either part may be absent.

    The two parts keep separate parameters (``.linear``, ``.dnn``) so the
    estimator can give each its own optimizer, as tf.estimator does.

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x")]
    >>> model = WideDeepModel(cols, cols, dnn_hidden_units=[4], units=1)
    >>> model(FeatureTransform(cols).encode({"x": [0.5, 1.5]})).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        linear_columns: Sequence[Any] | None,
        dnn_columns: Sequence[Any] | None,
        dnn_hidden_units: Sequence[int] | None,
        units: int,
        dnn_activation_fn: Any = "relu",
        dnn_dropout: float | None = None,
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
    ) -> None:
        super().__init__()
        if not linear_columns and not dnn_columns:
            raise UsageError(
                "Either linear_feature_columns or dnn_feature_columns must be given. "
                "Received: both empty."
            )
        self.units = units
        self.linear = (
            LinearModel(linear_columns, units, linear_sparse_combiner) if linear_columns else None
        )
        self.dnn = (
            DNNModel(
                dnn_columns,
                dnn_hidden_units or [],
                units,
                dnn_activation_fn,
                dnn_dropout,
                batch_norm,
            )
            if dnn_columns
            else None
        )

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        # one of the two parts at least (the estimator refuses a model with neither)
        parts = [part(encoded) for part in (self.linear, self.dnn) if part is not None]
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "wide_deep",
            "units": self.units,
            "linear": None if self.linear is None else self.linear.to_config(),
            "dnn": None if self.dnn is None else self.dnn.to_config(),
        }
