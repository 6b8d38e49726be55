"""Each rank's share of a file input: Parquet row groups and CSV files dealt round-robin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainrun.exceptions import InputError
from trainrun.inputs import input_fn
from trainrun.inputs._sharding import _my_parts, _sharded_copy, shard_units
from trainrun.inputs._sources import FileSource


def write_parts(folder: Path, kind: str, sizes: list[int], row_group: int = 10) -> pd.DataFrame:
    folder.mkdir(exist_ok=True)
    start = 0
    frames = []
    for i, n in enumerate(sizes):
        df = pd.DataFrame({"id": np.arange(start, start + n), "x": np.arange(n) * 0.5})
        if kind == "parquet":
            df.to_parquet(folder / f"part-{i}.parquet", row_group_size=row_group)
        else:
            df.to_csv(folder / f"part-{i}.csv", index=False)
        frames.append(df)
        start += n
    return pd.concat(frames, ignore_index=True)


def ids_read(source: FileSource, rank: int, world: int) -> list[int]:
    fn = input_fn([str(p) for p in source.paths], shuffle=False, chunk_size=4)
    sharded = _sharded_copy(fn, rank, world)
    assert sharded._file is not None
    order = range(len(sharded._file.paths))
    return [int(v) for cols in sharded._file.chunks(order, ["id"], []) for v in cols["id"]]


@pytest.mark.parametrize(
    ("kind", "sizes", "world"),
    [
        ("parquet", [25, 7, 31], 2),
        ("parquet", [25, 7, 31], 3),
        ("csv", [5, 6, 7], 2),
        ("csv", [5, 6], 3),
    ],
)
def test_every_row_is_read_by_exactly_one_rank(tmp_path, kind, sizes, world):
    df = write_parts(tmp_path / "data", kind, sizes)
    source = FileSource(tmp_path / "data", 4, None)
    shares = [ids_read(source, r, world) for r in range(world)]
    assert all(shares), shares  # every rank has work
    assert sorted(i for share in shares for i in share) == df["id"].tolist()


def test_parquet_is_dealt_by_row_group_and_a_rank_knows_its_row_count(tmp_path):
    write_parts(tmp_path / "data", "parquet", [25, 7], row_group=10)  # groups 10,10,5 | 7
    source = FileSource(tmp_path / "data", 4, None)
    assert shard_units(source, 0, 2) == [(0, 0), (0, 2)]
    assert shard_units(source, 1, 2) == [(0, 1), (1, 0)]
    fn = input_fn(tmp_path / "data", shuffle=False)
    assert [_sharded_copy(fn, r, 2).num_rows for r in (0, 1)] == [15, 17]


def test_too_few_row_groups_for_the_ranks_is_refused_with_the_fix(tmp_path):
    write_parts(tmp_path / "data", "parquet", [8], row_group=10)
    source = FileSource(tmp_path / "data", 4, None)
    with pytest.raises(InputError, match="row_group_size"):
        shard_units(source, 0, 2)


def test_csv_files_go_whole_to_ranks_when_there_are_enough() -> None:
    class Files:
        kinds = ["csv"] * 5
        paths = [Path(f"{i}.csv") for i in range(5)]

    assert shard_units(Files(), 1, 2) == [(1, None), (3, None)]  # type: ignore[arg-type]


def test_global_batches_are_split_so_every_rank_has_rows() -> None:
    for n, size, world in [(100, 8, 2), (37, 10, 3), (5, 5, 4)]:
        parts = [_my_parts(n, size, r, world) for r in range(world)]
        assert len({len(p) for p in parts}) == 1  # the same number of steps everywhere
        for step in zip(*parts, strict=True):
            assert all(hi > lo for lo, hi, _ in step)
            assert sum(hi - lo for lo, hi, _ in step) == step[0][2]
