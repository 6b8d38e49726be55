"""FeatureTransform.encode: every column kind checked by hand on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns import (
    FeatureTransform,
    bucketized_column,
    categorical_column_with_hash_bucket,
    categorical_column_with_identity,
    categorical_column_with_vocabulary_list,
    crossed_column,
    embedding_column,
    indicator_column,
    numeric_column,
    weighted_categorical_column,
)
from trainrun.feature_columns import (
    encoded_column as value_of,
)


def encode(columns, data):
    return FeatureTransform(columns).encode(data)


def test_numeric_values_defaults_and_normalizers():
    out = encode(
        [
            numeric_column("a", default_value=-1.0),
            numeric_column("b", normalizer_fn=("zscore", 10.0, 5.0)),
            numeric_column("c", normalizer_fn=("minmax", 0.0, 4.0)),
            numeric_column("d", normalizer_fn=lambda x: x + 1),
        ],
        pd.DataFrame({"a": [1.5, np.nan, 3.0], "b": [10, 15, 0], "c": [0, 2, 4], "d": [1, 2, 3]}),
    )
    assert value_of(out, "a").dtype == torch.float32 and value_of(out, "a").shape == (3, 1)
    assert value_of(out, "a").ravel().tolist() == [1.5, -1.0, 3.0]
    assert value_of(out, "b").ravel().tolist() == [0.0, 1.0, -2.0]
    assert value_of(out, "c").ravel().tolist() == [0.0, 0.5, 1.0]
    assert value_of(out, "d").ravel().tolist() == [2.0, 3.0, 4.0]


def test_numeric_text_that_parses_as_numbers_is_accepted():
    col = numeric_column("x", default_value=0)
    out = encode([col], {"x": np.array(["1.5", "2", None], dtype=object)})
    assert value_of(out, "x").ravel().tolist() == [1.5, 2.0, 0.0]
    # None is a missing value: here it has no default, so the error says how to fix it
    with pytest.raises(FeatureColumnError, match="default_value"):
        encode([numeric_column("x")], {"x": [1.0, None]})


def test_multi_dimensional_numeric_from_2d_arrays_and_list_columns():
    col = numeric_column("v", shape=(2,), default_value=[0, 9])
    arr = value_of(encode([col], {"v": np.array([[1.0, 2.0], [3.0, np.nan]])}), "v")
    assert arr.tolist() == [[1.0, 2.0], [3.0, 9.0]]
    frame = pd.DataFrame({"v": [[1, 2], [3, 4]]})
    assert value_of(encode([col], frame), "v").tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_bucketized_ids_by_hand():
    b = bucketized_column(numeric_column("x"), [0.0, 10.0])
    ids = value_of(encode([b], {"x": [-5.0, 0.0, 9.9, 10.0, 50.0]}), "x_bucketized")
    assert ids.dtype == torch.int64 and ids.tolist() == [0, 1, 1, 2, 2]
    b2 = bucketized_column(numeric_column("v", shape=2), [0.0])
    ids2 = value_of(encode([b2], {"v": np.array([[-1.0, 1.0], [1.0, -1.0]])}), "v_bucketized")
    # the second value's buckets come after the first's: ids 2, 3
    assert ids2.tolist() == [[0, 3], [1, 2]]


def test_vocabulary_list_with_default_and_missing():
    v = categorical_column_with_vocabulary_list("c", ["a", "b", "c"])
    ids = value_of(encode([v], {"c": np.array(["c", "a", "zzz", None, "b"], dtype=object)}), "c")
    assert ids.tolist() == [2, 0, -1, -1, 1]
    d = categorical_column_with_vocabulary_list("c", ["a", "b"], default_value=1)
    assert value_of(encode([d], {"c": ["a", "unknown"]}), "c").tolist() == [0, 1]


def test_vocabulary_oov_buckets_are_stable_and_in_range():
    v = categorical_column_with_vocabulary_list("c", ["a", "b"], num_oov_buckets=4)
    values = ["a", "x", "y", "x", "b", "long unseen value"]
    ids = value_of(encode([v], {"c": values}), "c").tolist()
    assert ids[0] == 0 and ids[4] == 1
    assert all(2 <= i < 6 for i in (ids[1], ids[2], ids[3], ids[5]))
    assert ids[1] == ids[3]  # the same unseen value always goes to the same bucket


def test_integer_vocabulary_reads_ints_floats_and_text():
    v = categorical_column_with_vocabulary_list("k", [10, 20, 30])
    assert value_of(encode([v], {"k": [30, 10, 99]}), "k").tolist() == [2, 0, -1]
    assert value_of(encode([v], {"k": [20.0, np.nan]}), "k").tolist() == [1, -1]
    assert value_of(encode([v], {"k": np.array(["20", "x"], dtype=object)}), "k").tolist() == [
        1,
        -1,
    ]


def test_string_vocabulary_reads_numbers_as_their_text():
    v = categorical_column_with_vocabulary_list("k", ["1", "2"])
    assert value_of(encode([v], {"k": [2, 1, 3]}), "k").tolist() == [1, 0, -1]
    assert value_of(encode([v], {"k": [2.0, np.nan]}), "k").tolist() == [1, -1]


def test_pandas_string_and_category_dtypes():
    v = categorical_column_with_vocabulary_list("c", ["a", "b"])
    s = pd.Series(["b", None, "a"], dtype="string")
    assert value_of(encode([v], {"c": s}), "c").tolist() == [1, -1, 0]
    cat = pd.Series(["b", "a", "b"], dtype="category")
    assert value_of(encode([v], pd.DataFrame({"c": cat})), "c").tolist() == [1, 0, 1]


def test_identity_ids_default_and_errors():
    col = categorical_column_with_identity("i", 4)
    assert value_of(encode([col], {"i": [0, 3, 2]}), "i").tolist() == [0, 3, 2]
    assert value_of(encode([col], {"i": [1.0, np.nan]}), "i").tolist() == [1, -1]
    with_default = categorical_column_with_identity("i", 4, default_value=0)
    # -1 is padding (no id), as in tf; other out-of-range values take default_value.
    assert value_of(encode([with_default], {"i": [5, -1, 2]}), "i").tolist() == [0, -1, 2]
    with pytest.raises(FeatureColumnError, match=r"outside \[0, 4\).*default_value.*i\[..\]=7"):
        encode([col], {"i": [1, 7]})
    with pytest.raises(FeatureColumnError, match="integer values"):
        encode([col], {"i": [1.5]})


def test_hash_buckets_by_hand_and_ints_hash_like_their_text():
    col = categorical_column_with_hash_bucket("h", 1000)
    ids = value_of(encode([col], {"h": ["apple", "pear", "apple", None]}), "h").tolist()
    assert ids[0] == ids[2] and ids[3] == -1 and all(0 <= i < 1000 for i in ids[:3])
    as_text = value_of(encode([col], {"h": ["7", "12"]}), "h").tolist()
    as_int = encode([categorical_column_with_hash_bucket("h", 1000, "int64")], {"h": [7, 12]})
    as_float = value_of(
        encode([col], {"h": [7.0, 12.0]}), "h"
    ).tolist()  # a CSV id column with a gap
    assert as_text == value_of(as_int, "h").tolist() == as_float


def test_hash_spreads_values_over_buckets():
    col = categorical_column_with_hash_bucket("h", 10)
    ids = value_of(encode([col], {"h": [f"user{i}" for i in range(10_000)]}), "h").numpy()
    counts = np.bincount(ids, minlength=10)
    assert counts.min() > 850 and counts.max() < 1150


HASH_SCRIPT = """
import json
from trainrun.feature_columns import (FeatureTransform, categorical_column_with_hash_bucket,
    categorical_column_with_vocabulary_list, crossed_column, encoded_column)
