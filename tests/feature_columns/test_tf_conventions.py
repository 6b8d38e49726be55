"""tf.feature_column's conventions: -1 padding in integer input, negative vocabulary
defaults, crossed column names; the expected values follow tf's documented semantics."""

from __future__ import annotations

import numpy as np
import pytest

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns import (
    FeatureTransform,
    bucketized_column,
    categorical_column_with_identity,
    categorical_column_with_vocabulary_list,
    crossed_column,
    indicator_column,
    numeric_column,
)


def one_hot(column, values):
    from trainrun.feature_columns import DenseFeatures

    cols = [indicator_column(column)]
    return DenseFeatures(cols)(FeatureTransform(cols).encode({column.raw_keys[0]: values}))


def test_minus_one_in_a_dense_integer_input_is_padding_for_identity_columns():
    col = categorical_column_with_identity("aaa", 3)
    # tf: ((0, -1), (1, 2)) as a dense int input -> ids {0} and {1, 2}; the -1 is dropped.
    hot = one_hot(col, np.array([[0, -1], [1, 2]]))
    assert hot.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    # A default_value does not capture the padding: only real out-of-range values.
    with_default = categorical_column_with_identity("aaa", 3, default_value=2)
    assert one_hot(with_default, np.array([[-1], [7]])).tolist() == [[0, 0, 0], [0, 0, 1]]


def test_minus_one_is_padding_for_integer_vocabularies_even_with_oov_buckets():
    col = categorical_column_with_vocabulary_list("aaa", [12, 24, 36], num_oov_buckets=2)
    hot = one_hot(col, np.array([[12, -1], [-1, 36]]))
    # 5 buckets (3 words + 2 OOV); each row holds exactly its one real id.
    assert hot.sum(dim=1).tolist() == [1.0, 1.0]
    assert hot[0, 0] == 1.0 and hot[1, 2] == 1.0


def test_a_vocabulary_default_value_may_be_any_negative_id_as_in_tf():
    # tf's own test declares default_value=-99 (and -100) on an int vocabulary.
    col = categorical_column_with_vocabulary_list("aaa", (30, 35, 11), default_value=-99)
    assert col.num_buckets == 3
    # Out-of-vocabulary values and padding both give no id: an all-zero one-hot row.
    hot = one_hot(col, np.array([[11, -1], [100, 30]]))
    assert hot.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    # A default inside the vocabulary sends misses there; one past it is refused.
    two = categorical_column_with_vocabulary_list("s", ["a", "b", "c"], default_value=2)
    assert one_hot(two, np.array(["a", "zzz"])).tolist() == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(FeatureColumnError, match=r"default_value must be an id in \[0, 3\)"):
        categorical_column_with_vocabulary_list("s", ["a", "b", "c"], default_value=3)


def test_crossed_column_names_sort_their_keys_as_tf():
    c = categorical_column_with_vocabulary_list("c", ["x", "y"])
    assert crossed_column(["d2", "c"], 10).name == "c_X_d2"
    assert crossed_column([c, "a"], 10).name == "a_X_c"
    b = bucketized_column(numeric_column("price"), [1.0, 2.0])
    # tf flattens nested crosses into their leaf keys before sorting.
    nested = crossed_column([crossed_column(["z", "m"], 5), b], 10)
    assert nested.name == "m_X_price_bucketized_X_z"
    assert crossed_column(["b", "a"], 10).name == crossed_column(["a", "b"], 10).name
