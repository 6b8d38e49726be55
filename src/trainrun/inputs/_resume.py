"""Where a training input stands, kept in checkpoints so that training resumes there.

An input's order is fixed by its seed (files: see ``_stream.py``; in memory: one
permutation per (seed, epoch)), so its position is one number: the batches training
has taken from it (counted over epochs; under torchrun each rank's batches of its own
shard, the same count on every rank). A checkpoint stores that count, the seed and a
fingerprint of the input (files, their sizes and times; in memory, the columns' dtypes,
shapes and a hash of 64 rows spread over them; the batching settings, the number of
processes); a ``train`` that
starts from that checkpoint with the same input continues at the next batch, with the
same seed. A different input, changed files, another number of processes, or an input
read to its end starts from its beginning, as before.

>>> StreamPosition.describe({"batches": 120, "seed": 7})
'batch 120 (seed 7)'
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["StreamPosition"]


def _sample(fn: Any) -> list[Any]:
    """Data in memory: each column's dtype, shape and a hash of 64 rows spread over it
    (reading every row would cost a pass over the data at each ``train``)."""
    columns = fn._columns
    n = int(fn.num_rows)
    rows = np.unique(np.linspace(0, n - 1, num=min(n, 64)).astype(np.int64))
    out: list[Any] = []
    for name in sorted(columns):
        values = columns[name]  # a numpy array or a pandas Series: not converted whole
        picked = np.asarray(values.iloc[rows] if hasattr(values, "iloc") else values[rows])
        if picked.dtype.kind in "OUS":
            blob = repr(picked.tolist()).encode()
        else:
            blob = np.ascontiguousarray(picked).tobytes()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        out.append([name, str(values.dtype), list(values.shape), digest])
    return out


def fingerprint(fn: Any, world: int) -> str:
    """What must not change for a saved position to still mean the same batches."""
    source = fn._file
    files: list[Any] = []
    if source is None:
        files = _sample(fn)
    else:
        for path in source.paths:
            st = os.stat(path)
            files.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    settings = {
        "files": files,
        "features": list(fn.features),
        "response": fn.response,
        "batch_size": fn.batch_size,
        "window": fn.window_rows,
        "shuffle": fn.shuffle,
        "seed": fn.seed,
        "epochs": fn.epochs,
        "world": world,
    }
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _batches_per_epoch(fn: Any, world: int) -> int:
    """Training steps in one epoch of ``fn`` (under ``world`` processes: the fewest of any
    rank's shard, where every rank stops)."""
    from trainrun.inputs._stream import count_rows

    if fn.in_memory:  # global batches, split over the ranks: the same count on each
        return -(-int(fn.num_rows) // fn.batch_size)
    if world == 1:
        sources, size = [fn._file], fn.batch_size
    else:
        from trainrun.inputs._sharding import _ShardedFiles

        sources = [_ShardedFiles(fn._file, r, world) for r in range(world)]
        size = max(1, fn.batch_size // world)
    counts = []
    for source in sources:
        rows = source.num_rows
        rows = rows if rows is not None else count_rows(source, fn.features[:1])
        counts.append(-(-rows // size))
    return min(counts)


def _left(fn: Any, saved: Mapping[str, Any], world: int) -> bool:
    """Whether the saved position has batches after it (an input read to its end starts
    again from its beginning, as a new ``train`` over it always did)."""
    if fn.epochs is None:
        return True
    return int(saved.get("batches", 0)) < fn.epochs * _batches_per_epoch(fn, world)


class StreamPosition:
    """A training input's position over one ``train`` call.

    ``seed`` and ``start`` are what the call reads with; :meth:`at` is what a checkpoint
    at a global step stores (each step takes one batch).
    """

    def __init__(
        self,
        fn: Any,
        saved: Mapping[str, Any] | None,
        seed: int | None,
        start_step: int,
        data_parallel: bool = False,
    ) -> None:
        world = 1
        if data_parallel:
            from trainrun.training import distributed

            world = distributed.world_size()
        self.fingerprint = fingerprint(fn, world)
        self.start_step = start_step
        self.resumed = False
        self.start = 0
        if fn.seed is not None:
            seed = fn.seed
        if saved and saved.get("fingerprint") == self.fingerprint and _left(fn, saved, world):
            self.seed, self.start, self.resumed = int(saved["seed"]), int(saved["batches"]), True
        else:
            if seed is None:
                seed = secrets.randbits(62)
                if data_parallel:
                    from trainrun.training import distributed

                    seed = distributed.broadcast_int(seed)  # rank 0's, for every rank
            self.seed = int(seed)

    def at(self, step: int) -> dict[str, Any]:
        """What a checkpoint at global step ``step`` stores."""
        return {
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "batches": self.start + max(0, step - self.start_step),
        }

    @staticmethod
    def describe(saved: Mapping[str, Any]) -> str:
        return f"batch {saved.get('batches')} (seed {saved.get('seed')})"
