"""input_fn over every data kind: batching, epochs, shuffling, streaming, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from trainrun.exceptions import FeatureColumnError, InputError
from trainrun.feature_columns import (
    FeatureTransform,
    categorical_column_with_vocabulary_list,
    indicator_column,
    numeric_column,
)
from trainrun.feature_columns import (
    encoded_column as value_of,
)
from trainrun.inputs import Batch, input_fn

N = 23


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": np.arange(N, dtype=float),
            "code": rng.choice(["007", "010", "123"], N),
            "w": rng.uniform(0.5, 2.0, N),
            "y": np.arange(N) % 2,
        }
    )


@pytest.fixture
def transform():
    code = categorical_column_with_vocabulary_list("code", ["007", "010", "123"])
    return FeatureTransform([numeric_column("x"), indicator_column(code)])


def collect(fn, transform, **kw):
    batches = list(fn.batches(transform, **kw))
    xs = torch.cat([value_of(b.features, "x").ravel() for b in batches])
    return batches, xs


def sources(frame, tmp_path):
    frame.to_csv(tmp_path / "d.csv", index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "d.parquet")
    half = len(frame) // 2
    frame.iloc[:half].to_csv(tmp_path / "p1.csv", index=False)
    frame.iloc[half:].to_csv(tmp_path / "p2.csv", index=False)
    return {
        "frame": frame,
        "dict": {c: frame[c].to_numpy() for c in frame.columns},
        "arrow": pa.Table.from_pandas(frame, preserve_index=False),
        "csv": tmp_path / "d.csv",
        "parquet": str(tmp_path / "d.parquet"),
        "csv_list": [tmp_path / "p1.csv", tmp_path / "p2.csv"],
        "glob": str(tmp_path / "p*.csv"),
    }


@pytest.mark.parametrize("kind", ["frame", "dict", "arrow", "csv", "parquet", "csv_list", "glob"])
def test_every_data_kind_yields_the_same_rows(kind, frame, transform, tmp_path):
    data = sources(frame, tmp_path)[kind]
    fn = input_fn(data, response="y", batch_size=5, shuffle=False, chunk_size=4)
    batches, xs = collect(fn, transform, weight_key="w")
    assert all(isinstance(b, Batch) for b in batches)
    assert [len(b.labels) for b in batches] == [5, 5, 5, 5, 3]
    assert xs.tolist() == frame["x"].tolist()
    labels = torch.cat([b.labels for b in batches])
    assert labels.dtype == torch.float32 and labels.tolist() == frame["y"].tolist()
    weights = torch.cat([b.weights for b in batches])
    assert torch.allclose(weights, torch.tensor(frame["w"].to_numpy(), dtype=torch.float32))
    codes = torch.cat([value_of(b.features, "code") for b in batches])
    # '007' stays text even from CSV, where pandas would otherwise read the number 7
    expected = frame["code"].map({"007": 0, "010": 1, "123": 2}).tolist()
    assert codes.tolist() == expected
    assert fn.in_memory == (kind in ("frame", "dict", "arrow"))


@pytest.mark.parametrize("kind", ["frame", "parquet", "csv"])
def test_shuffle_is_a_permutation_and_reproducible_with_seed(kind, frame, transform, tmp_path):
    data = sources(frame, tmp_path)[kind]
    fn = input_fn(data, response="y", batch_size=4, epochs=3, seed=7, chunk_size=5)
    batches, xs = collect(fn, transform)
    epochs = xs.view(3, N)
    for e in range(3):
        assert sorted(epochs[e].tolist()) == frame["x"].tolist()
    assert not torch.equal(epochs[0], epochs[1])  # a new order each epoch
    _, again = collect(
        input_fn(data, response="y", batch_size=4, epochs=3, seed=7, chunk_size=5), transform
    )
    assert torch.equal(xs, again)
    _, other = collect(
        input_fn(data, response="y", batch_size=4, epochs=3, seed=8, chunk_size=5), transform
    )
    assert not torch.equal(xs, other)
    # labels travel with their rows
    labels = torch.cat([b.labels for b in batches])
    assert torch.equal(labels, (xs.long() % 2).float())


def test_streaming_shuffle_stays_within_its_buffer(frame, transform, tmp_path):
    big = pd.concat([frame] * 10, ignore_index=True)
    big["x"] = np.arange(len(big), dtype=float)
    big.to_csv(tmp_path / "big.csv", index=False)
    fn = input_fn(
        tmp_path / "big.csv", response="y", batch_size=10, chunk_size=10, shuffle_buffer=30, seed=1
    )
    _, xs = collect(fn, transform)
    assert sorted(xs.tolist()) == big["x"].tolist()
    first = xs[:30].tolist()
    assert max(first) < 40 and first != sorted(first)  # shuffled, but only within the buffer


def test_epochs_none_repeats_forever(frame, transform):
    fn = input_fn(frame, response="y", batch_size=10, epochs=None, seed=0)
    it = fn.batches(transform)
    sizes = [len(next(it).labels) for _ in range(10)]
    assert sizes == [10, 10, 3] * 3 + [10]


def test_in_memory_data_is_encoded_once_per_transform(frame, transform, monkeypatch):
    calls = []
    original = FeatureTransform.encode

    def counting(self, data):
        calls.append(len(next(iter(data.values()))))
        return original(self, data)

    monkeypatch.setattr(FeatureTransform, "encode", counting)
    fn = input_fn(frame, response="y", batch_size=4, epochs=2)
    list(fn.batches(transform))
    list(fn.batches(transform))
    assert calls == [N]
    label_calls = []

    def label_fn(values):
        label_calls.append(len(values))
        return torch.as_tensor(values.astype(np.int64))

    batches = list(fn.batches(transform, label_fn=label_fn))
    assert label_calls == [N] and batches[0].labels.dtype == torch.int64


def test_features_none_means_all_but_response(frame):
    fn = input_fn(frame, response="y")
    assert fn.features == ["x", "code", "w"] and fn.num_rows == N and fn.steps_per_epoch == 1
    assert input_fn(frame).response is None


def test_no_response_gives_no_labels(frame, transform):
    batch = next(input_fn(frame, batch_size=3).batches(transform))
    assert (
        batch.labels is None
        and batch.weights is None
        and value_of(batch.features, "x").shape == (3, 1)
    )


def test_multi_output_response(frame, transform):
    frame["y2"] = frame["y"] * 2.0
    batch = next(input_fn(frame, response=["y", "y2"], shuffle=False).batches(transform))
    assert batch.labels.shape == (N, 2) and batch.labels[1].tolist() == [1.0, 2.0]


def test_parquet_row_count_is_known_csv_is_not(frame, tmp_path):
    paths = sources(frame, tmp_path)
    assert input_fn(paths["parquet"]).num_rows == N
    assert input_fn(paths["csv"]).num_rows is None


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"batch_size": 0}, r"batch_size must be a positive integer.*batch_size=0"),
        ({"batch_size": -3}, "batch_size=-3"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"epochs": 0}, r"epochs must be a positive integer or None"),
        ({"chunk_size": 0}, "chunk_size=0"),
        ({"seed": "x"}, "seed='x'"),
        ({"response": "churn"}, r"response 'churn' is not a column"),
        ({"features": ["x", "z"]}, r"feature 'z'"),
    ],
)
def test_bad_arguments(frame, kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        input_fn(frame, **kwargs)


def test_bad_data(tmp_path):
    with pytest.raises(InputError, match="no rows"):
        input_fn(pd.DataFrame({"x": []}))
    with pytest.raises(InputError, match="no columns"):
        input_fn({})
    with pytest.raises(InputError, match="same number of rows"):
        input_fn({"x": [1, 2], "y": [1]})
    with pytest.raises(InputError, match="pandas DataFrame, a dict"):
        input_fn(42)
    with pytest.raises(InputError, match="does not exist"):
        input_fn(tmp_path / "missing.csv")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(InputError, match="file type"):
        input_fn(tmp_path / "data.json")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="CSV file is empty"):
        input_fn(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("x,y\n")
    fn = input_fn(tmp_path / "header.csv", response="y")
    with pytest.raises(InputError, match="hold no rows"):
        list(fn.batches(FeatureTransform([numeric_column("x")])))


def test_missing_feature_key_and_bad_labels(frame, transform):
    fn = input_fn(frame, features=["x", "w"], response="y")
    with pytest.raises(FeatureColumnError, match="'code'.*not in input_fn\\(features=...\\)"):
        next(fn.batches(transform))
    fn = input_fn(frame.drop(columns="code"), response="y")
    with pytest.raises(FeatureColumnError, match="needs the key 'code'.*not in the data"):
        next(fn.batches(transform))
    with pytest.raises(InputError, match="weight column 'weight'"):
        next(input_fn(frame, response="y").batches(transform, weight_key="weight"))
    frame["label"] = np.where(frame["y"] == 1, "yes", "no")
    fn = input_fn(frame, response="label")
    with pytest.raises(InputError, match="not numeric; an estimator maps text labels"):
        next(fn.batches(FeatureTransform([numeric_column("x")])))
    frame.loc[3, "y"] = np.nan
    with pytest.raises(InputError, match=r"missing values \(first at row 3\)"):
        next(input_fn(frame, response="y").batches(transform))


def test_unseen_category_in_a_later_chunk_does_not_crash(tmp_path, transform):
    df = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "code": ["007", "010", "999", None], "y": [0, 1, 0, 1]}
    )
    df.to_csv(tmp_path / "d.csv", index=False)
    _, xs = collect(
        input_fn(tmp_path / "d.csv", response="y", chunk_size=2, shuffle=False), transform
    )
    assert xs.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_non_finite_value_in_a_later_parquet_chunk_is_refused_naming_the_column(tmp_path):
    # row groups of 40 rows read 16 at a time: the bad values sit in the 7th chunk
    frame = pd.DataFrame({"x": np.arange(120, dtype=np.float32), "y": ["0", "1"] * 60})
    frame.loc[101, "x"] = np.inf
    frame.to_parquet(tmp_path / "x.parquet", row_group_size=40)
    fn = input_fn(tmp_path / "x.parquet", response="y", chunk_size=16, shuffle=False)
    transform = FeatureTransform([numeric_column("x")])
    with pytest.raises(InputError, match=r"Numeric column 'x' has 1 row with infinite values"):
        list(fn.batches(transform))
    # text labels that read as inf (a string column, not a float one) are refused as well
    frame.loc[101, "x"], frame.loc[93, "y"] = 0.0, "inf"
    frame.to_parquet(tmp_path / "y.parquet", row_group_size=40)
    fn = input_fn(tmp_path / "y.parquet", response="y", chunk_size=16, shuffle=False)
    with pytest.raises(InputError, match=r"The response 'y' has 1 row\(s\) with infinite values"):
        list(fn.batches(transform))
    frame.loc[93, "y"] = "1"
    frame.to_parquet(tmp_path / "ok.parquet", row_group_size=40)
    fn = input_fn(tmp_path / "ok.parquet", response="y", chunk_size=16, shuffle=False)
    batches = list(fn.batches(transform))
    assert torch.cat([b.labels for b in batches]).tolist() == [0.0, 1.0] * 60
