"""Listings answered by the index: filters, latest-N and limits pushed into SQL.

Two things make a listing over 100,000 runs cost milliseconds instead of a second:

* **Freshness from a journal.** Checking every run folder's time costs a
  ``stat`` per run (0.2 to 0.8 s at 100,000 runs here). Once the index holds
  ``JOURNAL_MIN_RUNS`` runs or more, a listing instead re-reads only

  - the runs named in ``runs/.trainrun/changes`` since it last looked (every
    ``record.write_json`` into a run folder appends the run's name there:
    ``trainrun.runs.record._journal``);
  - the runs added or removed, when the runs folder's own time changed (one
    ``listdir``, compared with the index's ids; no ``stat`` per run);
  - the runs still *running* (by the size and time of their files, and whether
    their process lives) and those read within the 2 s racy window.

  What it does not see, where a small store would: a file added, removed or
  edited by hand inside a finished run's folder. ``ls_runs(refresh=True)``
  (``trainrun ls --refresh``) re-reads every run. Below ``JOURNAL_MIN_RUNS``
  runs every folder is checked as before (it costs a few milliseconds).

* **SQL pushdown.** A filter (``trainrun.runs.store._filter``), ``latest_n`` and
  ``limit`` become one ``SELECT ... WHERE ... ORDER BY ... LIMIT`` over the index;
  only the rows asked for are fetched and turned into a DataFrame. A filter the
  translation does not cover (a column compared with another column, a time
  compared with a number, ``run_dir``) falls back to the DataFrame path, with
  the same answer.

The translation keeps the filter language's rules: a missing value (or NaN)
makes every comparison false, ``!=`` included; ``<``/``>`` between a number and
a text are false; ``== null`` finds missing values.

>>> from trainrun.runs.store._filter import parse_filter
>>> to_sql(parse_filter("eval_accuracy > 0.8"), {"eval_accuracy": "c3"})
("(typeof(c3) IN ('integer', 'real') AND c3 > ?)", [0.8])
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from trainrun.exceptions import FilterError
from trainrun.runs import record
from trainrun.runs.record._journal import JOURNAL_FILE
from trainrun.runs.store._filter import BoolOp, Column, Compare, Filter, InList, Literal, Not

__all__ = [
    "JOURNAL_MIN_RUNS",
    "fast_changes",
    "ls_query",
    "query_frame",
    "query_table",
    "to_sql",
]


def _env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


#: from this many runs in the index on, freshness comes from the journal (see above);
#: ``TRAINRUN_JOURNAL_MIN_RUNS`` sets it (0: always)
JOURNAL_MIN_RUNS = _env_int("TRAINRUN_JOURNAL_MIN_RUNS", 5000)
#: numpy's NaT as int64 (missing start), as _index stores it
_NAT = -(2**63)
_NEWEST = f"ifnull(start, {_NAT}) DESC, id DESC"
_OLDEST = f"ifnull(start, {_NAT}) ASC, id ASC"
_RACY_NS = 2_000_000_000
#: indexes a query needs; created once per index file (dropped with its tables)
_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS runs_newest ON runs (ifnull(start, {_NAT}) DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS runs_running ON runs (id) WHERE status = 'running'",
    "CREATE INDEX IF NOT EXISTS runs_racy ON runs (id) WHERE mtime < 0",
    "CREATE INDEX IF NOT EXISTS runs_problem ON runs (id) WHERE problem IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS runs_corrupt ON runs (id) WHERE corrupt = 1",
)
# columns of the runs table a filter may name directly, with their SQL and what they hold
_BASE = {
    "id": ("id", "text"),
    "status": ("status", "text"),
    "script": ("script", "any"),
    "duration": ("duration", "any"),
    "exit_code": ("exit_code", "any"),
    "start": ("start", "time"),
    "end": ('"end"', "time"),
}


class _NoPush(Exception):
    """The filter (or order) is answered by the DataFrame path instead."""


# ---------------------------------------------------------------- freshness


def _meta(db: Any, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _big_enough(db: Any) -> bool:
    n = db.execute(f"SELECT count(*) FROM (SELECT 1 FROM runs LIMIT {JOURNAL_MIN_RUNS})")
    return bool(n.fetchone()[0] >= JOURNAL_MIN_RUNS)


def _start_journal(index: Any, path: str) -> None:
    """Create the journal and store its end: the full check that follows sees the rest."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    index.db.execute(
        "INSERT OR REPLACE INTO meta VALUES ('journal', ?)", (f"{st.st_ino}:{st.st_size}",)
    )
    index.journal_full = True  # this listing checks every folder once more


