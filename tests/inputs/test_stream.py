"""Streamed file inputs: fixed places for every batch (resume), and memory flat in the rows read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from trainrun.exceptions import InputError
from trainrun.feature_columns import FeatureTransform, numeric_column
from trainrun.feature_columns import encoded_column as value_of
from trainrun.inputs import input_fn
from trainrun.inputs._sharding import _sharded_copy


@pytest.fixture
def transform():
    return FeatureTransform([numeric_column("x")])


def write_folder(folder, kind: str, sizes=(37, 25, 41), row_group: int = 9) -> pd.DataFrame:
    folder.mkdir()
    frames, start = [], 0
    for i, n in enumerate(sizes):
        df = pd.DataFrame({"x": np.arange(start, start + n, dtype=float), "y": np.arange(n) % 2})
        if kind == "parquet":
            df.to_parquet(folder / f"part-{i}.parquet", row_group_size=row_group)
        else:
            df.to_csv(folder / f"part-{i}.csv", index=False)
        frames.append(df)
        start += n
    return pd.concat(frames, ignore_index=True)


def xs_of(batches) -> list[list[float]]:
    return [value_of(b.features, "x").ravel().tolist() for b in batches]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_stream_started_at_batch_k_yields_what_a_full_read_yields_from_k(
    tmp_path, transform, kind, shuffle
):
    df = write_folder(tmp_path / "data", kind)
    settings = dict(response="y", batch_size=4, epochs=3, shuffle=shuffle, seed=11)
    settings.update(chunk_size=5, shuffle_buffer=10)  # windows of 12 rows: 3 batches each
    whole = xs_of(input_fn(tmp_path / "data", **settings).batches(transform))
    per_epoch = -(-len(df) // 4)
    assert len(whole) == 3 * per_epoch
    epochs = [
        sorted(x for b in whole[e * per_epoch : (e + 1) * per_epoch] for x in b) for e in range(3)
    ]
    assert all(e == df["x"].tolist() for e in epochs)  # every row once per epoch
    # starts inside a window, at a window's edge, in a later epoch, at its last batch
    for k in (1, 3, 5, per_epoch - 1, per_epoch, per_epoch + 7, 3 * per_epoch - 1):
        fresh = input_fn(tmp_path / "data", **settings)  # a new process would make a new one
        assert xs_of(fresh.batches(transform, start=k)) == whole[k:], k
    assert (
        xs_of(input_fn(tmp_path / "data", **settings).batches(transform, start=3 * per_epoch)) == []
    )


def test_a_shuffled_stream_mixes_row_groups_of_several_files(tmp_path, transform):
    write_folder(tmp_path / "data", "parquet", sizes=(40, 40, 40), row_group=10)
    fn = input_fn(tmp_path / "data", response="y", batch_size=5, seed=2, shuffle_buffer=20)
    first = [x for b in xs_of(fn.batches(transform))[:4] for x in b]  # the first window
    assert len({int(x) // 40 for x in first}) > 1 or len({int(x) // 10 for x in first}) > 1
    assert first != sorted(first)


def test_an_unseeded_stream_draws_a_new_order_per_reading(tmp_path, transform):
    write_folder(tmp_path / "data", "parquet", sizes=(60, 60), row_group=10)
    fn = input_fn(tmp_path / "data", response="y", batch_size=8)
    assert xs_of(fn.batches(transform)) != xs_of(fn.batches(transform))


@pytest.mark.parametrize("shuffle", [True, False])
def test_data_in_memory_started_at_batch_k_yields_what_a_full_read_yields_from_k(
    transform, shuffle
):
    df = pd.DataFrame({"x": np.arange(103, dtype=float), "y": np.arange(103) % 2})
    settings = dict(response="y", batch_size=8, epochs=3, shuffle=shuffle, seed=11)
    whole = xs_of(input_fn(df, **settings).batches(transform))
    per_epoch = 13
    assert len(whole) == 3 * per_epoch
    for k in (1, 5, per_epoch - 1, per_epoch, per_epoch + 7, 3 * per_epoch - 1):
        assert xs_of(input_fn(df, **settings).batches(transform, start=k)) == whole[k:], k
    assert xs_of(input_fn(df, **settings).batches(transform, start=3 * per_epoch)) == []


@pytest.mark.parametrize("start", [-1, 1.5, True])
def test_a_start_that_is_not_a_batch_count_is_refused(transform, start):
    fn = input_fn(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), response="y")
    with pytest.raises(InputError, match="start must be a batch count"):
        list(fn.batches(transform, start=start))


@pytest.mark.parametrize("world", [2, 3])
def test_each_rank_shard_resumes_at_its_own_batch_k(tmp_path, transform, world):
    write_folder(tmp_path / "data", "parquet", sizes=(37, 25, 41), row_group=9)
    fn = input_fn(tmp_path / "data", response="y", batch_size=6, epochs=2, seed=4, chunk_size=7)
    for rank in range(world):
        shard = _sharded_copy(fn, rank, world)
        whole = xs_of(shard.batches(transform))
        assert whole
        for k in (1, len(whole) // 2, len(whole) - 1):
            again = _sharded_copy(fn, rank, world)
            assert xs_of(again.batches(transform, start=k)) == whole[k:]


def test_reading_parquet_keeps_arrow_memory_flat_in_the_rows_read(tmp_path, transform):
    # 40 row groups of 25,000 random floats: pyarrow's whole-file reader kept every row
    # group's raw bytes it had read (the memory grew with the rows, ~the file's size)
    rng = np.random.default_rng(0)
    path = tmp_path / "big.parquet"
    writer = None
    for _ in range(40):
        table = pa.table({"x": rng.normal(size=25_000), "y": rng.integers(0, 2, 25_000)})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=25_000)
    assert writer is not None
    writer.close()
    size = path.stat().st_size
    fn = input_fn(path, response="y", batch_size=1000, shuffle=False, chunk_size=5000)
    held, rows = [], 0
    for batch in fn.batches(transform):
        rows += len(batch.labels)
        held.append(pa.total_allocated_bytes())
    assert rows == 1_000_000
    # one row group is ~0.4 MB decoded; the file is ~10 MB
    assert max(held) < size / 4, (max(held), size)
    assert max(held[len(held) // 2 :]) <= 1.5 * max(held[: len(held) // 2]) + 1_000_000


def test_the_window_is_a_multiple_of_the_batch_size(tmp_path):
    write_folder(tmp_path / "data", "parquet")
    assert input_fn(tmp_path / "data", batch_size=7, shuffle_buffer=30).window_rows == 35
    assert input_fn(tmp_path / "data", batch_size=7, chunk_size=30, shuffle=False).window_rows == 28
    assert (
        input_fn(tmp_path / "data", batch_size=64, chunk_size=30, shuffle=False).window_rows == 64
    )
    labels = torch.cat(
        [
            b.labels
            for b in input_fn(tmp_path / "data", response="y", batch_size=7).batches(
                FeatureTransform([numeric_column("x")])
            )
        ]
    )
    assert len(labels) == 103


def test_small_row_groups_are_encoded_chunk_size_rows_at_a_time_in_the_promised_order(
    tmp_path, transform, monkeypatch
):
    from trainrun.inputs._stream import unit_order, window_permutation

    df = write_folder(tmp_path / "data", "parquet", row_group=3)  # 35 row groups of 1-3 rows
    settings = dict(response="y", batch_size=4, epochs=2, seed=5, chunk_size=16)
    fn = input_fn(tmp_path / "data", shuffle_buffer=24, **settings)
    encoded: list[int] = []
    encode = FeatureTransform.encode

    def counting(self, data):
        encoded.append(len(next(iter(data.values()))))
        return encode(self, data)

    monkeypatch.setattr(FeatureTransform, "encode", counting)
    got = xs_of(fn.batches(transform))
    # the order the module promises, whatever the chunks: the epoch's row groups in
    # unit_order, cut into windows of 24 rows, each permuted by window_permutation
    paths = fn._file.paths
    rows_of = {u: pq.ParquetFile(paths[u[0]]).read_row_group(u[1]).column("x").to_pylist()
               for u in fn._file.units()}  # fmt: skip
    expected = []
    for epoch in range(2):
        order = unit_order(len(rows_of), True, 5, epoch)
        rows = [x for u in order for x in rows_of[fn._file.units()[u]]]
        for j, start in enumerate(range(0, len(rows), 24)):
            window = rows[start : start + 24]
            shuffled = [window[p] for p in window_permutation(5, epoch, j, len(window)).tolist()]
            expected += [shuffled[b : b + 4] for b in range(0, len(shuffled), 4)]
    assert got == expected
    assert sorted(x for b in got[: len(got) // 2] for x in b) == df["x"].tolist()
    # joined up to chunk_size rows: 2 x 35 encodings of one row group each before
    assert max(encoded) <= 16 and len(encoded) <= 2 * 9, encoded


def test_chunks_that_cannot_be_joined_exactly_pass_as_they_are():
    from trainrun.inputs._stream import coalesced

    floats, ints = {"x": np.zeros(3)}, {"x": np.arange(3)}
    lists = {"x": pd.Series([[1], [2, 3], []], dtype=object)}
    cats = [{"x": pd.Series(pd.Categorical(list(v)))} for v in ("ab", "ac")]
    assert [c["x"].dtype for c in coalesced(iter([floats, ints, floats]), 10)] == [
        np.float64, np.int64, np.float64
    ]  # fmt: skip
    assert len(list(coalesced(iter([lists, lists]), 10))) == 2  # lists are padded per chunk
    assert len(list(coalesced(iter(cats), 10))) == 2  # other categories
    joined = list(coalesced(iter([cats[0], cats[0], ints, ints]), 10))
    assert [len(c["x"]) for c in joined] == [4, 6]
    assert joined[0]["x"].tolist() == ["a", "b", "a", "b"] and joined[1]["x"].tolist() == [
        0, 1, 2, 0, 1, 2
    ]  # fmt: skip
