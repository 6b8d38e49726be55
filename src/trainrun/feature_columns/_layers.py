"""Stage 2: encoded tensors -> model inputs, as torch modules.

:class:`DenseFeatures` builds the input of a DNN (one float row per example);
:class:`LinearFeatures` computes a linear model's sum of per-column contributions.
Both take the dict that :meth:`FeatureTransform.encode` returns (or a batch of it).

Ids of -1 ("no value") map to a padding row that is always zero, so missing categories
contribute nothing, as in tf.feature_column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._blocks import (
    IDS,
    NUMERIC,
    block_key,
    find_block,
    ids_of,
    numeric_of,
    weights_of,
)
from trainrun.feature_columns._columns import (
    BucketizedColumn,
    CategoricalColumn,
    EmbeddingColumn,
    FeatureColumn,
    IndicatorColumn,
    NumericColumn,
    WeightedCategoricalColumn,
    check_columns,
)
from trainrun.feature_columns._transform import _dedupe

__all__ = ["DenseFeatures", "LinearFeatures"]


class _OffsetIds:
    """Several categorical columns' ids in one id space, for one scatter or EmbeddingBag call.

    Column i's ids are shifted by the summed num_buckets of the columns before it (sorted
    by name, as FeatureTransform packs them); -1 ("no value") goes to a shared padding id
    (``total``). When the batch holds exactly that packed block, it is used as is.
    """

    def __init__(self, columns: Sequence[CategoricalColumn]) -> None:
        columns = sorted(columns, key=lambda c: c.name)
        self.columns = columns
        self.names = [c.name for c in columns]
        self.weighted = [isinstance(c, WeightedCategoricalColumn) for c in columns]
        self.sizes = [c.num_buckets for c in columns]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(columns))]
        self.total = sum(self.sizes)
        self.any_weighted = any(self.weighted)
        self._plans: dict[tuple[str, ...], Any] = {}
        self.block = (
            None
            if self.any_weighted
            else block_key(IDS, list(zip(columns, self.sizes, strict=True)))
        )

    def __call__(
        self, encoded: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.block is not None:
            packed = encoded.get(self.block)
            if packed is not None:
                return packed, None
            plan = self._plan(encoded)
            if plan is not None:
                # a block holding these columns among others: pick them, then map the
                # block's id space onto this layer's with one lookup
                key, cols, table = plan
                block = encoded[key]
                return table.to(block.device)[block.index_select(1, cols.to(block.device))], None
        ids, weights = [], []
        for col, off, w in zip(self.columns, self.offsets, self.weighted, strict=True):
            x = ids_of(encoded, col)
            x = x.reshape(x.shape[0], -1)
            ids.append(torch.where(x >= 0, x + off, self.total))
            if self.any_weighted:
                weights.append(
                    weights_of(encoded, col).reshape(x.shape) if w else (x >= 0).to(torch.float32)
                )
        all_ids = ids[0] if len(ids) == 1 else torch.cat(ids, dim=1)
        all_w = None
        if self.any_weighted:
            all_w = weights[0] if len(weights) == 1 else torch.cat(weights, dim=1)
        return all_ids, all_w

    def _plan(self, encoded: dict[str, torch.Tensor]):
        keys = tuple(k for k in encoded if k.startswith(IDS + "["))
        if keys not in self._plans:
            found = find_block(encoded, IDS, self.columns)
            plan = None
            if found is not None:
                key, layout = found
                names = list(layout)
                block_total = sum(size for _, size, _ in layout.values())
                table = torch.full((block_total + 1,), self.total, dtype=torch.int64)
                for col, off in zip(self.columns, self.offsets, strict=True):
                    start, size, _ = layout[col.name]
                    table[start : start + size] = torch.arange(off, off + size)
                cols = torch.tensor([names.index(c.name) for c in self.columns])
                plan = (key, cols, table)
            self._plans[keys] = plan
        return self._plans[keys]


class _Numeric:
    """Numeric columns as one ``[B, D]`` tensor: the packed block when it matches."""

    def __init__(self, columns: Sequence[NumericColumn]) -> None:
        self.columns = sorted(columns, key=lambda c: c.name)
        self.block = block_key(NUMERIC, [(c, c.dimension) for c in self.columns])
        self._plans: dict[tuple[str, ...], Any] = {}

    def __call__(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        packed = encoded.get(self.block)
        if packed is not None:
            return packed
        keys = tuple(k for k in encoded if k.startswith(NUMERIC + "["))
        if keys not in self._plans:
            found = find_block(encoded, NUMERIC, self.columns)
            plan = None
            if found is not None:
                key, layout = found
                picks: list[int] = []
                for c in self.columns:
                    start, size, _ = layout[c.name]
                    picks.extend(range(start, start + size))
                plan = (key, torch.tensor(picks))
            self._plans[keys] = plan
        plan = self._plans[keys]
        if plan is not None:
            block = encoded[plan[0]]
            return block.index_select(1, plan[1].to(block.device))
        parts = [numeric_of(encoded, c) for c in self.columns]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class _Embedding(nn.Module):
    """One embedding column: an EmbeddingBag with a zero padding row and tf's combiners."""

    def __init__(self, column: EmbeddingColumn) -> None:
        super().__init__()
        cat = column.categorical_column
        self.column = cat
        self.weighted = isinstance(cat, WeightedCategoricalColumn)
        self.combiner = column.combiner
        self.pad = cat.num_buckets
        self.bag = nn.EmbeddingBag(
            cat.num_buckets + 1,
            column.dimension,
            mode="sum",
            padding_idx=self.pad,
            max_norm=column.max_norm,
        )
        std = 1.0 / math.sqrt(column.dimension)  # tf.feature_column's default initializer
        with torch.no_grad():
            nn.init.trunc_normal_(self.bag.weight, std=std, a=-2 * std, b=2 * std)
            self.bag.weight[self.pad].zero_()
        self.bag.weight.requires_grad_(column.trainable)

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        x = ids_of(encoded, self.column)
        x = x.reshape(x.shape[0], -1)
        present = x >= 0
        idx = torch.where(present, x, self.pad)
        if self.weighted:
            w = weights_of(encoded, self.column).reshape(x.shape)
        elif x.shape[1] == 1:
            # one id per row: mean, sum and sqrtn all equal the row itself
            return self.bag(idx)
        else:
            w = present.to(torch.float32)
        out = self.bag(idx, per_sample_weights=w)
        if self.combiner == "mean":
            out = out / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        elif self.combiner == "sqrtn":
            out = out / w.square().sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        return out


