"""The linear network: per-column weights (sparse rows for categories) plus a bias."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainrun.exceptions import UsageError

__all__ = ["SPARSE_COMBINERS", "LinearModel"]

#: How a linear model reduces a multivalent categorical column's weights, as tf.estimator:
#: "sum" adds them, "mean" divides by the sum of the row's id weights (1 per id when the
#: column is not weighted), "sqrtn" by the square root of the sum of their squares.
SPARSE_COMBINERS = ("sum", "mean", "sqrtn")


class LinearModel(nn.Module):
    """``logits = LinearFeatures(columns)(encoded) + bias``, shape ``[N, units]``.

    ``sparse_combiner`` ("sum", "mean" or "sqrtn") reduces each bare categorical
    column's ids in a row, as in tf.estimator's linear models: with "mean" a row
    holding the tags ``["a", "b"]`` contributes ``(w_a + w_b) / 2``. It changes
    nothing for single-valued unweighted columns, and indicator columns are dense
    inputs (one-hot counts), so they always sum, as in tf.

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x")]
    >>> model = LinearModel(cols, units=1)
    >>> model(FeatureTransform(cols).encode({"x": [1.0, 2.0, 3.0, 4.0]})).shape
    torch.Size([4, 1])
    """

    def __init__(self, columns: Sequence[Any], units: int, sparse_combiner: str = "sum") -> None:
        super().__init__()
        from trainrun.feature_columns import IndicatorColumn, LinearFeatures

        if sparse_combiner not in SPARSE_COMBINERS:
            raise UsageError(
                "sparse_combiner must be 'sum', 'mean' or 'sqrtn' (how a linear model reduces "
                "the weights of a multivalent categorical column). "
                f"Received: sparse_combiner={sparse_combiner!r}"
            )
        self.units = units
        self.sparse_combiner = sparse_combiner
        self.features = LinearFeatures(list(columns), units)
        # Categorical inputs that come from indicator columns: dense in tf, so always summed.
        self._summed = {
            c.categorical_column.name
            for c in self.features.columns
            if isinstance(c, IndicatorColumn)
        }
        self.bias = nn.Parameter(torch.zeros(units))
        self._per_column: list[tuple[Any, int, int, str]] | None = None

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.sparse_combiner == "sum" or self._single_valued(encoded):
            return self.features(encoded) + self.bias
        return self._combined(encoded) + self.bias

    def to_config(self) -> dict[str, Any]:
        return {"type": "linear", "units": self.units, "sparse_combiner": self.sparse_combiner}

    # ------------------------------------------------------------ mean / sqrtn
    def _single_valued(self, encoded: dict[str, torch.Tensor]) -> bool:
        # The packed ids block holds only single-valued, unweighted columns: one id (or
        # none) per row, where sum, mean and sqrtn agree. That is the usual case.
        cats = self.features._cats
        return cats is None or (cats.block is not None and cats.block in encoded)

    def _combined(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        from trainrun.feature_columns import CategoricalColumn, IndicatorColumn
        from trainrun.feature_columns._layers import _OffsetIds

        feats, cats = self.features, self.features._cats
        if self._per_column is None:
            # One reader per categorical column, in LinearFeatures' id layout (sorted by
            # name, ids shifted by the earlier columns' sizes), so the weights are shared.
            by_name = {}
            for col in feats.columns:
                base = col.categorical_column if isinstance(col, IndicatorColumn) else col
                if isinstance(base, CategoricalColumn):
                    by_name[base.name] = base
            self._per_column = [
                (_OffsetIds([by_name[name]]), by_name[name].num_buckets, offset, name)
                for name, offset in zip(cats.names, cats.offsets, strict=True)
            ]
        all_ids, all_w = [], []
        for read, size, offset, name in self._per_column:
            ids, w = read(encoded)  # ids in [0, size], size meaning "no value"
            present = ids < size
            w = present.to(torch.float32) if w is None else torch.where(present, w, 0.0)
            if name not in self._summed:
                if self.sparse_combiner == "mean":
                    norm = w.sum(dim=1, keepdim=True)
                else:
                    norm = w.square().sum(dim=1, keepdim=True).sqrt()
                # A row with no ids (or zero weights) contributes nothing, as in tf.
                w = w / torch.where(norm == 0, 1.0, norm)
            all_ids.append(torch.where(present, ids + offset, cats.total))
            all_w.append(w)
        ids = torch.cat(all_ids, dim=1)
        out = feats.categorical(ids, per_sample_weights=torch.cat(all_w, dim=1))
        if feats.weight is not None:
            parts = [] if feats._numeric is None else [feats._numeric(encoded)]
            parts.extend(e(encoded) for e in feats.embeddings)
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            out = out + x @ feats.weight
        return out
