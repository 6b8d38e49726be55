"""Feature columns, first step of the estimators' flow: declare how raw data columns become
model inputs (tf.feature_column).

Declaring columns needs no torch; :class:`FeatureTransform` (stage 1, raw data ->
tensors) and the layers :class:`DenseFeatures` / :class:`LinearFeatures` (stage 2)
import it on first use.

>>> from trainrun.feature_columns import numeric_column, bucketized_column
>>> bucketized_column(numeric_column("tenure"), [12, 24]).num_buckets
3
"""

from __future__ import annotations

import importlib
from typing import Any

from trainrun.feature_columns._columns import (
    BucketizedColumn,
    CategoricalColumn,
    CrossedColumn,
    EmbeddingColumn,
    FeatureColumn,
    HashBucketColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedCategoricalColumn,
    bucketized_column,
    categorical_column_with_hash_bucket,
    categorical_column_with_identity,
    categorical_column_with_vocabulary_file,
    categorical_column_with_vocabulary_list,
    column_from_config,
    columns_from_config,
    columns_to_config,
    crossed_column,
    embedding_column,
    indicator_column,
    numeric_column,
    weighted_categorical_column,
)
from trainrun.feature_columns._infer import columns_from_frame
from trainrun.feature_columns._sequence import (
    SequenceCategoricalColumn,
    SequenceNumericColumn,
    sequence_categorical_column_with_hash_bucket,
    sequence_categorical_column_with_identity,
    sequence_categorical_column_with_vocabulary_file,
    sequence_categorical_column_with_vocabulary_list,
    sequence_numeric_column,
)
from trainrun.feature_columns._shared import SharedEmbeddingColumn, shared_embeddings

_LAZY = {
    "DenseFeatures": "trainrun.feature_columns._layers",
    "LinearFeatures": "trainrun.feature_columns._layers",
    "FeatureTransform": "trainrun.feature_columns._transform",
    "SequenceFeatures": "trainrun.feature_columns._extra_layers",
    "SharedEmbeddings": "trainrun.feature_columns._extra_layers",
    "encoded_column": "trainrun.feature_columns._blocks",
}

__all__ = [
    "DenseFeatures",
    "FeatureTransform",
    "LinearFeatures",
    "BucketizedColumn",
    "CategoricalColumn",
    "CrossedColumn",
    "EmbeddingColumn",
    "FeatureColumn",
    "HashBucketColumn",
    "IdentityColumn",
    "IndicatorColumn",
    "NumericColumn",
    "SequenceCategoricalColumn",
    "SequenceFeatures",
    "SequenceNumericColumn",
    "SharedEmbeddingColumn",
    "SharedEmbeddings",
    "VocabularyColumn",
    "WeightedCategoricalColumn",
    "bucketized_column",
    "categorical_column_with_hash_bucket",
    "categorical_column_with_identity",
    "categorical_column_with_vocabulary_file",
    "categorical_column_with_vocabulary_list",
    "column_from_config",
    "columns_from_config",
    "columns_from_frame",
    "columns_to_config",
    "crossed_column",
    "embedding_column",
    "encoded_column",
    "indicator_column",
    "numeric_column",
    "sequence_categorical_column_with_hash_bucket",
    "sequence_categorical_column_with_identity",
    "sequence_categorical_column_with_vocabulary_file",
    "sequence_categorical_column_with_vocabulary_list",
    "sequence_numeric_column",
    "shared_embeddings",
    "weighted_categorical_column",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trainrun.feature_columns' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