def _journal_names(index: Any, path: str, stored: str) -> set[str] | None:
    """Names appended since ``stored`` ("inode:offset"); None when the journal was replaced."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    inode, _, offset_text = stored.partition(":")
    offset = int(offset_text or 0)
    if str(st.st_ino) != inode or st.st_size < offset:
        return None
    if st.st_size == offset:
        return set()
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(st.st_size - offset)
    whole = data.rfind(b"\n") + 1  # a line being appended right now is read next time
    if whole:
        index.journal_offset = f"{inode}:{offset + whole}"
    names = {n.decode("utf-8", "surrogateescape") for n in data[:whole].split(b"\n")}
    return {n for n in names if n and n[0] != "." and n != record.ARCHIVE_DIR}


def fast_changes(
    index: Any,
) -> tuple[list[tuple[str, int]], list[tuple[str, str]], list[str], int | None] | None:
    """What a listing must re-read, from the journal: ``_Index._changes``'s answer, or None
    when every folder must be checked (a small index, or a journal just started or replaced).
    """
    if getattr(index, "journal_full", False):
        return None
    db = index.db
    if not _big_enough(db):
        return None
    runs_dir = index.runs_dir
    path = os.path.join(runs_dir, JOURNAL_FILE)
    stored = _meta(db, "journal")
    names = None if stored is None else _journal_names(index, path, stored)
    if names is None:
        _start_journal(index, path)
        return None
    base = os.path.join(runs_dir, "")
    # the runs folder's time changes when a run folder is added, removed or renamed
    dir_mtime = os.stat(runs_dir).st_mtime_ns
    gone: set[str] = set()
    new_dir_mtime = None
    if _meta(db, "dir_mtime") != str(dir_mtime):
        folders = set(record.candidate_names(runs_dir))
        ids = {r[0] for r in db.execute("SELECT id FROM runs")}
        names |= folders - ids
        gone = ids - folders
        names -= gone
        if dir_mtime <= time.time_ns() - _RACY_NS:  # a racy time is compared again next time
            new_dir_mtime = dir_mtime
    names |= {r[0] for r in db.execute("SELECT id FROM runs WHERE mtime < 0")}
    status_updates: list[tuple[str, str]] = []
    from trainrun.runs.store._index import stored_running

    running = db.execute(
        "SELECT id, sig, host, pid, pid_start FROM runs WHERE status = 'running'"
    ).fetchall()
    for name, sig, host, pid, pid_start in running:
        if name in names or name in gone:
            continue
        status = stored_running(base + name, sig, host, pid, pid_start)
        if status is None:
            names.add(name)
        elif status != "running":
            status_updates.append((status, name))
    to_read: list[tuple[str, int]] = []
    for name in sorted(names):
        try:
            to_read.append((name, os.stat(base + name).st_mtime_ns))
        except (FileNotFoundError, NotADirectoryError):
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (name,)).fetchone():
                gone.add(name)
    return to_read, status_updates, sorted(gone), new_dir_mtime


def store_offset(index: Any) -> None:
    """Inside ``_Index._write``'s transaction: how far the journal has been read."""
    offset = getattr(index, "journal_offset", None)
    if offset is not None:
        index.db.execute("INSERT OR REPLACE INTO meta VALUES ('journal', ?)", (offset,))
        index.journal_offset = None


def _refresh(index: Any) -> None:
    """Bring the index up to date (the freshness rule) without fetching every row."""
    found = fast_changes(index)
    if found is None:
        light = index.db.execute(index._LIGHT).fetchall()
        found = index._changes(light, False)
    to_read, status_updates, gone, dir_mtime = found
    if to_read or gone or status_updates or dir_mtime is not None:
        index._write(index._read(to_read), status_updates, gone, dir_mtime)
    elif getattr(index, "journal_offset", None) is not None:
        # only names of folders that are not runs were read: just move past them
        store_offset(index)


