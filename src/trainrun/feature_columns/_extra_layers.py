"""Torch side of the sequence and shared-embedding columns: their transform and layers.

* :class:`ExtendedTransform` encodes every column a model needs: the usual ones through
  :class:`FeatureTransform`, sequence columns as padded tensors with their lengths;
* :class:`SequenceFeatures` (tf's ``SequenceFeatures``): ``([N, T, d], lengths [N])``;
* :class:`SharedEmbeddings`: one table per collection, ``[N, dimension]`` per column.

>>> import numpy as np
>>> from trainrun.feature_columns import embedding_column
>>> from trainrun.feature_columns._sequence import sequence_categorical_column_with_identity
>>> col = embedding_column(sequence_categorical_column_with_identity("ids", 10), 4)
>>> t = ExtendedTransform([col])
>>> seq, lengths = SequenceFeatures([col])(t.encode({"ids": [[1, 2, 3], [4]]}))
>>> tuple(seq.shape), lengths.tolist()
((2, 3, 4), [3, 1])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._columns import (
    EmbeddingColumn,
    FeatureColumn,
    IndicatorColumn,
    check_columns,
    columns_to_config,
)
from trainrun.feature_columns._sequence import (
    SequenceCategoricalColumn,
    SequenceNumericColumn,
    is_sequence_column,
)
from trainrun.feature_columns._shared import SharedEmbeddingColumn
from trainrun.feature_columns._transform import FeatureTransform

__all__ = ["ExtendedTransform", "SequenceFeatures", "SharedEmbeddings", "needs_extended"]

SEQ = "\x02seq:"
LENGTHS = "\x02seqlen:"


def needs_extended(columns: Sequence[FeatureColumn]) -> bool:
    """Whether any column is a sequence or shared-embedding column."""
    return any(is_sequence_column(c) or isinstance(c, SharedEmbeddingColumn) for c in columns)


def _base(column: FeatureColumn) -> FeatureColumn:
    if isinstance(column, (EmbeddingColumn, IndicatorColumn)):
        return column.categorical_column
    return column


def _rows(raw: Any) -> list[Any]:
    """Each row as a list of values (a scalar row is a sequence of one; missing: empty)."""
    out = []
    for v in list(raw):
        if isinstance(v, (list, tuple, np.ndarray)):
            out.append(list(v))
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            out.append([])
        else:
            out.append([v])
    return out


class ExtendedTransform(FeatureTransform):
    """FeatureTransform plus sequence columns (padded) and shared-embedding columns."""

    def __init__(self, columns: Sequence[FeatureColumn]) -> None:
        self.columns = check_columns(list(dict.fromkeys(columns)))
        plain: list[FeatureColumn] = []
        self.sequences: list[FeatureColumn] = []
        for col in self.columns:
            if is_sequence_column(col):
                base = _base(col)
                if base not in self.sequences:
                    self.sequences.append(base)
            elif isinstance(col, SharedEmbeddingColumn):
                if col.categorical_column not in plain:
                    plain.append(col.categorical_column)
            elif col not in plain:
                plain.append(col)
        self.base = FeatureTransform(plain) if plain else None
        self._inner = {
            c.name: FeatureTransform([c.categorical_column])
            for c in self.sequences
            if isinstance(c, SequenceCategoricalColumn)
        }
        keys = list(self.base.required_keys) if self.base is not None else []
        for c in self.sequences:
            keys.extend(c.raw_keys)
        self.required_keys = tuple(dict.fromkeys(keys))

    def __repr__(self) -> str:
        return f"ExtendedTransform({[c.name for c in self.columns]!r})"

    @property
    def string_keys(self) -> tuple[str, ...]:
        keys = list(self.base.string_keys) if self.base is not None else []
        for inner in self._inner.values():
            keys.extend(inner.string_keys)
        return tuple(dict.fromkeys(keys))

    def encode(self, data: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        out = dict(self.base.encode(data)) if self.base is not None else {}
        for col in self.sequences:
            if col.raw_keys[0] not in data:
                raise FeatureColumnError(
                    f"Sequence column '{col.name}' needs the key {col.raw_keys[0]!r}, which is "
                    f"not in the data. Received keys: {list(data)[:30]}"
                )
            rows = _rows(data[col.raw_keys[0]])
            lengths = np.array([len(r) for r in rows], dtype=np.int64)
            out[LENGTHS + col.name] = torch.from_numpy(lengths)
            if isinstance(col, SequenceNumericColumn):
                out[SEQ + col.name] = _pad_numeric(col, rows, lengths)
            else:
                ids = self._inner[col.name].encode({col.raw_keys[0]: _as_object(rows)})
                from trainrun.feature_columns._blocks import encoded_column

                inner = col.categorical_column  # type: ignore[attr-defined]
                values = encoded_column(ids, inner.name).reshape(len(rows), -1)
                width = int(lengths.max(initial=0))
                values = (
                    values[:, :width]
                    if values.shape[1] >= width
                    else torch.nn.functional.pad(values, (0, width - values.shape[1]), value=-1)
                )
                out[SEQ + col.name] = values.contiguous()
        return out

    def to_config(self) -> dict[str, Any]:
        return {"columns": columns_to_config(self.columns)}


def _as_object(rows: list[list[Any]]) -> np.ndarray:
    arr = np.empty(len(rows), dtype=object)
    arr[:] = [r if r else None for r in rows]
    return arr


def _pad_numeric(
    col: SequenceNumericColumn, rows: list[list[Any]], lengths: np.ndarray
) -> torch.Tensor:
    n, t, d = len(rows), int(lengths.max(initial=0)), col.dimension
    out = np.full((n, max(t, 1), d), col.default_value, dtype=np.float32)
    for i, row in enumerate(rows):
        if row:
            try:
                values = np.asarray(row, dtype=np.float32).reshape(len(row), d)
            except (TypeError, ValueError):
                raise FeatureColumnError(
                    f"Sequence column '{col.name}' row {i} must be a list of numbers "
                    f"(of {d} values each). Received: {row[:5]!r}"
                ) from None
            out[i, : len(row)] = values
    return torch.from_numpy(out[:, :t] if t else out[:, :0])


class SequenceFeatures(nn.Module):
    """Sequence columns -> ``(values [N, T, d], lengths [N])``, columns joined on the last axis.

    Takes ``sequence_numeric_column`` and ``embedding_column`` / ``indicator_column`` of a
    ``sequence_categorical_column_with_*``; every column must have the same length per
    example (as tf). Padding positions are zeros (an embedding's pad row) or the numeric
    column's ``default_value``.
    """

    def __init__(self, columns: Sequence[FeatureColumn]) -> None:
        super().__init__()
        cols = sorted(check_columns(list(columns), "sequence_columns"), key=lambda c: c.name)
        self.columns = cols
        self.embeddings = nn.ModuleDict()
        width = 0
        for col in cols:
            if not is_sequence_column(col):
                raise FeatureColumnError(
                    f"SequenceFeatures takes sequence columns only; '{col.name}' is a "
                    f"{type(col).__name__}. Give it to DenseFeatures instead."
                )
            if isinstance(col, SequenceNumericColumn):
                width += col.dimension
            elif isinstance(col, EmbeddingColumn):
                n = col.categorical_column.num_buckets
                emb = nn.Embedding(n + 1, col.dimension, padding_idx=n, max_norm=col.max_norm)
                std = 1.0 / math.sqrt(col.dimension)
                with torch.no_grad():
                    nn.init.trunc_normal_(emb.weight, std=std, a=-2 * std, b=2 * std)
                    emb.weight[n].zero_()
                emb.weight.requires_grad_(col.trainable)
                self.embeddings[col.categorical_column.name] = emb
                width += col.dimension
            elif isinstance(col, IndicatorColumn):
                width += col.categorical_column.num_buckets
            else:
                raise FeatureColumnError(
                    f"Sequence categorical column '{col.name}' must be wrapped in "
                    "embedding_column(...) or indicator_column(...) for SequenceFeatures."
                )
        self.output_dim: int = width

    def forward(self, encoded: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        parts, lengths = [], None
        for col in self.columns:
            base = _base(col)
            seq_len = encoded[LENGTHS + base.name]
            if lengths is None:
                lengths = seq_len
            elif not torch.equal(lengths, seq_len):
                raise FeatureColumnError(
                    "Sequence columns must have the same length in each example; "
                    f"'{col.name}' differs from '{self.columns[0].name}'."
                )
            values = encoded[SEQ + base.name]
            if isinstance(col, SequenceNumericColumn):
                parts.append(values)
                continue
            n = base.num_buckets  # type: ignore[attr-defined]
            idx = torch.where(values >= 0, values, n)
            if isinstance(col, EmbeddingColumn):
                parts.append(self.embeddings[base.name](idx))
            else:
                parts.append(torch.nn.functional.one_hot(idx, n + 1)[..., :n].to(torch.float32))
        assert lengths is not None
        return torch.cat(parts, dim=-1), lengths


class SharedEmbeddings(nn.Module):
    """``[N, sum of dimensions]``: each shared column's combined embedding, by column name."""

    def __init__(self, columns: Sequence[SharedEmbeddingColumn]) -> None:
        import torch
        from torch import nn

        super().__init__()
        self.columns = sorted(columns, key=lambda c: c.name)
        self.tables = nn.ModuleDict()
        for col in self.columns:
            key = col.shared_embedding_collection_name
            if key in self.tables:
                table = self.tables[key]
                if table.embedding_dim != col.dimension:
                    raise FeatureColumnError(
                        f"Shared embedding collection {key!r} has columns of different "
                        f"dimensions ({table.embedding_dim} and {col.dimension})."
                    )
                continue
            n = col.categorical_column.num_buckets
            bag = nn.EmbeddingBag(
                n + 1, col.dimension, mode="sum", padding_idx=n, max_norm=col.max_norm
            )
            std = 1.0 / math.sqrt(col.dimension)  # tf.feature_column's default initializer
            with torch.no_grad():
                nn.init.trunc_normal_(bag.weight, std=std, a=-2 * std, b=2 * std)
                bag.weight[n].zero_()
            bag.weight.requires_grad_(col.trainable)
            self.tables[key] = bag
        self.output_dim: int = sum(c.dimension for c in self.columns)

    def forward(self, encoded: dict[str, Any]) -> Any:
        import torch

        from trainrun.feature_columns._blocks import ids_of

        parts = []
        for col in self.columns:
            bag = self.tables[col.shared_embedding_collection_name]
            pad = col.categorical_column.num_buckets
            x = ids_of(encoded, col.categorical_column)
            x = x.reshape(x.shape[0], -1)
            present = x >= 0
            w = present.to(torch.float32)
            out = bag(torch.where(present, x, pad), per_sample_weights=w)
            if col.combiner == "mean":
                out = out / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
            elif col.combiner == "sqrtn":
                out = out / w.square().sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
            parts.append(out)
        return torch.cat(parts, dim=1)
