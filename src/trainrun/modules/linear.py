"""The linear network: per-column weights (sparse rows for categories) plus a bias."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["LinearModel"]


class LinearModel(nn.Module):
    """``logits = LinearFeatures(columns)(encoded) + bias``, shape ``[N, units]``.

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x")]
    >>> model = LinearModel(cols, units=1)
    >>> model(FeatureTransform(cols).encode({"x": [1.0, 2.0, 3.0, 4.0]})).shape
    torch.Size([4, 1])
    """

    def __init__(self, columns: Sequence[Any], units: int, sparse_combiner: str = "sum") -> None:
        super().__init__()
        from trainrun.feature_columns import LinearFeatures

        self.units = units
        self.sparse_combiner = sparse_combiner
        self.features = _linear_features(LinearFeatures, columns, units, sparse_combiner)
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.features(encoded) + self.bias

    def to_config(self) -> dict[str, Any]:
        return {"type": "linear", "units": self.units, "sparse_combiner": self.sparse_combiner}


def _linear_features(cls: Any, columns: Sequence[Any], units: int, sparse_combiner: str) -> Any:
    if sparse_combiner != "sum":
        raise ValueError(
            "LinearModel sums the weights of a row's categories; only sparse_combiner='sum' is "
            f"implemented. Received: sparse_combiner={sparse_combiner!r}"
        )
    return cls(list(columns), units)