def _ensure_indexes(db: Any) -> None:
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    if {"runs_newest", "runs_running", "runs_racy", "runs_problem", "runs_corrupt"} <= have:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql in _INDEXES:
            db.execute(sql)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# ---------------------------------------------------------------- filter -> SQL


def _time_us(text: str) -> int:
    """A time literal as µs since the epoch (UTC when it names no zone), or _NoPush."""
    value = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise _NoPush from None  # pandas reads more formats (or says why not)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_PRESENT = "({c} IS NOT NULL AND typeof({c}) <> 'blob')"  # NaN is stored as a blob


class _Sql:
    def __init__(self, colmap: dict[str, str]) -> None:
        self.colmap = colmap
        self.params: list[Any] = []

    def column(self, node: Any) -> tuple[str, str]:
        if not isinstance(node, Column):
            raise _NoPush
        if node.name in _BASE:
            return _BASE[node.name]
        sqlcol = self.colmap.get(node.name)
        if sqlcol is None:
            raise _NoPush  # run_dir, or unknown (checked before)
        return sqlcol, "any"

    def node(self, node: Any) -> str:
        if isinstance(node, BoolOp):
            joiner = " AND " if node.op == "and" else " OR "
            return "(" + joiner.join(self.node(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.item)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, InList):
            return self.in_list(node)
        c, kind = self.column(node)  # a bare column: true where truthy
        if kind == "time":
            raise _NoPush
        return (
            f"(CASE typeof({c}) WHEN 'integer' THEN {c} <> 0 WHEN 'real' THEN {c} <> 0 "
            f"WHEN 'text' THEN {c} <> '' ELSE 0 END)"
        )

    def compare(self, node: Compare) -> str:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Literal):
            left, right, op = right, left, _FLIP[op]
        if not isinstance(right, Literal):
            raise _NoPush  # column against column, or against a condition
        c, kind = self.column(left)
        value = right.value
        present = _PRESENT.format(c=c)
        if value is None:
            return present if op == "!=" else f"(NOT {present})"
        sql_op = {"==": "="}.get(op, op)
        if kind == "time":
            if not isinstance(value, str):
                raise _NoPush
            self.params.append(_time_us(value))
            return f"({c} IS NOT NULL AND {c} {sql_op} ?)"
        if kind == "text" and not isinstance(value, str):
            raise _NoPush  # a text column's affinity would turn the number into text
        self.params.append(value)
        if op in ("==", "!="):
            # no affinity on these columns: 1 = 1.0 = true, '1' <> 1, as in Python
            return f"({present[1:-1]} AND {c} {sql_op} ?)"
        # '<' between a number and a text is false (the filter language), not SQL's type order
        guard = "= 'text'" if isinstance(value, str) else "IN ('integer', 'real')"
        return f"(typeof({c}) {guard} AND {c} {sql_op} ?)"

    def in_list(self, node: InList) -> str:
        c, kind = self.column(node.operand)
        values = [lit.value for lit in node.values]
        if kind == "time" or (
            kind == "text" and any(not isinstance(v, str) for v in values if v is not None)
        ):
            raise _NoPush
        present = _PRESENT.format(c=c)
        listed = [v for v in values if v is not None]
        if listed:
            self.params.extend(listed)
            mask = f"({present} AND {c} IN ({', '.join('?' * len(listed))}))"
        else:
            mask = "0"
        with_null = len(listed) < len(values)
        if with_null:
            mask = f"({mask} OR NOT {present})"
        if node.negate:
            return f"(NOT {mask})" if with_null else f"(NOT {mask} AND {present})"
        return mask


def to_sql(filt: Filter, colmap: dict[str, str]) -> tuple[str, list[Any]] | None:
    """``filt`` as an SQL condition over the runs table and its parameters; None when the
    DataFrame path must answer it. ``colmap``: column name -> the index's SQL column."""
    sql = _Sql(colmap)
    try:
        return sql.node(filt.tree), sql.params
    except _NoPush:
        return None


