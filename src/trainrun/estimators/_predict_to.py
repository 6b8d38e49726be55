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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import InputError

__all__ = ["ROWS_PER_WRITE", "exported_batches", "predict_to"]

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
        if self.kind == "csv":
            frame.to_csv(
                self.path, mode="a" if self.started else "w", header=not self.started, index=False
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        self.started = True

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def predict_to(
    path: str | os.PathLike[str],
    fn: Any,
    batches: Iterable[dict[str, np.ndarray]],
    id_columns: Sequence[str] | None,
    format: str | None,
) -> Path:
    """Write the prediction ``batches`` of ``fn`` (unshuffled, one epoch) to ``path``."""
    target = Path(path).expanduser()
    kind = output_format(target, format)
    ids = check_input(fn, id_columns)
    if target.is_dir():
        raise InputError(
            f"predict_to() writes a file, but {target} is a folder. Received: path={str(path)!r}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    reader = _IdReader(id_rows(fn, ids), ids)
    writer = _Writer(tmp, kind)
    pending: list[dict[str, np.ndarray]] = []
    rows = 0
    try:
        for out in batches:
            pending.append(out)
            rows += len(next(iter(out.values())))
            if rows >= ROWS_PER_WRITE:
                writer.write(_frame(pending, reader.take(rows) if ids else {}))
                pending, rows = [], 0
        if pending:
            writer.write(_frame(pending, reader.take(rows) if ids else {}))
        writer.close()
        if not writer.started:
            raise InputError("predict_to() got no rows from the input_fn; pass at least one row.")
        os.replace(tmp, target)
    except BaseException:
        writer.close()
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
