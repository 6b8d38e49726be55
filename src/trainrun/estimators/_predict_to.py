"""predict_to(path, input_fn): predictions streamed into a Parquet or CSV file, in input order.

Predictions are written batch by batch (buffered into row groups of ``ROWS_PER_WRITE``
rows), so a file too large for memory is predicted in bounded memory. The input's id
columns (``id_columns=[...]``) come first in each row, read in step with the batches:
sliced from data in memory, or streamed from the same files (only those columns).
The file appears complete or not at all (written under a temporary name, then renamed).

>>> est.predict_to("scores.parquet", input_fn("big/*.parquet", shuffle=False),
...                id_columns=["customer_id"])                     # doctest: +SKIP
PosixPath('scores.parquet')
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import InputError

__all__ = ["ROWS_PER_WRITE", "exported_batches", "predict_to", "sharded_predict_to"]

#: Rows gathered before each write (one Parquet row group, one CSV append).
ROWS_PER_WRITE = 65_536
FORMATS = ("parquet", "csv")


def output_format(path: Path, format: str | None) -> str:
    """ "parquet" or "csv": ``format`` when given, else from the file name."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"predict_to() writes 'parquet' or 'csv'. Received: format={format!r}")
        return format
    name = path.name.lower()
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.xz")):
        return "csv"
    raise InputError(
        "predict_to() cannot tell the format from the file name: use a .parquet or .csv "
        f"(.csv.gz) name, or pass format='parquet' or 'csv'. Received: path={str(path)!r}"
    )


def check_input(fn: Any, id_columns: Sequence[str] | None) -> list[str]:
    """The id columns, checked; the input must keep its order and be read once."""
    if getattr(fn, "shuffle", False):
        raise InputError(
            "predict_to() writes predictions in the data's order, but the input_fn shuffles. "
            "Build it with input_fn(..., shuffle=False). Received: an input_fn with shuffle=True"
        )
    if getattr(fn, "epochs", 1) != 1:
        raise InputError(
            "predict_to() reads the input once; build the input_fn with epochs=1. "
            f"Received: epochs={getattr(fn, 'epochs', None)!r}"
        )
    if id_columns is None:
        return []
    ids = [id_columns] if isinstance(id_columns, str) else [str(c) for c in id_columns]
    available = list(getattr(fn, "available", []))
    for name in ids:
        if name not in available:
            near = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise InputError(
                f"The id column {name!r} is not a column of the input.{hint} "
                f"Available: {available[:30]}. Received: id_columns={ids!r}"
            )
    return ids


