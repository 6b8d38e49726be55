"""A runs listing as plain rows, without pandas: what ``trainrun ls`` prints.

``ls_runs()`` returns a pandas DataFrame, and importing pandas alone costs a
command more than half a second. ``trainrun ls`` needs a table of a few rows, so
it asks :func:`ls_rows` instead: the same rows, in the same order, with the same
columns, through the same SQL pushdown and freshness rule (``_pushdown``,
``_index``), held as Python lists in a :class:`Rows`. Each value is what the
DataFrame's ``tolist()`` would give (a number column with gaps holds floats,
times are UTC datetimes) with a missing value as None, so that the table printed
from either is the same text (``tests/cli/test_ls_fast.py`` checks it).

:func:`ls_rows` returns None where the DataFrame path must answer: a filter
that SQL does not cover (a column against a column, a time against a number),
a filter with ``refresh=True``, an index that cannot be used, a shared store
(``s3://``). ``trainrun ls`` then calls ``ls_runs()`` as before.

>>> rows = ls_rows("runs", latest_n=20)          # doctest: +SKIP
>>> rows.columns[:2], len(rows)                  # doctest: +SKIP
(['id', 'status'], 20)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from trainrun.exceptions import FilterError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["Rows", "ls_rows"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAT = -(2**63)  # a missing start/end, as the index stores it


class Rows:
    """Columns of equal length, in order; ``Rows.column(name)`` is a list of Python values.

    The few DataFrame-like parts the table printer and the column order use:
    ``columns``, ``len()``, ``column(name)`` and ``take(indices)``.
    """

    plain_rows = True  # what _columns and the table printer tell it from a DataFrame by

    def __init__(self, data: dict[str, list[Any]], n: int) -> None:
        self.data = data
        self.columns = list(data)
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __setitem__(self, name: str, values: list[Any]) -> None:
        """Add a column (as ``df[name] = values``; ``_pick_columns`` adds an empty one)."""
        if name not in self.data:
            self.columns.append(name)
        self.data[name] = list(values)

    def column(self, name: str) -> list[Any]:
        return self.data[name]

    def take(self, indices: Sequence[int]) -> Rows:
        return Rows({k: [v[i] for i in indices] for k, v in self.data.items()}, len(indices))

    def select(self, names: Sequence[str]) -> Rows:
        return Rows({k: self.data[k] for k in names}, self.n)

    @classmethod
    def from_table(cls, table: Any, available: Sequence[str] | None = None) -> Rows:
        """``table.frame()`` (``_index.Table._build_frame``) as plain lists; with
        ``available``, every listed column (``frame().reindex(columns=available)``)."""
        n = len(table.ids)
        prefix = os.path.join(table.runs_dir, "")
        ids = list(table.ids)
        data: dict[str, list[Any]] = {
            "run_dir": [prefix + i for i in ids],
            "id": ids,
            "status": list(table.base["status"]),
        }
        for c in ("start", "end"):
            data[c] = [
                None if us == _NAT else _EPOCH + timedelta(microseconds=us) for us in table.base[c]
            ]
        data["duration"] = [None if v is None else float(v) for v in table.base["duration"]]
        data["script"] = list(table.base["script"])
        data["exit_code"] = list(table.base["exit_code"])
        from trainrun.runs.store._index import GROUPS

        names = [k for k, v in table.extra.items() if any(x is not None for x in v)]
        names.sort(key=lambda k: GROUPS.index(k[: k.index("_") + 1]))  # as _build_frame
        for name in names:
            values = table.extra[name]
            if name in table.bools:
                data[name] = [None if v is None else bool(v) for v in values]
            else:
                data[name] = _inferred(list(values))
        if available is not None:
            data = {c: data[c] if c in data else [None] * n for c in available}
        return cls(data, n)


def _inferred(values: list[Any]) -> list[Any]:
    """A column as pandas infers it from a list: numbers with a gap or a float all become
    floats (``[64, None]`` is ``[64.0, nan]``); anything else stays as it is. NaN is kept
    (a value, shown as an empty cell); a gap is None."""
    has_float = has_gap = False
    for v in values:
        kind = type(v)
        if kind is float:
            has_float = True
        elif v is None:
            has_gap = True
        elif kind is not int:
            return values  # text, a bool among numbers...: an object column
    if has_float or has_gap:
        return [None if v is None else float(v) for v in values]
    return values


def _missing(value: Any) -> bool:
    return value is None or (type(value) is float and value != value)


def sort_rows(rows: Rows, key: str, decreasing: bool) -> Rows:
    """``_sort`` of ls_runs for one key: stable (ties keep their order: newest first),
    missing values last whichever the direction; numbers and texts mixed in one column
    are ordered by their text, as pandas does them."""
    if len(rows) == 0:
        return rows
    if key not in rows.columns:
        from trainrun.runs.store import _near

        raise FilterError(f"Cannot order by {key!r}: no such column.{_near(key, rows.columns)}")
    values = rows.column(key)
    present = [i for i, v in enumerate(values) if not _missing(v)]
    absent = [i for i, v in enumerate(values) if _missing(v)]
    try:
        present.sort(key=values.__getitem__, reverse=decreasing)
    except TypeError:
        present.sort(key=lambda i: str(values[i]), reverse=decreasing)
    return rows.take(present + absent)


def _valid_count(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise FilterError(f"{name} must be a positive integer or None. Received: {name}={value!r}")


def ls_rows(
    runs_dir: str | os.PathLike[str] = "runs",
    order: str | None = None,
    decreasing: bool = True,
    filter: str | None = None,
    latest_n: int | None = None,
    columns: str | Sequence[str] | None = None,
    *,
    refresh: bool = False,
    limit: int | None = None,
) -> Rows | None:
    """``ls_runs()``'s answer as :class:`Rows` (no pandas); None where only the DataFrame path
    can answer (see the module docstring). Same arguments, same errors, same warnings."""
    from trainrun.runs.store import _many, _pushdown
    from trainrun.runs.store._filter import parse_filter
    from trainrun.runs.store._index import _through_index, load_table

    _many.check_runs_dir(runs_dir)
    filter = _many.tfruns_filter(filter)
    query = parse_filter(filter) if filter is not None else None
    _valid_count("latest_n", latest_n)
    _valid_count("limit", limit)
    if not isinstance(order, (str, type(None))) or (
        isinstance(runs_dir, str) and "://" in runs_dir
    ):
        return None
    if refresh or (query is None and latest_n is None and limit is None):
        if query is not None:
            return None  # a filter over a re-read table: the DataFrame path's job
        table = load_table(runs_dir, refresh=refresh)
        if not table.presorted and table.ids:
            return None  # the folders read directly (no index): rare, left to ls_runs
        table.warn()
        rows = Rows.from_table(table)
        if latest_n is not None:
            rows = rows.take(range(min(latest_n, len(rows))))
        if order is None:
            if not decreasing:
                rows = rows.take(range(len(rows) - 1, -1, -1))
        else:
            rows = sort_rows(rows, order, decreasing)
    else:
        folder = os.path.abspath(os.fspath(runs_dir))
        if not os.path.isdir(folder):
            return None
        found = _through_index(
            folder,
            lambda index: _pushdown.query_table(index, query, order, decreasing, latest_n, limit),
        )
        if found is None:
            return None
        table, available, _ = found
        table.warn()
        rows = Rows.from_table(table, available)
        if order is not None and (latest_n is not None or limit is None):
            rows = sort_rows(rows, order, decreasing)
        elif order is None and not decreasing and (latest_n is not None or limit is None):
            rows = rows.take(range(len(rows) - 1, -1, -1))
    if limit is not None:
        rows = rows.take(range(min(limit, len(rows))))
    return _arranged(rows, columns, order)


def _arranged(rows: Rows, columns: Any, order: Any) -> Rows:
    """``ls_runs``'s ``_arranged``: the columns asked for, or all with what differs first."""
    from trainrun.runs.store._columns import column_order

    if columns is None:
        return rows.select(column_order(rows, order))
    from trainrun.runs.store import _pick_columns

    return rows.select(_pick_columns(rows, columns))
