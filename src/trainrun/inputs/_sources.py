"""One adapter per data kind: each yields plain ``{name: numpy array}`` column dicts.

In-memory kinds (DataFrame, dict of arrays, Arrow table) become one column dict, once.
Files (CSV, Parquet) are read in chunks of ``chunk_size`` rows, only the columns needed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import InputError
from trainrun.feature_columns._transform import as_array

__all__ = ["FileSource", "Unit", "as_columns", "is_file_input"]

#: What a file input is read in: (file index, Parquet row group), or (file index, None)
#: for a whole CSV file.
Unit = tuple[int, int | None]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".tsv.gz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def is_file_input(data: Any) -> bool:
    if isinstance(data, (str, os.PathLike)):
        return True
    return (
        isinstance(data, Sequence)
        and not isinstance(data, (str, bytes))
        and len(data) > 0
        and all(isinstance(d, (str, os.PathLike)) for d in data)
    )


def _column_array(value: Any, name: str) -> np.ndarray:
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.to_numpy()
    arr = value if isinstance(value, np.ndarray) else as_array(value)
    if arr.ndim == 0:
        raise InputError(
            f"Input column {name!r} must be an array with one entry per row, not a scalar. "
            f"Received: {name}={value!r}"
        )
    return arr


def as_columns(data: Any) -> dict[str, Any]:
    """An in-memory dataset as ``{name: numpy array or pandas Series}``, rows checked."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if data.columns.duplicated().any():
            dup = data.columns[data.columns.duplicated()][0]
            raise InputError(f"The DataFrame has duplicate column names. Received: {dup!r} twice")
        # Series stay Series: Arrow-backed text is factorized without becoming Python objects
        cols: dict[str, Any] = {str(c): data[c].reset_index(drop=True) for c in data.columns}
    elif _is_arrow_table(data):
        cols = {name: data.column(name).to_pandas() for name in data.column_names}
    elif isinstance(data, Mapping):
        cols = {str(k): _column_array(v, str(k)) for k, v in data.items()}
    else:
        raise InputError(
            "input_fn() data must be a pandas DataFrame, a dict of numpy arrays, a pyarrow "
            "Table, or a path (or list of paths) to CSV or Parquet files. "
            f"Received: {type(data).__module__}.{type(data).__name__}"
        )
    if not cols:
        raise InputError("input_fn() data has no columns. Received: an empty dataset")
    lengths = {k: v.shape[0] for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        odd = next(k for k, n in lengths.items() if n != lengths[first])
        raise InputError(
            f"Every input column needs the same number of rows, but {first!r} has "
            f"{lengths[first]} and {odd!r} has {lengths[odd]}. Received: lengths={lengths}"
        )
    return cols


def _is_arrow_table(data: Any) -> bool:
    mod = type(data).__module__
    if not mod.startswith("pyarrow"):
        return False
    import pyarrow as pa

    return isinstance(data, (pa.Table, pa.RecordBatch))


def _expand_paths(data: Any) -> list[Path]:
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError(f"No files match the pattern. Received: {text!r}")
            paths.extend(Path(m) for m in matches)
            continue
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and _kind_or_none(f) is not None)
            if not found:
                raise InputError(f"The folder holds no CSV or Parquet files. Received: {text!r}")
            paths.extend(found)
        elif not p.exists():
            raise InputError(f"The input file does not exist. Received: {text!r}")
        else:
            paths.append(p)
    return paths


def _arrow_column(values: Any) -> Any:
    """A column of a Parquet batch for the encoder: numbers without nulls as a numpy array
    (no pandas Series and index built per chunk), anything else as pandas reads it."""
    import pyarrow.types as pt

    kind = values.type
    plain = pt.is_integer(kind) or pt.is_floating(kind) or pt.is_boolean(kind)
    if plain and values.null_count == 0:
        return values.to_numpy(zero_copy_only=False)
    return values.to_pandas()