def id_rows(fn: Any, ids: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The id columns in input order, in chunks (any sizes): sliced or streamed."""
    if not ids:
        return
    if fn._file is None:
        yield {k: np.asarray(fn._columns[k]) for k in ids}
        return
    order = range(len(fn._file.paths))
    for cols in fn._file.chunks(order, ids, ids):  # ids stay text in CSV ("007")
        yield {k: np.asarray(cols[k]) for k in ids}


class _IdReader:
    """Hands out the next ``n`` rows of id columns from a stream of chunks."""

    def __init__(self, chunks: Iterator[dict[str, Any]], ids: Sequence[str]) -> None:
        self.chunks, self.ids = chunks, list(ids)
        self.pending: list[dict[str, Any]] = []
        self.rows = 0

    def take(self, n: int) -> dict[str, Any]:
        while self.rows < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                raise InputError(
                    "predict_to() ran out of id column values before predictions: the input "
                    "changed while it was read."
                )
            self.pending.append(chunk)
            self.rows += len(next(iter(chunk.values())))
        joined = {k: np.concatenate([c[k] for c in self.pending]) for k in self.ids}
        rest = {k: v[n:] for k, v in joined.items()}
        self.pending = [rest] if len(next(iter(rest.values()))) else []
        self.rows -= n
        return {k: v[:n] for k, v in joined.items()}


def _frame(outputs: list[dict[str, np.ndarray]], ids: Mapping[str, Any]) -> Any:
    import pandas as pd

    from trainrun.model_dir.export import predictions_to_frame

    preds = predictions_to_frame(outputs)
    clash = [k for k in ids if k in preds.columns]
    if clash:
        raise InputError(
            f"The id column {clash[0]!r} has the name of a prediction column; rename it in "
            f"the input. Received: id_columns={list(ids)!r}"
        )
    frame = pd.DataFrame({k: v for k, v in ids.items()})
    for col in preds.columns:
        values = preds[col].to_numpy()
        # text classes arrive as bytes (tf.estimator's convention): write them as text
        if values.dtype.kind == "S" or (
            values.dtype == object and len(values) and isinstance(values[0], bytes)
        ):
            values = np.array([v.decode("utf-8") for v in values], dtype=object)
        frame[col] = values
    return frame


class _Writer:
    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.parquet: Any = None
        self.started = False

    def write(self, frame: Any) -> None:
        """Append a pandas DataFrame or an Arrow table."""
        import pyarrow as pa

        if self.kind == "csv":
            if isinstance(frame, pa.Table):
                frame = frame.to_pandas()
            frame.to_csv(
                self.path, mode="a" if self.started else "w", header=not self.started, index=False
            )
        else:
            import pyarrow.parquet as pq

            table = (
                frame
                if isinstance(frame, pa.Table)
                else pa.Table.from_pandas(frame, preserve_index=False)
            )
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        self.started = True

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def _target(path: str | os.PathLike[str], format: str | None) -> tuple[Path, str]:
    target = Path(path).expanduser()
    kind = output_format(target, format)
    if target.is_dir():
        raise InputError(
            f"predict_to() writes a file, but {target} is a folder. Received: path={str(path)!r}"
        )
    return target, kind


def _no_rows() -> InputError:
    return InputError("predict_to() got no rows from the input_fn; pass at least one row.")


def _write(
    tmp: Path, kind: str, batches: Iterable[dict[str, np.ndarray]], reader: _IdReader
) -> int:
    """Write ``batches`` (with the reader's ids) to ``tmp``; the number of rows written.
    ``tmp`` is removed on failure, and is not made when there are no rows."""
    writer = _Writer(tmp, kind)
    pending: list[dict[str, np.ndarray]] = []
    rows = total = 0
    try:
        for out in batches:
            pending.append(out)
            rows += len(next(iter(out.values())))
            if rows >= ROWS_PER_WRITE:
                writer.write(_frame(pending, reader.take(rows) if reader.ids else {}))
                pending, total, rows = [], total + rows, 0
        if pending:
            writer.write(_frame(pending, reader.take(rows) if reader.ids else {}))
            total += rows
        writer.close()
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return total


def predict_to(
    path: str | os.PathLike[str],
    fn: Any,
    batches: Iterable[dict[str, np.ndarray]],
    id_columns: Sequence[str] | None,
    format: str | None,
) -> Path:
    """Write the prediction ``batches`` of ``fn`` (unshuffled, one epoch) to ``path``."""
    target, kind = _target(path, format)
    ids = check_input(fn, id_columns)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if _write(tmp, kind, batches, _IdReader(id_rows(fn, ids), ids)) == 0:
        raise _no_rows()
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def exported_batches(
    model: Any, fn: Any, predict_keys: Sequence[str] | None
) -> Iterator[dict[str, np.ndarray]]:
    """A loaded export's predictions over ``fn``'s batches (a response column is skipped)."""
    import torch

    keys = model.head.check_predict_keys(predict_keys)
    model.network.eval()
    for batch in fn.batches(model.transform, label_fn=_no_labels):
        with torch.no_grad():
            out = model.head.predictions(model.network(batch.features))
        yield {k: out[k] for k in keys} if keys else out


def _no_labels(values: Any) -> Any:
    import torch

    return torch.zeros(len(values), dtype=torch.uint8)


# ---------------------------------------------------------------- several processes


def sharded_predict_to(
    path: str | os.PathLike[str],
    fn: Any,
    make_batches: Callable[[Any], Iterator[Any]],
    predict_over: Callable[[Iterator[Any]], Iterable[dict[str, np.ndarray]]],
    id_columns: Sequence[str] | None,
    format: str | None,
) -> Path:
    """:func:`predict_to` under torchrun: every rank predicts its share, rank 0 joins them.

    The shares are the training input's (:mod:`trainrun.inputs._sharding`): data in
    memory by whole batches (rank ``r`` predicts batches ``r, r + world, ...``), files by
    Parquet row group or whole CSV file, dealt round-robin. Each rank writes its rows
    (ids first) to a Parquet part file beside ``path``; rank 0 then copies the parts'
    rows into ``path`` in input order (unit by unit) and replaces ``path`` atomically;
    the parts are removed. With fewer CSV files than ranks, or fewer Parquet row groups,
    rank 0 predicts everything alone. Every rank must call it (it waits for the others)
    and every rank returns the path once the file is whole. ``make_batches(fn)`` are a
    fn's batches without labels; ``predict_over(batches)`` their prediction dicts.
    """
    from trainrun.training import distributed as dist

    target, kind = _target(path, format)
    ids = check_input(fn, id_columns)
    rank, world = dist.rank(), dist.world_size()
    part = target.with_name(f".{target.name}.part{rank}.{os.getpid()}.parquet.tmp")
    mine: dict[str, Any] = {"error": None, "part": None, "units": []}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source, units, id_chunks = _share(fn, ids, make_batches, rank, world)
        rows = _write(part, "parquet", predict_over(source), _IdReader(id_chunks, ids))
        known = sum(n for _, n in units if n is not None)
        if any(n is None for _, n in units):  # rank 0 alone: all its rows, one unit
            units = [(units[0][0], rows)]
        elif rows != known:
            raise InputError(
                f"predict_to() predicted {rows} rows where the input's parts hold {known}: "
                "the input changed while it was read."
            )
        mine.update(part=str(part) if rows else None, units=units)
    except Exception as exc:  # every rank must reach the gather below, or the others hang
        mine["error"] = f"{type(exc).__name__}: {exc}"
        part.unlink(missing_ok=True)
        if world == 1:
            raise
        failure: Exception | None = exc
    else:
        failure = None
    shares = dist.all_gather_object(mine)
    try:
        _raise_first_error(shares, failure, "predicting its share")
        outcome: str | None = None
        if rank == 0:
            try:
                _join(target, kind, shares)
            except Exception as exc:
                outcome, failure = f"{type(exc).__name__}: {exc}", exc
        joined = dist.all_gather_object(outcome)
        _raise_first_error([{"error": e} for e in joined], failure, "joining the parts")
    finally:
        part.unlink(missing_ok=True)
    return target


def _raise_first_error(
    shares: Sequence[Mapping[str, Any]], mine: Exception | None, doing: str
) -> None:
    if mine is not None:
        raise mine
    for r, share in enumerate(shares):
        if share["error"] is not None:
            raise InputError(
                f"predict_to() stopped: rank {r} of {len(shares)} failed {doing}, so no file "
                f"was written. Its error: {share['error']}"
            )


def _share(
    fn: Any, ids: Sequence[str], make_batches: Callable[[Any], Iterator[Any]], rank: int, world: int
) -> tuple[Iterator[Any], list[tuple[int, int | None]], Iterator[dict[str, Any]]]:
    """This rank's batches, its units as (global index, rows), and its id chunks."""
    if fn.in_memory:
        n, size = int(fn.num_rows or 0), int(fn.batch_size)
        mine = range(rank, -(-n // size), world)
        batches = (b for i, b in enumerate(make_batches(fn)) if i % world == rank)
        columns = fn._columns or {}
        chunks = ({k: np.asarray(columns[k])[i * size : (i + 1) * size] for k in ids} for i in mine)
        return batches, [(i, min(size, n - i * size)) for i in mine], (c for c in chunks if ids)
    from trainrun.inputs._sharding import _sharded_copy, shard_units

    try:
        dealt = shard_units(fn._file, rank, world)
    except InputError:  # fewer Parquet row groups than ranks
        dealt = [(-1, None)]
    if dealt == [(-1, None)]:  # fewer CSV files than ranks: rank 0 predicts alone
        if rank != 0:
            return iter(()), [], iter(())
        return make_batches(fn), [(0, None)], id_rows(fn, ids)
    sharded = _sharded_copy(fn, rank, world)
    units: list[tuple[int, int | None]] = [
        (rank + k * world, _unit_rows(fn._file, u)) for k, u in enumerate(dealt)
    ]
    return make_batches(sharded), units, id_rows(sharded, ids)


def _unit_rows(source: Any, unit: tuple[int, int | None]) -> int:
    """Rows of a Parquet row group or file (from its metadata) or a CSV file (counted)."""
    i, group = unit
    if source.kinds[i] == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(source.paths[i]).metadata
        return int(meta.num_rows if group is None else meta.row_group(group).num_rows)
    first = source.columns[:1]
    return sum(len(next(iter(c.values()))) for c in source.chunks([i], first, first))


def _join(target: Path, kind: str, shares: Sequence[Mapping[str, Any]]) -> None:
    """Copy the parts' rows into ``target`` in input order: unit by unit, by global index."""
    order = sorted((g, r, n) for r, share in enumerate(shares) for g, n in share["units"])
    readers = {r: _PartReader(s["part"]) for r, s in enumerate(shares) if s["part"] is not None}
    if not readers:
        raise _no_rows()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer = _Writer(tmp, kind)
    pending: list[Any] = []
    rows = 0
    try:
        for _, r, n in order:
            if n == 0:
                continue
            pending.append(readers[r].take(n))
            rows += n
            if rows >= ROWS_PER_WRITE:
                writer.write(_concat_tables(pending))
                pending, rows = [], 0
        if pending:
            writer.write(_concat_tables(pending))
        writer.close()
        os.replace(tmp, target)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise


def _concat_tables(tables: list[Any]) -> Any:
    import pyarrow as pa

    return pa.concat_tables(tables).combine_chunks()


class _PartReader:
    """Hands out the next ``n`` rows of a part file as an Arrow table, read batch by batch."""

    def __init__(self, path: str) -> None:
        import pyarrow.parquet as pq

        self.batches = pq.ParquetFile(path).iter_batches(batch_size=ROWS_PER_WRITE)
        self.pending: list[Any] = []
        self.rows = 0

    def take(self, n: int) -> Any:
        import pyarrow as pa

        while self.rows < n:
            batch = next(self.batches, None)
            if batch is None:
                raise InputError(
                    "predict_to() found a part file shorter than its rows: the parts changed "
                    "while they were joined."
                )
            self.pending.append(batch)
            self.rows += batch.num_rows
        table = pa.Table.from_batches(self.pending)
        self.pending = [b for b in table.slice(n).to_batches() if b.num_rows]
        self.rows -= n
        return table.slice(0, n)