k = categorical_column_with_vocabulary_list("k", ["a"], num_oov_buckets=5)
cols = [categorical_column_with_hash_bucket("h", 97), k, crossed_column(["h", k], 1009)]
enc = FeatureTransform(cols).encode({"h": ["alpha", "βeta", "", "7"], "k": ["a", "b", "c", "a"]})
print(json.dumps({name: encoded_column(enc, name).tolist() for name in ("h", "k", "h_X_k")}))
"""


def test_hash_buckets_are_the_same_in_every_process():
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HASH_SCRIPT],
            stdout=subprocess.PIPE,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        for seed in ("0", "1")
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    runs = [json.loads(out) for out in outputs]
    assert runs[0] == runs[1]
    # pinned: a saved model's hashed buckets must mean the same in every later version
    assert runs[0] == PINNED_BUCKETS


PINNED_BUCKETS = {"h": [80, 48, 84, 22], "k": [0, 3, 2, 0], "h_X_k": [993, 467, 626, 532]}


def test_crossed_column_single_and_multi_valent():
    v = categorical_column_with_vocabulary_list("k", ["a", "b"])
    x = crossed_column(["c", v], 10_000)
    enc = value_of(
        encode([x], {"c": ["x", "x", "y", None], "k": ["a", "b", "a", "a"]}), "c_X_k"
    ).tolist()
    assert enc[3] == -1 and len(set(enc[:3])) == 3 and all(0 <= i < 10_000 for i in enc[:3])
    # order matters as in tf (a cross of (c, k) is not the cross of (k, c))
    again = value_of(encode([x], {"c": ["x"], "k": ["a"]}), "c_X_k").tolist()
    assert again == [enc[0]]
    multi = value_of(
        encode(
            [crossed_column(["c", "d"], 10_000)],
            {"c": pd.Series([["x", "y"], ["x"]]), "d": ["p", "p"]},
        ),
        "c_X_d",
    )
    assert multi.shape == (2, 2)
    assert multi[0, 0] == multi[1, 0] == enc_pair("x", "p")
    assert multi[1, 1] == -1  # row 1 has one value of c: one cross, then padding


def enc_pair(c, d):
    return value_of(
        encode([crossed_column(["c", "d"], 10_000)], {"c": [c], "d": [d]}), "c_X_d"
    ).item()


def test_crossed_hash_key_changes_buckets():
    data = {"a": [f"v{i}" for i in range(50)], "b": ["w"] * 50}
    one = value_of(encode([crossed_column(["a", "b"], 1000)], data), "a_X_b")
    two = value_of(encode([crossed_column(["a", "b"], 1000, hash_key=42)], data), "a_X_b")
    assert not torch.equal(one, two)


def test_multi_valent_categorical_from_list_column():
    v = categorical_column_with_vocabulary_list("tags", ["a", "b", "c"])
    enc = value_of(
        encode([v], pd.DataFrame({"tags": [["a", "c"], [], ["b"], ["c", "zz", "a"]]})), "tags"
    )
    assert enc.tolist() == [[0, 2, -1], [-1, -1, -1], [1, -1, -1], [2, -1, 0]]
    arr = value_of(encode([v], {"tags": np.array([["a", "b"], ["c", None]], dtype=object)}), "tags")
    assert arr.tolist() == [[0, 1], [2, -1]]


def test_weighted_categorical_ids_and_weights():
    v = categorical_column_with_vocabulary_list("w", ["x", "y"])
    col = weighted_categorical_column(v, "f")
    enc = encode([col], pd.DataFrame({"w": [["x", "y"], ["y"]], "f": [[0.5, 2.0], [3.0]]}))
    assert value_of(enc, "w_weighted_by_f").tolist() == [[0, 1], [1, -1]]
    assert value_of(enc, "w_weighted_by_f/weights").tolist() == [[0.5, 2.0], [3.0, 0.0]]
    with pytest.raises(FeatureColumnError, match="without a weight"):
        encode([col], {"w": ["x", "y"], "f": [1.0, np.nan]})
    with pytest.raises(FeatureColumnError, match="line up"):
        encode([col], {"w": ["x", "y"], "f": np.ones((2, 2))})


def test_shared_categorical_is_encoded_once_and_duplicates_allowed():
    v = categorical_column_with_vocabulary_list("c", ["a", "b"])
    t = FeatureTransform([indicator_column(v), embedding_column(v, 2), indicator_column(v)])
    enc = t.encode({"c": ["a"]})
    # one packed block for the indicator, one entry the embedding reads
    assert len(enc) == 2 and value_of(enc, "c").tolist() == [0]
    assert t.required_keys == ("c",)


def test_config_round_trip_encodes_identically(tmp_path):
    vocab_file = tmp_path / "v.txt"
    vocab_file.write_text("a\nb\n")
    from trainrun.feature_columns import categorical_column_with_vocabulary_file

    cols = [
        numeric_column("n", normalizer_fn=("scale", 0.5)),
        indicator_column(
            categorical_column_with_vocabulary_file("c", vocab_file, num_oov_buckets=2)
        ),
        embedding_column(crossed_column(["c", "d"], 64), 3),
    ]
    t = FeatureTransform(cols)
    config = json.loads(json.dumps(t.to_config()))
    vocab_file.unlink()
    t2 = FeatureTransform.from_config(config)
    data = {"n": [2.0, 4.0], "c": ["b", "q"], "d": ["x", "y"]}
    a, b = t.encode(data), t2.encode(data)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("columns", "data", "pattern"),
    [
        ([numeric_column("tenure")], {"tenur": [1.0]}, r"Did you mean 'tenur'.*Available keys"),
        ([numeric_column("x")], {"x": ["1", "two", "3"]}, r"non-numeric.*'two'"),
        ([numeric_column("x")], {"x": [1.0, np.nan]}, r"missing values.*default_value=0.0"),
        ([numeric_column("x", shape=3)], {"x": np.ones((2, 2))}, r"shape=\(3,\).*2 per row"),
        (
            [numeric_column("x", shape=2)],
            pd.DataFrame({"x": [[1, 2], [1]]}),
            r"row 1 has 1",
        ),
        ([numeric_column("x")], {"x": []}, "empty"),
        ([numeric_column("x"), numeric_column("y")], {"x": [1.0], "y": [1.0, 2.0]}, "same number"),
        ([numeric_column("x")], {"x": 3.0}, "not a scalar"),
        ([numeric_column("x")], [1, 2], "mapping"),
    ],
)
def test_bad_data_names_the_column_and_the_fix(columns, data, pattern):
    with pytest.raises(FeatureColumnError, match=pattern):
        FeatureTransform(columns).encode(data)


def test_conflicting_columns_with_one_name_are_rejected():
    with pytest.raises(FeatureColumnError, match="share the name 'c'"):
        FeatureTransform(
            [
                indicator_column(categorical_column_with_vocabulary_list("c", ["a"])),
                embedding_column(categorical_column_with_hash_bucket("c", 5), 2),
            ]
        )
    with pytest.raises(FeatureColumnError, match="at least one"):
        FeatureTransform([])


def test_hash_of_a_value_does_not_depend_on_its_neighbours():
    from trainrun.feature_columns._hashing import hash_text

    long_value = "é" * 5000  # finished byte by byte, not one numpy pass per byte
    alone = hash_text(np.array([long_value, "a"], dtype=object))
    crowd = hash_text(
        np.array(["a"] * 10 + [long_value] + [f"v{i}" for i in range(50)], dtype=object)
    )
    assert alone[0] == crowd[10] and alone[1] == crowd[0]
    col = categorical_column_with_hash_bucket("h", 1000)
    ids = value_of(encode([col], {"h": [long_value, "a", long_value]}), "h").tolist()
    assert ids[0] == ids[2] == int(alone[0] % np.uint64(1000))