# ---------------------------------------------------------------- the query


def _available(cols: list[tuple[str, str, str]]) -> list[str]:
    """The listing's column names, in its order (base, then tags, flags, metrics, evaluation)."""
    from trainrun.runs.store._index import BASE_COLUMNS, GROUPS

    extra = [c[0] for c in cols]
    extra.sort(key=lambda k: GROUPS.index(k[: k.index("_") + 1]))
    return [*BASE_COLUMNS, *extra]


def _query(
    index: Any,
    filt: Filter | None,
    order: list[str] | None,
    decreasing: bool,
    latest_n: int | None,
    limit: int | None,
) -> Any:
    """(the Table of the rows asked for, the listing's columns); _NoPush for the DataFrame path."""
    db = index.db
    _ensure_indexes(db)
    cols = db.execute("SELECT name, sqlcol, kind FROM columns").fetchall()
    cols.sort(key=lambda c: int(c[1][1:]))
    colmap = {name: sqlcol for name, sqlcol, _ in cols}
    available = _available(cols)
    empty = db.execute("SELECT 1 FROM runs WHERE corrupt = 0 LIMIT 1").fetchone() is None
    where, params = "corrupt = 0", []
    if filt is not None and not empty:
        filt.check_columns(available)
        found = to_sql(filt, colmap)
        if found is None:
            raise _NoPush
        where += f" AND {found[0]}"
        params = found[1]
    select = f"SELECT {index._select(cols)} FROM runs WHERE {where}"
    one = order[0] if order is not None and len(order) == 1 else None
    if latest_n is None and limit is not None and one is not None and one in colmap:
        rows = _top_by(db, select, params, colmap[one], decreasing, limit)
    else:
        sort: str = _NEWEST
        cap = latest_n
        if latest_n is None and limit is not None:
            if order is None:
                sort = _NEWEST if decreasing else _OLDEST
            else:
                sort = _order_sql(db, order, decreasing, colmap, available, where, params)
            cap = limit
        query = f"{select} ORDER BY {sort}"
        if cap is not None:
            query += f" LIMIT {int(cap)}"
        rows = db.execute(query, params).fetchall()
    table = index._table(cols, rows)
    table.skipped = db.execute("SELECT id, problem FROM runs WHERE corrupt = 1").fetchall()
    table.partial = db.execute(
        "SELECT id, problem FROM runs WHERE problem IS NOT NULL AND corrupt = 0"
    ).fetchall()
    return table, available


def _top_by(
    db: Any, select: str, params: list[Any], c: str, decreasing: bool, limit: int
) -> list[Any]:
    """The first ``limit`` rows ordered by the index column ``c`` (missing and NaN last, ties
    newest first), through an index on ``c`` in a large store (made the first time)."""
    if _big_enough(db):
        name = f"runs_by_{c}"
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone():
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON runs ({c})")
    # numbers in some runs and texts in others: pandas orders those by their text. SQL orders
    # NULL < numbers < texts < blobs: two probes of the index tell whether both kinds are there
    low = db.execute(f"SELECT typeof(min({c})) FROM runs WHERE {c} IS NOT NULL").fetchone()[0]
    if (
        low in ("integer", "real")
        and db.execute(f"SELECT 1 FROM runs WHERE {c} >= '' AND {c} < x'' LIMIT 1").fetchone()
    ):
        raise _NoPush
    way = "DESC" if decreasing else "ASC"
    rows = db.execute(
        f"{select} AND {c} IS NOT NULL AND {c} < x'' ORDER BY {c} {way}, {_NEWEST} "
        f"LIMIT {int(limit)}",
        params,
    ).fetchall()
    if len(rows) < limit:  # then the runs without a value (or NaN), newest first
        rows += db.execute(
            f"{select} AND ({c} IS NULL OR {c} >= x'') ORDER BY {_NEWEST} "
            f"LIMIT {int(limit) - len(rows)}",
            params,
        ).fetchall()
    return list(rows)


