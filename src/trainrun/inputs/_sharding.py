"""Each rank's share of an input, when several processes train or evaluate together.

Training, data in memory (DataFrame, arrays, Arrow): every rank draws the same
permutation per epoch (an unseeded input takes rank 0's seed) and so sees the same
*global* batches as one process would; rank ``r`` keeps the ``r``-th of ``world``
near-equal contiguous parts of each. No communication is needed to stay in step, and
N steps on 2 ranks are N steps of one process on the same batches (a final global
batch with fewer rows than ranks is skipped).

Training, files: Parquet row groups (all files' row groups in order) or, for CSV,
whole files are dealt round-robin to the ranks, and each rank streams only its own,
in batches of ``batch_size // world`` rows. Shards may hold different numbers of
batches, so before each step the ranks agree (one tiny all-reduce) on whether all
still have one; all stop at the first that runs out.

Evaluation: in memory, rank ``r`` evaluates the global batches ``r, r + world, ...``
whole, so that the gathered results are exactly one process's; files are dealt as for
training, in full batches. Every batch carries its global index for the gather.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from trainrun.exceptions import InputError
from trainrun.inputs._input_fn import Batch, InputFn, _permute
from trainrun.inputs._sources import FileSource, Unit

__all__ = ["EvalShard", "TrainShard", "make_shard", "shard_units"]


def make_shard(
    kind: str,
    fn: Any,
    transform: Any,
    label_fn: Any,
    weight_key: Any,
    steps: int | None = None,
    start: int = 0,
) -> TrainShard | EvalShard:
    """This rank's share of ``fn`` for ``kind`` "train" or "eval" (``steps``: batches to
    evaluate; ``start``: a training input's batch to resume at, on every rank)."""
    if not isinstance(fn, InputFn):
        raise InputError(
            "Training in several processes needs a trainrun.input_fn(...) to split between "
            f"them. Received: an input of type {type(fn).__name__}"
        )
    if kind == "train":
        return TrainShard(fn, transform, label_fn, weight_key, start)
    return EvalShard(fn, transform, label_fn, weight_key, steps)


def _dist() -> Any:
    from trainrun.training import distributed

    return distributed


