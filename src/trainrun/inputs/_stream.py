"""A streamed input's order: units, windows, and where batch ``b`` of an epoch comes from.

An epoch reads the file units (Parquet row groups, whole CSV files) in an order drawn
from ``(seed, epoch)`` (file order without shuffling), and cuts the rows it reads into
*windows* of exactly ``window`` rows, a multiple of the batch size; the last window of an
epoch has the rest. With shuffling, each window is permuted by a generator seeded with
``(seed, epoch, window index)``. So every batch has a fixed place: batch ``b`` of an
epoch is batch ``b % (window // batch_size)`` of window ``b // (window // batch_size)``,
which starts at row ``window * (b // (window // batch_size))`` of the epoch's order. A
resumed input reads from there (Parquet row groups before it are skipped from the
files' metadata, not read) and replays only the window it stopped in.

>>> [len(next(iter(w.values()))) for w in windows(iter([{"x": torch.zeros(5)}] * 3), 4)]
[4, 4, 4, 3]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from trainrun.inputs._sources import Unit

__all__ = ["coalesced", "count_rows", "parts", "unit_order", "window_permutation", "windows"]

_SEED_SPACE = 2**64


def _rows(cols: dict[str, Any]) -> int:
    return int(next(iter(cols.values())).shape[0]) if cols else 0


def unit_order(count: int, shuffle: bool, seed: int, epoch: int) -> list[int]:
    """The order an epoch reads ``count`` units in: drawn from (seed, epoch) when shuffling."""
    if not shuffle or count < 2:
        return list(range(count))
    rng = np.random.default_rng([seed % _SEED_SPACE, epoch, 0])
    return [int(u) for u in rng.permutation(count)]


def window_permutation(seed: int, epoch: int, index: int, rows: int) -> torch.Tensor:
    """The shuffle of window ``index`` of ``epoch``: the same wherever reading started."""
    # torch's randperm, seeded from (seed, epoch, index): twice as fast as numpy's
    state = np.random.SeedSequence([seed % _SEED_SPACE, epoch, 1, index]).generate_state(2)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)
    return torch.randperm(rows, generator=g)


def _drop_rows(cols: dict[str, Any], k: int) -> dict[str, Any]:
    out = {}
    for name, value in cols.items():
        tail = value.iloc[k:] if hasattr(value, "iloc") else value[k:]
        out[name] = tail.reset_index(drop=True) if hasattr(tail, "reset_index") else tail
    return out


def parts(
    source: Any,
    units: Sequence[Unit],
    needed: Sequence[str],
    string_keys: Sequence[str],
    skip_rows: int = 0,
) -> Iterator[dict[str, Any]]:
    """Raw column dicts of ``units`` in order, the first ``skip_rows`` rows left out.

    Units the files' metadata says lie wholly in the skipped rows are not read at all.
    """
    skip = skip_rows
    for unit in units:
        if skip:
            n = source.unit_rows(unit)
            if n is not None and n <= skip:
                skip -= n
                continue
        for cols in source.read(unit, needed, string_keys):
            k = _rows(cols)
            if skip >= k:
                skip -= k
                continue
            if skip:
                cols, skip = _drop_rows(cols, skip), 0
            yield cols


def _joinable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two raw chunks can be joined without changing a value: the same columns,
    each 1-D, of the same kind (numpy array or pandas Series) and the same dtype, and no
    Python objects (a column of lists is padded per chunk: joining could widen it)."""
    if list(a) != list(b):
        return False
    for name, x in a.items():
        y = b[name]
        if type(x) is not type(y) or x.ndim != 1 or y.ndim != 1 or x.dtype != y.dtype:
            return False
        if x.dtype == np.dtype(object):  # (a category or string dtype holds no lists)
            return False
    return True


def _join(pending: list[dict[str, Any]]) -> dict[str, Any]:
    if len(pending) == 1:
        return pending[0]
    out: dict[str, Any] = {}
    for name, first in pending[0].items():
        if isinstance(first, np.ndarray):
            out[name] = np.concatenate([cols[name] for cols in pending])
        else:
            import pandas as pd

            out[name] = pd.concat([cols[name] for cols in pending], ignore_index=True)
    return out


def coalesced(chunks: Iterator[dict[str, Any]], rows: int) -> Iterator[dict[str, Any]]:
    """``chunks`` with consecutive small ones joined, up to ``rows`` rows each.

    Encoding a chunk has a fixed cost (about 0.6 ms for a few columns): files of small
    row groups (or many small files) are encoded ``rows`` (``chunk_size``) rows at a
    time, not one row group at a time. The rows, their order and their values are
    unchanged; chunks that cannot be joined exactly (see _joinable) pass as they are.

    >>> [len(c["x"]) for c in coalesced(iter([{"x": np.zeros(3)}] * 5), 7)]
    [6, 6, 3]
    """
    pending: list[dict[str, Any]] = []
    count = 0
    for cols in chunks:
        k = _rows(cols)
        if pending and (count + k > rows or not _joinable(pending[0], cols)):
            yield _join(pending)
            pending, count = [], 0
        if k >= rows or not _joinable(cols, cols):
            yield cols
            continue
        pending.append(cols)
        count += k
    if pending:
        yield _join(pending)


def windows(encoded: Iterator[dict[str, torch.Tensor]], window: int) -> Iterator[dict]:
    """The encoded parts regrouped into windows of exactly ``window`` rows (the last: the rest)."""
    from trainrun.inputs._input_fn import _concat

    pending: list[dict[str, torch.Tensor]] = []
    rows = 0
    for part in encoded:
        k = _rows(part)
        if k == 0:
            continue
        pending.append(part)
        rows += k
        while rows >= window:
            data = _concat(pending)
            rows -= window
            pending = [{key: v[window:] for key, v in data.items()}] if rows else []
            yield {key: v[:window] for key, v in data.items()}
    if rows:
        yield _concat(pending)


def count_rows(source: Any, needed: Sequence[str]) -> int:
    """Rows of one epoch: from the metadata where the files say (Parquet), else read (CSV)."""
    total = 0
    for unit in source.units():
        n = source.unit_rows(unit)
        if n is None:
            n = sum(_rows(cols) for cols in source.read(unit, needed[:1], []))
        total += n
    return total