def _order_sql(
    db: Any,
    order: list[str],
    decreasing: bool,
    colmap: dict[str, str],
    available: list[str],
    where: str,
    params: list[Any],
) -> str:
    from trainrun.runs.store import _near

    way = "DESC" if decreasing else "ASC"
    parts = []
    for key in order:
        if key not in available:
            raise FilterError(f"Cannot order by {key!r}: no such column.{_near(key, available)}")
        if key in ("start", "end"):
            c = _BASE[key][0]
        elif key in _BASE:
            c = _BASE[key][0]
        elif key in colmap:
            c = colmap[key]
        else:
            raise _NoPush  # run_dir
        # numbers in some runs and texts in others: pandas orders those by their text
        # one pass: SQL orders numbers before texts, so the least value is a number and the
        # greatest a text exactly when both kinds are present (NaN blobs left out)
        low, high = db.execute(
            f"SELECT typeof(min(v)), typeof(max(v)) FROM (SELECT CASE WHEN typeof({c}) = 'blob' "
            f"THEN NULL ELSE {c} END AS v FROM runs WHERE {where})",
            params,
        ).fetchone()
        if low in ("integer", "real") and high == "text":
            raise _NoPush
        parts.append(f"({c} IS NULL OR typeof({c}) = 'blob'), {c} {way}")
    return ", ".join([*parts, _NEWEST])


def query_table(
    index: Any,
    filt: Filter | None,
    order: str | Sequence[str] | None,
    decreasing: bool,
    latest_n: int | None,
    limit: int | None,
    *,
    refresh: Callable[[Any], None] | None = _refresh,
) -> tuple[Any, list[str], list[str] | None] | None:
    """The rows SQL selects for a listing, before the last sort and ``limit``: (the Table,
    the listing's column names, the order keys); None when the DataFrame path must answer.
    ``query_frame`` makes ls_runs's DataFrame of it, ``_rows`` the plain rows of ``trainrun
    ls`` (no pandas), finishing it the same way."""
    keys = None if order is None else ([order] if isinstance(order, str) else list(order))
    if refresh is not None:
        refresh(index)
    try:
        table, available = _query(index, filt, keys, decreasing, latest_n, limit)
    except _NoPush:
        return None
    return table, available, keys


def query_frame(
    index: Any,
    filt: Filter | None,
    order: str | Sequence[str] | None,
    decreasing: bool,
    latest_n: int | None,
    limit: int | None,
    *,
    refresh: Callable[[Any], None] | None = _refresh,
    runs_dir: str | None = None,
) -> Any:
    """ls_runs's answer (a DataFrame, before ``columns``) from the open ``index``, brought up
    to date by ``refresh`` first; None when the DataFrame path must answer."""
    found = query_table(index, filt, order, decreasing, latest_n, limit, refresh=refresh)
    if found is None:
        return None
    table, available, keys = found
    if runs_dir is not None:
        table.runs_dir = runs_dir  # run_dir values: the store's URL, not the cache's folder
    table.warn()
    df = table.frame()
    # a column none of these rows holds is still a column of the listing (as in the full table)
    df = df.reindex(columns=available)
    from trainrun.runs.store import _sort

    if keys is not None and (latest_n is not None or limit is None):
        df = _sort(df, keys, decreasing)  # the few rows latest_n kept, or all the matches
    elif keys is None and not decreasing and (latest_n is not None or limit is None):
        df = df.iloc[::-1]
    if limit is not None:
        df = df.head(limit)
    return df


def ls_query(
    runs_dir: str | os.PathLike[str],
    filt: Filter | None,
    order: str | Sequence[str] | None,
    decreasing: bool,
    latest_n: int | None,
    limit: int | None,
) -> Any:
    """ls_runs's answer through SQL over a local runs folder's index, or None when the
    DataFrame path must answer (no usable index, or a filter SQL does not cover)."""
    from trainrun.runs.store._index import _through_index

    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        from trainrun.runs.store._remote_index import RemoteRuns

        return RemoteRuns(runs_dir).ls_query(filt, order, decreasing, latest_n, limit)
    runs_dir = os.path.abspath(os.fspath(runs_dir))
    if not os.path.isdir(runs_dir):
        return None
    return _through_index(
        runs_dir, lambda index: query_frame(index, filt, order, decreasing, latest_n, limit)
    )