class TrainShard:
    """Iterator over this rank's part of each global training batch.

    ``global_rows`` is the size of the global batch the last yielded part belongs to
    (the data-parallel step scales its loss by it).
    """

    def __init__(
        self, fn: InputFn, transform: Any, label_fn: Any, weight_key: Any, start: int = 0
    ) -> None:
        dist = _dist()
        self.rank, self.world = dist.rank(), dist.world_size()
        self.global_rows = 0
        self._fn, self._args = fn, (transform, label_fn, weight_key)
        # Every rank draws the same permutations (in memory: of the global batches; files:
        # of its units and windows, so that a checkpoint's one seed resumes every rank):
        # an unseeded input takes rank 0's.
        seed = fn.seed if fn.seed is not None else dist.broadcast_int(fn._base_seed())
        if fn.in_memory:
            self._it = self._memory(seed, start)
        else:
            self._it = self._stream(seed, start)

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        return next(self._it)

    def _memory(self, seed: int, start: int = 0) -> Iterator[Batch]:
        fn, (transform, label_fn, weight_key) = self._fn, self._args
        data = fn._encoded(transform, label_fn, weight_key)
        n, size, world = int(fn.num_rows or 0), int(fn.batch_size or 1), self.world
        parts = _my_parts(n, size, self.rank, world)
        # resumed: global batch ``start`` is batch ``start % len(parts)`` of its epoch
        first, skip = divmod(start, max(1, len(parts)))
        for epoch in fn._epochs():
            if epoch < first:
                continue
            order = (
                torch.randperm(n, generator=fn._generator(seed, epoch)).numpy()
                if fn.shuffle
                else np.arange(n)
            )
            local = np.concatenate([order[lo:hi] for lo, hi, _ in parts]) if parts else order[:0]
            tensors = _permute(data, torch.from_numpy(np.ascontiguousarray(local)))
            offset = 0
            for i, (lo, hi, rows) in enumerate(parts):
                if i >= skip:
                    self.global_rows = rows
                    yield fn._emit(tensors, offset, offset + hi - lo)
                offset += hi - lo
            skip = 0

    def _stream(self, seed: int, start: int) -> Iterator[Batch]:
        dist = _dist()
        fn = _sharded_copy(self._fn, self.rank, self.world)
        fn.batch_size = max(1, self._fn.batch_size // self.world)
        fn.seed = seed
        # all ranks step together, so the n-th step is every rank's n-th batch of its shard
        batches = fn.batches(*self._args, start=start)
        while True:
            batch = next(batches, None)
            rows = 0 if batch is None else int(next(iter(batch.features.values())).shape[0])
            all_have, total = dist.agree(batch is not None, rows)
            if not all_have or batch is None:
                return
            self.global_rows = total
            yield batch


class EvalShard:
    """Iterator over this rank's evaluation batches; ``indices`` lists their global indices."""

    def __init__(
        self, fn: InputFn, transform: Any, label_fn: Any, weight_key: Any, steps: int | None
    ) -> None:
        dist = _dist()
        self.rank, self.world = dist.rank(), dist.world_size()
        self.indices: list[int] = []
        self._steps = steps
        self._source: Iterator[tuple[int, Batch]]
        if fn.in_memory:
            self._source = enumerate(fn.batches(transform, label_fn, weight_key))
        else:
            sharded = _sharded_copy(fn, self.rank, self.world)
            local = sharded.batches(transform, label_fn, weight_key)
            self._source = ((k * self.world + self.rank, b) for k, b in enumerate(local))
        self._memory = fn.in_memory

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        for i, batch in self._source:
            if self._steps is not None and i >= self._steps:
                raise StopIteration
            if self._memory and i % self.world != self.rank:
                continue
            self.indices.append(i)
            return batch
        raise StopIteration


def _my_parts(n: int, size: int, rank: int, world: int) -> list[tuple[int, int, int]]:
    """(start, stop, global rows) of this rank's part of each global batch of an epoch."""
    out = []
    for start in range(0, n, size):
        rows = min(start + size, n) - start
        if rows < world:
            continue  # a part per rank needs a row per rank
        out.append((start + rows * rank // world, start + rows * (rank + 1) // world, rows))
    return out


# ---------------------------------------------------------------- files


def shard_units(source: FileSource, rank: int, world: int) -> list[tuple[int, int | None]]:
    """This rank's (file index, row group or None for the whole file), dealt round-robin.

    Parquet files are split by row group; CSV files whole (with fewer CSV files than
    ranks, every rank reads them all and keeps every ``world``-th chunk: unit (-1, None)).
    """
    units: list[tuple[int, int | None]] = []
    if all(kind == "parquet" for kind in source.kinds):
        import pyarrow.parquet as pq

        for i, path in enumerate(source.paths):
            units += [(i, g) for g in range(pq.ParquetFile(path).num_row_groups)]
        if len(units) < world:
            raise InputError(
                f"The input holds {len(units)} Parquet row group(s) for {world} processes: "
                "each process needs at least one. Write more or smaller row groups "
                "(pyarrow.parquet.write_table(table, path, row_group_size=...)) or more files. "
                f"Received: {[str(p) for p in source.paths][:5]}"
            )
    elif len(source.paths) >= world:
        units = [(i, None) for i in range(len(source.paths))]
    else:
        return [(-1, None)]
    return units[rank::world]


class _ShardedFiles:
    """A :class:`FileSource` seen through one rank's units (the same reading interface)."""

    def __init__(self, source: FileSource, rank: int, world: int) -> None:
        self.source, self.rank, self.world = source, rank, world
        self._units = shard_units(source, rank, world)
        self.paths = [f"{source.paths[i] if i >= 0 else 'chunks'}#{g}" for i, g in self._units]
        self.columns = source.columns
        self.kinds = source.kinds
        self.chunk_size = source.chunk_size

    def units(self) -> list[Unit]:
        return self._units

    def unit_rows(self, unit: Unit) -> int | None:
        return None if unit[0] < 0 else self.source.unit_rows(unit)

    @property
    def num_rows(self) -> int | None:
        rows = [self.unit_rows(u) for u in self._units]
        known = [n for n in rows if n is not None]
        return sum(known) if len(known) == len(rows) else None

    def read(
        self, unit: Unit, needed: Sequence[str], string_keys: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        src = self.source
        if unit[0] >= 0:
            yield from src.read(unit, needed, string_keys)
            return
        # fewer CSV files than ranks: every world-th chunk of all of them
        every = src.chunks(range(len(src.paths)), needed, string_keys)
        for k, cols in enumerate(every):
            if k % self.world == self.rank:
                yield cols

    def chunks(
        self, order: Sequence[int], needed: Sequence[str], string_keys: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        for u in order:
            yield from self.read(self._units[u], needed, string_keys)


def _sharded_copy(fn: InputFn, rank: int, world: int) -> InputFn:
    """A shallow copy of a streamed InputFn that reads only this rank's units."""
    out = copy.copy(fn)
    assert fn._file is not None
    files = _ShardedFiles(fn._file, rank, world)
    out._file = files  # type: ignore[assignment]
    out.num_rows = files.num_rows
    return out
