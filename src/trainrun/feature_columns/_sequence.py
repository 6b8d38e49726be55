"""Sequence feature columns: a list of values per example (tf.feature_column.sequence_*).

A row of a sequence column holds a variable-length list: the words of a review, the
prices of the last 30 days. Declare them with :func:`sequence_numeric_column` and the
``sequence_categorical_column_with_*`` functions (wrap a categorical one in
``embedding_column`` or ``indicator_column``), and read them with
:class:`~trainrun.feature_columns.SequenceFeatures`, which gives a padded
``[N, T, d]`` tensor and the lengths ``[N]`` (for a GRU or LSTM, through the custom-model
estimator ``trainrun.Estimator(model_fn=...)``).

>>> col = sequence_categorical_column_with_vocabulary_list("words", ["good", "bad"])
>>> from trainrun.feature_columns import embedding_column
>>> embedding_column(col, 8).name, is_sequence_column(embedding_column(col, 8))
('words_embedding', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._columns import (
    CategoricalColumn,
    EmbeddingColumn,
    FeatureColumn,
    IndicatorColumn,
    _check_key,
    categorical_column_with_hash_bucket,
    categorical_column_with_identity,
    categorical_column_with_vocabulary_file,
    categorical_column_with_vocabulary_list,
)

__all__ = [
    "SequenceCategoricalColumn",
    "SequenceNumericColumn",
    "is_sequence_column",
    "refuse_sequence_columns",
    "sequence_categorical_column_with_hash_bucket",
    "sequence_categorical_column_with_identity",
    "sequence_categorical_column_with_vocabulary_file",
    "sequence_categorical_column_with_vocabulary_list",
    "sequence_numeric_column",
]


@dataclass(frozen=True)
class SequenceNumericColumn(FeatureColumn):
    """A list of numbers (or of ``shape``-vectors) per example; padding is ``default_value``."""

    key: str
    shape: tuple[int, ...] = (1,)
    default_value: float = 0.0

    is_sequence = True

    @property
    def name(self) -> str:
        return self.key

    @property
    def dimension(self) -> int:
        return math.prod(self.shape)

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "sequence_numeric_column",
            "key": self.key,
            "shape": list(self.shape),
            "default_value": self.default_value,
        }


@dataclass(frozen=True)
class SequenceCategoricalColumn(CategoricalColumn):
    """A list of categorical values per example: the wrapped column maps each to an id."""

    categorical_column: CategoricalColumn

    is_sequence = True

    @property
    def name(self) -> str:
        return self.categorical_column.name

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return self.categorical_column.num_buckets

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return self.categorical_column.raw_keys

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "sequence_categorical_column",
            "categorical_column": self.categorical_column.to_config(),
        }


def is_sequence_column(column: Any) -> bool:
    """A sequence column, or an embedding / indicator column over one."""
    if isinstance(column, (EmbeddingColumn, IndicatorColumn)):
        column = column.categorical_column
    return bool(getattr(column, "is_sequence", False))


def refuse_sequence_columns(columns: Sequence[Any], estimator: str, arg: str) -> None:
    """A canned estimator's check: sequence columns need a sequence model (as in tf).

    tf's canned estimators refused sequence columns too: a DNN or linear model has no
    notion of order or length. The message names the column and the estimator to use.
    """
    for col in columns:
        if is_sequence_column(col):
            raise FeatureColumnError(
                f"{estimator} cannot use the sequence column '{col.name}' in {arg}: a canned "
                "estimator reads one fixed-width row per example, as in tf.estimator. Train a "
                "sequence model (a GRU, LSTM or transformer over SequenceFeatures' [N, T, d] "
                "tensor) with trainrun.Estimator(model_fn=..., head=..., feature_columns=[...]) "
                f"instead, or aggregate the sequence into ordinary columns. Received: "
                f"{type(col).__name__} '{col.name}'"
            )


def sequence_numeric_column(
    key: str, shape: int | Sequence[int] = (1,), default_value: float = 0.0
) -> SequenceNumericColumn:
    """A variable-length list of numbers per row (``shape``: the size of each element)."""
    key = _check_key(key)
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise FeatureColumnError(
            f"Column '{key}': shape must be a positive int or a tuple of them. Received: shape={shape!r}"
        )
    if isinstance(default_value, bool) or not isinstance(default_value, (int, float)):
        raise FeatureColumnError(
            f"Column '{key}': default_value (the padding) must be a number. "
            f"Received: default_value={default_value!r}"
        )
    return SequenceNumericColumn(key, dims, float(default_value))


def sequence_categorical_column_with_vocabulary_list(
    key: str, vocabulary_list: Sequence[Any], dtype: Any = None, default_value: int = -1,
    num_oov_buckets: int = 0,
) -> SequenceCategoricalColumn:  # fmt: skip
    """A list of values per row, each mapped through ``vocabulary_list`` (tf's arguments)."""
    return SequenceCategoricalColumn(
        categorical_column_with_vocabulary_list(
            key, vocabulary_list, dtype, default_value, num_oov_buckets
        )
    )


def sequence_categorical_column_with_vocabulary_file(
    key: str, vocabulary_file: str, vocabulary_size: int | None = None,
    num_oov_buckets: int = 0, default_value: int | None = None, dtype: Any = "string",
) -> SequenceCategoricalColumn:  # fmt: skip
    """A list of values per row, each mapped through a vocabulary file."""
    return SequenceCategoricalColumn(
        categorical_column_with_vocabulary_file(
            key, vocabulary_file, vocabulary_size, num_oov_buckets, default_value, dtype
        )
    )


def sequence_categorical_column_with_identity(
    key: str, num_buckets: int, default_value: int | None = None
) -> SequenceCategoricalColumn:
    """A list of integer ids in ``[0, num_buckets)`` per row."""
    return SequenceCategoricalColumn(
        categorical_column_with_identity(key, num_buckets, default_value)
    )


def sequence_categorical_column_with_hash_bucket(
    key: str, hash_bucket_size: int, dtype: Any = "string"
) -> SequenceCategoricalColumn:
    """A list of values per row, each hashed into ``hash_bucket_size`` buckets."""
    return SequenceCategoricalColumn(
        categorical_column_with_hash_bucket(key, hash_bucket_size, dtype)
    )


def extra_column_from_config(config: dict[str, Any], normalizers: Any = None) -> Any:
    """Rebuild a sequence or shared-embedding column from its config (None: another type)."""
    from trainrun.feature_columns._columns import column_from_config

    kind = config.get("type")
    if kind == "sequence_numeric_column":
        return SequenceNumericColumn(
            config["key"], tuple(config["shape"]), float(config["default_value"])
        )
    if kind == "sequence_categorical_column":
        return SequenceCategoricalColumn(
            column_from_config(config["categorical_column"], normalizers)  # type: ignore[arg-type]
        )
    if kind == "shared_embedding_column":
        from trainrun.feature_columns._shared import shared_column_from_config

        return shared_column_from_config(config, normalizers)
    return None