def _kind_or_none(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    return None


class FileSource:
    """CSV and Parquet files read chunk by chunk (bounded memory)."""

    def __init__(self, data: Any, chunk_size: int, csv_options: Mapping[str, Any] | None) -> None:
        self.paths = _expand_paths(data)
        self.kinds = []
        for p in self.paths:
            kind = _kind_or_none(p)
            if kind is None:
                raise InputError(
                    f"Cannot tell the file type from its name; use a .csv (.csv.gz, .tsv) or "
                    f".parquet file. Received: {str(p)!r}"
                )
            self.kinds.append(kind)
        self.chunk_size = chunk_size
        self._units: list[Unit] | None = None
        self._unit_rows: dict[Unit, int] = {}
        self.csv_options = dict(csv_options or {})
        if "tsv" in "".join(p.name.lower() for p in self.paths):
            self.csv_options.setdefault("sep", "\t")
        self.columns = self._columns(0)
        for i in range(1, len(self.paths)):
            other = self._columns(i)
            if set(other) != set(self.columns):
                raise InputError(
                    f"All input files need the same columns; {str(self.paths[i])!r} differs from "
                    f"{str(self.paths[0])!r}. Received: {other} vs {self.columns}"
                )

    def _columns(self, i: int) -> list[str]:
        path, kind = self.paths[i], self.kinds[i]
        if kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        import pandas as pd

        try:
            return [str(c) for c in pd.read_csv(path, nrows=0, **self.csv_options).columns]
        except pd.errors.EmptyDataError:
            raise InputError(f"The CSV file is empty. Received: {str(path)!r}") from None

    @property
    def num_rows(self) -> int | None:
        rows = [self.unit_rows(u) for u in self.units()]
        known = [n for n in rows if n is not None]
        return sum(known) if len(known) == len(rows) else None

    def units(self) -> list[Unit]:
        """What the files are read in: Parquet row groups, whole CSV files, in file order."""
        if self._units is None:
            units: list[Unit] = []
            rows: dict[Unit, int] = {}
            for i, kind in enumerate(self.kinds):
                if kind != "parquet":
                    units.append((i, None))
                    continue
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.paths[i]).metadata
                for g in range(meta.num_row_groups):
                    units.append((i, g))
                    rows[(i, g)] = meta.row_group(g).num_rows
            self._units, self._unit_rows = units, rows
        return self._units

    def unit_rows(self, unit: Unit) -> int | None:
        """Rows in ``unit`` when the file says (Parquet), None otherwise (CSV)."""
        self.units()
        return self._unit_rows.get(unit)

    def read(
        self, unit: Unit, needed: Sequence[str], string_keys: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        """Column dicts of at most ``chunk_size`` rows of one unit, only the ``needed`` columns.

        A Parquet unit is read on its own (one row group): pyarrow's reader over a whole
        file keeps every row group's raw bytes it has read until the file is done (about
        the file's size), which made memory grow with the rows read.
        """
        i, group = unit
        wanted = [c for c in self.columns if c in set(needed)]
        if group is not None:
            import pyarrow.parquet as pq

            # one thread: the read-ahead thread already reads beside the training step;
            # no pre-buffering: with it, cutting a row group into chunks costs 2x the CPU
            for batch in pq.ParquetFile(self.paths[i], pre_buffer=False).iter_batches(
                batch_size=self.chunk_size, row_groups=[group], columns=wanted, use_threads=False
            ):
                names = batch.schema.names
                yield {name: _arrow_column(batch.column(j)) for j, name in enumerate(names)}
            return
        if self.kinds[i] == "parquet":  # a whole Parquet file: its row groups one by one
            for u in self.units():
                if u[0] == i:
                    yield from self.read(u, needed, string_keys)
            return
        import pandas as pd

        opts = dict(self.csv_options)
        # text keys stay text (e.g. zip code "007"), whatever pandas would infer
        dtypes = {k: str for k in string_keys if k in wanted}
        dtypes.update(opts.pop("dtype", None) or {})
        with pd.read_csv(
            self.paths[i], chunksize=self.chunk_size, usecols=wanted, dtype=dtypes, **opts
        ) as reader:
            for frame in reader:
                yield {str(c): frame[c] for c in frame.columns}

    def chunks(
        self, order: Sequence[int], needed: Sequence[str], string_keys: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        """Column dicts of at most ``chunk_size`` rows, file by file in ``order``."""
        for i in order:
            yield from self.read((i, None), needed, string_keys)
