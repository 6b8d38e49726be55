"""shared_embeddings: one embedding table for several categorical columns (tf.feature_column).

Columns whose ids mean the same things (a "watched" and a "liked" movie id, the two
teams of a match) can share one learned table: :func:`shared_embeddings` returns one
:class:`SharedEmbeddingColumn` per categorical column, all naming one collection.
:class:`SharedEmbeddings` is the torch layer: one ``EmbeddingBag`` per collection, a
``[N, dimension]`` block per column. The custom-model estimator
(``trainrun.Estimator(model_fn=...)``) places it beside ``DenseFeatures``. Declaring
the columns needs no torch; the layer lives in ``_extra_layers.py``.

>>> from trainrun.feature_columns import categorical_column_with_identity as identity
>>> a, b = shared_embeddings([identity("home", 10), identity("away", 10)], dimension=4)
>>> a.name, b.shared_embedding_collection_name
('home_shared_embedding', 'away_home_shared_embedding')
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._columns import (
    CategoricalColumn,
    FeatureColumn,
    _check_categorical,
    _check_positive_int,
)

__all__ = ["SharedEmbeddingColumn", "shared_embeddings"]

_COMBINERS = ("mean", "sum", "sqrtn")


@dataclass(frozen=True)
class SharedEmbeddingColumn(FeatureColumn):
    """One categorical column's view of a shared embedding table."""

    categorical_column: CategoricalColumn
    dimension: int
    shared_embedding_collection_name: str
    combiner: str = "mean"
    max_norm: float | None = None
    trainable: bool = True

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_shared_embedding"

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return self.categorical_column.raw_keys

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "shared_embedding_column",
            "categorical_column": self.categorical_column.to_config(),
            "dimension": self.dimension,
            "shared_embedding_collection_name": self.shared_embedding_collection_name,
            "combiner": self.combiner,
            "max_norm": self.max_norm,
            "trainable": self.trainable,
        }


def shared_embeddings(
    categorical_columns: Sequence[CategoricalColumn],
    dimension: int,
    combiner: str = "mean",
    shared_embedding_collection_name: str | None = None,
    max_norm: float | None = None,
    trainable: bool = True,
) -> list[SharedEmbeddingColumn]:
    """Embedding columns over one shared table, one per categorical column (tf's arguments).

    Every column must have the same number of buckets (the rows of the table).
    """
    if isinstance(categorical_columns, FeatureColumn) or not categorical_columns:
        raise FeatureColumnError(
            "shared_embeddings() needs a non-empty list of categorical columns. "
            f"Received: categorical_columns={categorical_columns!r}"
        )
    cats = [_check_categorical(c, "shared_embeddings") for c in categorical_columns]
    dimension = _check_positive_int(dimension, "dimension", cats[0].name)
    sizes = {c.name: c.num_buckets for c in cats}
    if len(set(sizes.values())) != 1:
        raise FeatureColumnError(
            "shared_embeddings() needs categorical columns with the same number of buckets: "
            f"they index one table. Received: num_buckets {sizes}"
        )
    if combiner not in _COMBINERS:
        raise FeatureColumnError(
            f"combiner must be one of {list(_COMBINERS)}. Received: combiner={combiner!r}"
        )
    if max_norm is not None and (not isinstance(max_norm, numbers.Real) or max_norm <= 0):
        raise FeatureColumnError(f"max_norm must be a positive number. Received: {max_norm!r}")
    name = shared_embedding_collection_name or (
        "_".join(sorted(c.name for c in cats)) + "_shared_embedding"
    )
    return [SharedEmbeddingColumn(c, dimension, name, combiner, max_norm, trainable) for c in cats]


def shared_column_from_config(config: dict[str, Any], normalizers: Any = None) -> Any:
    from trainrun.feature_columns._columns import column_from_config

    cat = column_from_config(config["categorical_column"], normalizers)
    return SharedEmbeddingColumn(
        cat,  # type: ignore[arg-type]
        int(config["dimension"]),
        config["shared_embedding_collection_name"],
        config.get("combiner", "mean"),
        config.get("max_norm"),
        bool(config.get("trainable", True)),
    )