def _sorted(columns: Sequence[FeatureColumn], arg: str) -> list[FeatureColumn]:
    # tf.feature_column orders a layer's inputs by column name; so do we.
    return sorted(check_columns(_dedupe(list(columns)), arg), key=lambda c: c.name)


class DenseFeatures(nn.Module):
    """The dense input of a DNN: ``[batch, output_dim]`` floats from encoded columns.

    Accepts numeric, bucketized (one-hot), indicator (one-hot / multi-hot / weighted) and
    embedding columns. Output layout: numeric values (by column name), then every one-hot
    block (by name), then every embedding (by name); see :attr:`layout`.

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x", shape=2)]
    >>> layer = DenseFeatures(cols)
    >>> layer(FeatureTransform(cols).encode({"x": [[1.0, 2.0]]})).shape
    torch.Size([1, 2])
    """

    def __init__(self, columns: Sequence[FeatureColumn]) -> None:
        super().__init__()
        cols = _sorted(columns, "feature_columns")
        numeric: list[NumericColumn] = []
        onehot: list[CategoricalColumn] = []  # bucketized columns, and what indicators wrap
        embed: list[EmbeddingColumn] = []
        shown: dict[str, str] = {}  # a one-hot block's id-space name -> the column the user gave
        for col in cols:
            if isinstance(col, NumericColumn):
                numeric.append(col)
            elif isinstance(col, BucketizedColumn):
                onehot.append(col)
            elif isinstance(col, IndicatorColumn):
                onehot.append(col.categorical_column)
                shown[col.categorical_column.name] = col.name
            elif isinstance(col, EmbeddingColumn):
                embed.append(col)
            elif isinstance(col, CategoricalColumn):
                raise FeatureColumnError(
                    f"Feature column '{col.name}' is categorical; wrap it in "
                    f"indicator_column(...) or embedding_column(...) before giving it to a "
                    f"DNN (DenseFeatures). Received: {type(col).__name__} '{col.name}'"
                )
            else:
                raise FeatureColumnError(
                    f"DenseFeatures cannot use feature column '{col.name}'. "
                    f"Received: {type(col).__name__}"
                )
        self.columns = cols
        self._numeric = _Numeric(numeric) if numeric else None
        self._onehot = _OffsetIds(onehot) if onehot else None
        self.embeddings = nn.ModuleList(_Embedding(c) for c in embed)
        self.layout: list[tuple[str, int, int]] = []
        pos = 0
        for c in sorted(numeric, key=lambda c: c.name):
            self.layout.append((c.name, pos, pos + c.dimension))
            pos += c.dimension
        if self._onehot is not None:
            for name, size in zip(self._onehot.names, self._onehot.sizes, strict=True):
                self.layout.append((shown.get(name, name), pos, pos + size))
                pos += size
        for e in embed:
            self.layout.append((e.name, pos, pos + e.dimension))
            pos += e.dimension
        self.output_dim: int = pos

    def extra_repr(self) -> str:
        # the same names as `layout` and the feature columns: [start, stop) of each column
        return f"output_dim={self.output_dim}, layout=" + ", ".join(
            f"{name}[{start}:{stop}]" for name, start, stop in self.layout
        )

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [] if self._numeric is None else [self._numeric(encoded)]
        if self._onehot is not None:
            ids, w = self._onehot(encoded)
            total = self._onehot.total
            hot = torch.zeros(ids.shape[0], total + 1, dtype=torch.float32, device=ids.device)
            if w is None:
                w = torch.ones((), dtype=torch.float32, device=ids.device).expand(ids.shape)
            hot.scatter_add_(1, ids, w)
            parts.append(hot[:, :total])
        parts.extend(e(encoded) for e in self.embeddings)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class LinearFeatures(nn.Module):
    """A linear model's feature part: ``sum_c x_c W_c`` as ``[batch, units]``, no bias.

    Numeric (and embedding) columns go through one weight matrix; categorical, bucketized,
    crossed, weighted and indicator columns share one ``EmbeddingBag(mode="sum")`` whose
    rows are the per-category weights (weighted columns scale their rows). Weights start
    at zero, as in tf.estimator's linear models.

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x")]
    >>> LinearFeatures(cols, units=1)(FeatureTransform(cols).encode({"x": [3.0]})).tolist()
    [[0.0]]
    """

    def __init__(self, columns: Sequence[FeatureColumn], units: int, sparse: bool = False) -> None:
        super().__init__()
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise FeatureColumnError(
                f"LinearFeatures: units must be a positive integer. Received: units={units!r}"
            )
        cols = _sorted(columns, "feature_columns")
        numeric, cats, embed = [], [], []
        for col in cols:
            if isinstance(col, NumericColumn):
                numeric.append(col)
            elif isinstance(col, IndicatorColumn):
                cats.append(col.categorical_column)
            elif isinstance(col, CategoricalColumn):
                cats.append(col)
            elif isinstance(col, EmbeddingColumn):
                embed.append(col)
            else:
                raise FeatureColumnError(
                    f"LinearFeatures cannot use feature column '{col.name}'. "
                    f"Received: {type(col).__name__}"
                )
        self.columns = cols
        self.units = units
        self._numeric = _Numeric(numeric) if numeric else None
        self.embeddings = nn.ModuleList(_Embedding(c) for c in embed)
        dense_dim = sum(c.dimension for c in numeric) + sum(c.dimension for c in embed)
        self.dense_dim = dense_dim
        self.weight = nn.Parameter(torch.zeros(dense_dim, units)) if dense_dim else None
        self._cats = _OffsetIds(cats) if cats else None
        self.categorical = (
            nn.EmbeddingBag(
                self._cats.total + 1, units, mode="sum", padding_idx=self._cats.total, sparse=sparse
            )
            if self._cats
            else None
        )
        if self.categorical is not None:
            nn.init.zeros_(self.categorical.weight)

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        out = None
        if self.weight is not None:
            parts = [] if self._numeric is None else [self._numeric(encoded)]
            parts.extend(e(encoded) for e in self.embeddings)
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            out = x @ self.weight
        if self._cats is not None and self.categorical is not None:
            ids, w = self._cats(encoded)
            cat_out = self.categorical(ids, per_sample_weights=w)
            out = cat_out if out is None else out + cat_out
        assert out is not None  # a linear model has dense or categorical inputs (checked above)
        return out
