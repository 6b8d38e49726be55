"""Declaring feature columns: names, sizes, configs, and every misdeclaration."""

from __future__ import annotations

import json

import pytest

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns import (
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


def test_names_and_sizes_follow_tf_feature_column():
    age = numeric_column("age", shape=(2, 3), default_value=0)
    assert age.name == "age" and age.dimension == 6 and age.default_value == (0.0,) * 6
    b = bucketized_column(numeric_column("age"), [18, 30, 65])
    assert b.name == "age_bucketized" and b.num_buckets == 4
    assert bucketized_column(age, [0, 1]).num_buckets == 3 * 6
    v = categorical_column_with_vocabulary_list("c", ["a", "b"], num_oov_buckets=3)
    assert v.num_buckets == 5 and v.dtype == "string"
    assert categorical_column_with_vocabulary_list("i", [3, 5]).dtype == "int64"
    h = categorical_column_with_hash_bucket("h", 7)
    x = crossed_column(["c", h], 100)
    assert x.name == "c_X_h" and x.num_buckets == 100 and x.raw_keys == ("c", "h")
    w = weighted_categorical_column(v, "cw")
    assert w.name == "c_weighted_by_cw" and w.raw_keys == ("c", "cw")
    assert indicator_column(v).name == "c_indicator" and indicator_column(v).dimension == 5
    e = embedding_column(h, 4, combiner="sqrtn")
    assert e.name == "h_embedding" and e.dimension == 4


def test_vocabulary_file_is_read_and_inlined(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("red\ngreen\nblue\n\n", encoding="utf-8")
    col = categorical_column_with_vocabulary_file("colour", path, num_oov_buckets=1)
    assert col.vocabulary == ("red", "green", "blue") and col.num_buckets == 4
    short = categorical_column_with_vocabulary_file("colour", path, vocabulary_size=2)
    assert short.vocabulary == ("red", "green")
    config = json.loads(json.dumps(col.to_config()))
    path.unlink()  # the saved config must not need the file any more
    again = column_from_config(config)
    assert again.vocabulary == col.vocabulary and again.num_buckets == 4


def test_every_column_round_trips_through_json_config():
    v = categorical_column_with_vocabulary_list("c", ["a", "b"], default_value=0)
    cols = [
        numeric_column("n", shape=2, default_value=[1, 2], normalizer_fn=("zscore", 1.0, 2.0)),
        bucketized_column(numeric_column("m", normalizer_fn=("log1p",)), [0.5, 1.5]),
        indicator_column(v),
        embedding_column(categorical_column_with_identity("i", 10, default_value=0), 3, "sum", 2.0),
        indicator_column(crossed_column(["c", categorical_column_with_hash_bucket("h", 5)], 50, 7)),
        embedding_column(weighted_categorical_column(v, "w"), 2, trainable=False),
    ]
    config = json.loads(json.dumps(columns_to_config(cols)))
    assert columns_from_config(config) == cols


def test_callable_normalizer_must_be_given_back_when_loading():
    def double(x):
        return x * 2

    config = json.loads(json.dumps(numeric_column("n", normalizer_fn=double).to_config()))
    assert config["normalizer_fn"]["callable"].endswith("double")
    with pytest.raises(FeatureColumnError, match=r"normalizers=\{'n': double\}"):
        column_from_config(config)
    assert column_from_config(config, normalizers={"n": double}).normalizer_fn is double


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: numeric_column(""), "non-empty string"),
        (lambda: numeric_column("x", shape=0), r"shape=0"),
        (lambda: numeric_column("x", shape=(2,), default_value=[1, 2, 3]), "2 numbers"),
        (lambda: numeric_column("x", dtype="string"), "dtype='string'"),
        (lambda: numeric_column("x", normalizer_fn=("zscore", 0, 0)), "std != 0"),
        (lambda: numeric_column("x", normalizer_fn="zscore"), "normalizer_fn='zscore'"),
        (lambda: bucketized_column(numeric_column("x"), [3, 1, 2]), "sorted in strictly"),
        (lambda: bucketized_column(numeric_column("x"), [1, 1]), "sorted in strictly"),
        (lambda: bucketized_column(numeric_column("x"), []), "non-empty list"),
        (lambda: bucketized_column("x", [1]), "needs a numeric_column"),
        (lambda: categorical_column_with_vocabulary_list("c", []), "non-empty list"),
        (lambda: categorical_column_with_vocabulary_list("c", "abc"), "non-empty list"),
        (lambda: categorical_column_with_vocabulary_list("c", ["a", "a"]), "duplicates"),
        (lambda: categorical_column_with_vocabulary_list("c", ["a", 1]), "only strings"),
        (
            lambda: categorical_column_with_vocabulary_list(
                "c", ["a"], num_oov_buckets=2, default_value=0
            ),
            "not both",
        ),
        (lambda: categorical_column_with_vocabulary_list("c", ["a"], default_value=5), r"\[0, 1\)"),
        (lambda: categorical_column_with_vocabulary_list("c", ["a"], num_oov_buckets=-1), ">= 0"),
        (lambda: categorical_column_with_vocabulary_file("c", "/no/such/file"), "cannot read"),
        (lambda: categorical_column_with_identity("i", 0), "num_buckets=0"),
        (lambda: categorical_column_with_identity("i", 3, default_value=3), r"\[0, 3\)"),
        (lambda: categorical_column_with_hash_bucket("h", 0), "hash_bucket_size=0"),
        (lambda: categorical_column_with_hash_bucket("h", 2, dtype="float32"), "dtype="),
        (lambda: crossed_column(["a"], 10), "at least two"),
        (lambda: crossed_column(["a", numeric_column("b")], 10), "NumericColumn"),
        (lambda: crossed_column(["a", "b"], 0), "hash_bucket_size=0"),
        (lambda: indicator_column("c"), "not a raw key"),
        (lambda: indicator_column(numeric_column("n")), "NumericColumn 'n'"),
        (
            lambda: embedding_column(categorical_column_with_hash_bucket("h", 3), 0),
            "dimension=0",
        ),
        (
            lambda: embedding_column(categorical_column_with_hash_bucket("h", 3), 2, "men"),
            "Did you mean 'mean'",
        ),
        (
            lambda: weighted_categorical_column(numeric_column("n"), "w"),
            "categorical column",
        ),
    ],
)
def test_misdeclared_columns_say_what_and_how_to_fix(make, pattern):
    with pytest.raises(FeatureColumnError, match=pattern):
        make()


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        categorical_column_with_identity("i", -1)
