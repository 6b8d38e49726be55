"""The baselines' network (one bias per logit) and their transform (the row count only).

>>> import numpy as np
>>> model, rows = BaselineModel(2), RowsTransform()
>>> model(rows.encode({"anything": np.zeros(3)})).shape
torch.Size([3, 2])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from trainrun.exceptions import InputError
from trainrun.feature_columns import FeatureTransform

__all__ = ["ROWS", "BaselineModel", "RowsTransform"]

#: The one entry a baseline's transform encodes: an empty [N, 0] tensor, for the row count.
ROWS = "\x01rows"


class RowsTransform(FeatureTransform):
    """Encodes no feature: only how many rows a chunk of data has."""

    def __init__(self) -> None:  # no columns to check
        self.columns: list[Any] = []
        self.required_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return "RowsTransform()"

    @property
    def string_keys(self) -> tuple[str, ...]:
        return ()

    def encode(self, data: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        if not data:
            raise InputError(
                "A baseline counts the rows of its input's features, but the input gave none: "
                "pass at least one feature column in the data (its values are ignored), e.g. "
                "input_fn(df, response='y') with df holding any other column."
            )
        n = len(next(iter(data.values())))
        return {ROWS: torch.zeros(n, 0)}

    def to_config(self) -> dict[str, Any]:
        return {"columns": []}


class BaselineModel(nn.Module):
    """One learned bias per logit, whatever the features."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        n = encoded[ROWS].shape[0]
        return self.bias.unsqueeze(0).expand(n, self.units)

    def to_config(self) -> dict[str, Any]:
        return {"type": "baseline", "units": self.units}
