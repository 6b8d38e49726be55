"""The SQLite index of a runs folder: a cache of the run folders, never the truth.

``runs/.trainrun/index.sqlite`` holds one row per run folder: the flattened record
(status, times, script, exit code, and one column per tag, flag, last metric
and evaluation value) plus what is needed to tell whether the folder changed.
Deleting the file loses nothing; a corrupt file is deleted and rebuilt; if the
index cannot be used at all (a read-only folder, a disk error), the listing is
built from the folders directly.

Freshness rule (what a listing re-reads):

* the runs folder is scanned again when its own modification time changed,
  which adding, removing or renaming a run folder does (by trainrun or by hand),
  so such runs appear or disappear at once; every run folder is then stat-ed;
* a run is re-read when its folder's modification time changed. Every record
  file is written through ``record.write_json``, which replaces the file by a
  rename, and a rename changes the folder's time; so does any file added or
  removed by hand;
* a run the index holds as *running* is also checked by the size and time of
  its files (``record.file_signature``), because ``metrics.jsonl`` grows by
  appends that leave the folder's time alone, and its status is resolved again
  (its process may have died: it then reads as *killed*);
* a time within 2 s of the listing is not trusted (file system clocks tick
  coarsely, and a second change in the same tick would go unseen): such a run
  is read again at the next listing;
* an edit made in place, inside an existing file of a finished run (an editor
  that rewrites the file where it is), keeps the folder's time and is not
  seen: ``ls_runs(refresh=True)`` (``trainrun ls --refresh``) re-reads every run.

A process keeps the last table it built per runs folder, with the index's write
token (random, replaced by every write from any process). A listing makes every
check above; only when nothing is to be re-read and the token is unchanged does it
return the kept table instead of fetching every row again. When it writes a few
re-read runs itself and the token before its write was still the kept one, it
fetches only those rows and puts them in place.

Concurrency: the database runs in WAL mode with a busy timeout, so readers do
not block writers; every update of a row is idempotent, and a row written from
an older read is corrected at the next listing because its folder time no
longer matches.
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from trainrun.exceptions import RunRecordError
from trainrun.runs import record
from trainrun.runs.store import _pushdown

__all__ = [
    "ARCHIVE_DIR",
    "BASE_COLUMNS",
    "INDEX_DIR",
    "INDEX_FILE",
    "RunRecordWarning",
    "Table",
    "load_ids",
    "load_table",
    "run_folders",
    "sanitize",
]


class _Log:
    """``logging.getLogger("trainrun.runs")``, imported when a message is logged: logging is
    3 ms of the start of every ``trainrun ls``, which logs nothing when the index is sound."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("trainrun.runs"), name)


log = _Log()

# In a hidden folder of its own: SQLite creates and deletes its -wal and -shm files
# beside the database, and doing that in the runs folder itself would change the
# runs folder's time, which tells a listing whether runs were added or removed.
INDEX_DIR = ".trainrun"
INDEX_FILE = f"{INDEX_DIR}/index.sqlite"
ARCHIVE_DIR = record.ARCHIVE_DIR
SCHEMA_VERSION = (
    "3"  # 3: prop_* and error_* columns; 2: NaN kept (as a blob) in columns of kind "nan"
)
#: times this close to "now" are not trusted (see the module docstring)
RACY_NS = 2_000_000_000
#: how long a listing waits for another process's index write before reading the folders
BUSY_TIMEOUT_S = 10.0
BASE_COLUMNS = ("run_dir", "id", "status", "start", "end", "duration", "script", "exit_code")
GROUPS = ("tag_", "flag_", "metric_", "eval_", "prop_", "error_")
_BASE_SQL = ("status", "start", "end", "duration", "script", "exit_code")
_NAT = -(2**63)  # numpy's NaT as int64: start/end missing
#: the ``corrupt`` column of a folder that is not a run (kept so that it is not read again
#: until it changes; never listed); 1 is a run whose run.json cannot be read
_NOT_RUN = 2
# newest first, as ls_runs shows them by default (NaT, the smallest integer, sorts last)
_NEWEST = f"ifnull(start, {_NAT}) DESC, id DESC"
#: The fields a listing fetches for every run, in this order, before one field per
#: tag/flag/metric/eval column: ``_Index._select`` builds its query from this tuple, and
#: a fetched row's field is read by name through ``_AT`` (its position in the query), so
#: the query and the code that reads its rows cannot disagree. (A running run's signature
#: and process are fetched for it alone: strings and numbers for 10,000 rows cost time.)
_FIXED = ("id", "mtime", "problem", "corrupt", *_BASE_SQL)
_AT = {name: i for i, name in enumerate(_FIXED)}
_ID, _MTIME, _PROBLEM, _CORRUPT, _STATUS, _START = (
    _AT[name] for name in ("id", "mtime", "problem", "corrupt", "status", "start")
)
#: how _select fetches a field that is not its column as stored (missing times as NaT)
_FETCHED = {"start": f"ifnull(start, {_NAT})", "end": f'ifnull("end", {_NAT})'}


#: a write of this many rows (a rebuild) is made without syncing to disk
BULK_ROWS = 1000
#: the last table built per runs folder in this process
_TABLES: dict[str, _Kept] = {}
#: a listing that wrote at most this many changed runs fetches just those rows again
PATCH_MAX = 1000
_TABLES_KEPT = 4
_TABLES_LOCK = threading.Lock()


class _Kept(NamedTuple):
    token: str  # the index's write token the rows belong to
    table: Table
    cols: list[tuple[str, str, str]]  # as _Index._snapshot returns them
    rows: list[tuple[Any, ...]]


class RunRecordWarning(UserWarning):
    """A run folder that could not be read fully; the listing skipped it or part of it."""


#: run_name and run_note (what a person wrote about a run: record._annotations) come first
GROUPS = ("run_", *GROUPS)  # type: ignore[assignment]  # one more group, first
sanitize = record.column_suffix
#: the folders a listing looks at (record owns the rule; read_row drops non-runs)
run_folders = record.candidate_names


# ---------------------------------------------------------------- reading one run


def _load_json(path: str, problems: list[str] | None) -> Any:
    """record.read_json's rules with plain strings (a bulk rebuild reads 40,000 files)."""
    try:
        value = record.parse_json(record.read_bytes(path), path, short=problems is not None)
    except FileNotFoundError:
        return None
    except (RunRecordError, OSError) as exc:
        if problems is None:
            if isinstance(exc, RunRecordError):
                raise
            raise RunRecordError(f"Could not read {path}: {exc}") from exc
        problems.append(str(exc))
        return None
    if not isinstance(value, dict):
        if problems is None:
            raise RunRecordError(f"{path} does not hold a JSON object; fix or delete the file.")
        problems.append(f"{os.path.basename(path)} does not hold a JSON object")
        return None
    return value


def _epoch_us(value: Any) -> int | None:
    """An ISO-8601 time as integer microseconds since the epoch (None if absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1_000_000)


def _scalar(value: Any) -> Any:
    """A value as the index stores it: NaN as the blob ``_NAN`` (SQLite would make a NaN
    NULL, and NaN is a value, not a missing one), an integer beyond SQLite's 64 bits as a
    float (or, beyond a float, as its text)."""
    kind = type(value)  # exact types first: called for every value of every run
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else _big_int(value)
    if kind is float:
        return _NAN if value != value else value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _scalar(int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return _scalar(float(value))
    return record.dumps(value)  # lists and mappings are shown as their JSON text


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: how a NaN is stored: a blob, which no flag, metric or evaluation value is otherwise
_NAN = b"NaN"


def _big_int(value: int) -> float | str:
    try:
        return float(value)
    except OverflowError:
        return str(value)


@functools.lru_cache(maxsize=8192)
def _column(prefix: str, key: str) -> str:
    """``prefix + record.column_suffix(key)``, cached: the same names recur in every run."""
    return prefix + record.column_suffix(key)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


_NOT_METRICS = ("step", "time", "epoch")


def _last_metrics(path: str, problems: list[str]) -> dict[str, Any]:
    """record.last_metrics(record.read_metrics(...)), parsing the whole file in one call."""
    try:
        history = record.parse_metrics(record.read_bytes(path, record.METRICS_LIMIT))
    except FileNotFoundError:
        return {}
    except OSError as exc:  # NotRegularFileError is one too
        problems.append(str(exc))
        return {}
    except RunRecordError as exc:
        problems.append(str(exc))
        return {}
    # Fast path: dict.update runs in C. Where the merged value of every key is not
    # None it is that key's last value, and the last non-null one, as last_metrics
    # wants; a None anywhere (a metric logged as null last) takes the exact loop.
    last: dict[str, Any] = {}
    for rec in history:  # parse_metrics keeps objects only
        last.update(rec)
    if None in last.values():
        return record.last_metrics(history)
    for key in _NOT_METRICS:
        last.pop(key, None)
    return last


def read_row(
    run_dir: str, name: str, now: float | None = None, *, _again: bool = False
) -> dict[str, Any]:
    """One run folder as a flat row (the index's and the listing's unit).

    Keys: ``id``, ``status`` (resolved), ``start``/``end`` (µs since the epoch),
    ``duration``, ``script``, ``exit_code``, ``host``, ``pid``, ``pid_start``,
    ``problem`` (text or None) and ``extra``: ``{"tag_*"|"flag_*"|"metric_*"|"eval_*": value}``.
    Raises RunRecordError when run.json is corrupt (the run cannot be listed).
    """
    path = run_dir + os.sep + name  # plain joins: a rebuild makes 50,000 of them
    run = _load_json(path + os.sep + record.RUN_FILE, None)
    problems: list[str] = []
    if run is None:
        if not record.is_run_folder(path):
            # a stray folder (data/, an empty folder): never a run, never listed
            return {"id": name, "status": None, "not_run": True, "extra": {}, "problem": None}
        status = record.starting_or_killed(path, now)
        run = {}
        if status == "killed":
            problems.append(f"{record.RUN_FILE} is missing")
    else:
        run = record.check_run_fields(run, problems)
        status = record.resolve_status(run)
        if status == "killed" and not _again and record.finished_since(path, run):
            # the owner finished the record and exited between our read and the check
            return read_row(run_dir, name, now, _again=True)
    row: dict[str, Any] = {
        "id": name,
        "status": status,
        "start": _epoch_us(run.get("start")),
        "end": _epoch_us(run.get("end")),
        "duration": _number(run.get("duration")),
        "script": run.get("script"),
        "exit_code": run.get("exit_code"),
        "host": run.get("host"),
        "pid": run.get("pid"),
        "pid_start": run.get("pid_start"),
    }
    tags = run.get("tags")
    extra: dict[str, Any] = (
        {_column("tag_", str(k)): _scalar(v) for k, v in tags.items()} if tags else {}
    )
    for field in ("name", "note"):
        if isinstance(run.get(field), str):
            extra["run_" + field] = run[field]
    flags = _load_json(path + os.sep + record.FLAGS_FILE, problems) or {}
    values, _ = record.check_flags(flags, problems)
    extra.update({_column("flag_", str(k)): _scalar(v) for k, v in values.items()})
    metrics = _last_metrics(path + os.sep + record.METRICS_FILE, problems)
    extra.update({_column("metric_", k): _scalar(v) for k, v in metrics.items()})
    evaluation = _load_json(path + os.sep + record.EVALUATION_FILE, problems) or {}
    extra.update({_column("eval_", k): _scalar(v) for k, v in evaluation.items()})
    # tfruns' listing: properties (write_run_metadata) and the error as columns
    properties = run.get("properties")
    if isinstance(properties, dict):
        extra.update({_column("prop_", str(k)): _scalar(v) for k, v in properties.items()})
    for key, column in (("error", "error_message"), ("traceback", "error_traceback")):
        if isinstance(run.get(key), str) and run[key]:
            extra[column] = run[key]
    row["extra"] = extra
    row["problem"] = "; ".join(problems) or None
    return row


# ---------------------------------------------------------------- the table a listing returns


class Table:
    """Rows as column lists: base columns first, then the tag/flag/metric/eval columns."""

    def __init__(self, runs_dir: str) -> None:
        self.runs_dir = runs_dir
        self.ids: list[str] = []
        self.base: dict[str, list[Any]] = {c: [] for c in _BASE_SQL}
        self.extra: dict[str, list[Any]] = {}  # name -> values, in order of first sight
        self.bools: set[str] = set()  # columns whose values were all booleans
        self.skipped: list[tuple[str, str]] = []  # (id, why) runs that could not be listed
        self.partial: list[tuple[str, str]] = []  # (id, what) runs listed without some file
        self.presorted = False  # rows already newest first
        self._frame: Any = None  # the DataFrame, built once (a kept table is listed again)

    @classmethod
    def from_rows(cls, runs_dir: str, rows: Iterable[dict[str, Any]]) -> Table:
        table = cls(runs_dir)
        not_bool: set[str] = set()
        n = 0
        for row in rows:
            table.ids.append(row["id"])
            for c in _BASE_SQL:
                table.base[c].append(row.get(c))
            for c in ("start", "end"):
                if table.base[c][-1] is None:
                    table.base[c][-1] = _NAT
            for key, value in row.get("extra", {}).items():
                col = table.extra.get(key)
                if col is None:
                    col = table.extra[key] = [None] * n
                if value.__class__ is bytes:  # _NAN (the only bytes a row holds)
                    value = math.nan
                col.append(value)
                if isinstance(value, bool):
                    table.bools.add(key)
                elif value is not None:
                    not_bool.add(key)
            n += 1
            for col in table.extra.values():
                if len(col) < n:
                    col.append(None)
            if row.get("problem"):
                table.partial.append((row["id"], row["problem"]))
        table.bools -= not_bool
        return table

    def warn(self) -> None:
        """Report runs that were skipped or listed in part (one warning for all)."""
        parts = []
        if self.skipped:
            shown = "; ".join(f"{i}: {why}" for i, why in self.skipped[:5])
            more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            parts.append(
                f"{len(self.skipped)} run(s) skipped, their run.json unreadable: {shown}{more}"
            )
        if self.partial:
            shown = "; ".join(f"{i}: {why}" for i, why in self.partial[:5])
            more = f" (and {len(self.partial) - 5} more)" if len(self.partial) > 5 else ""
            parts.append(f"{len(self.partial)} run(s) listed in part: {shown}{more}")
        if parts:
            warnings.warn(
                f"In {self.runs_dir}: " + ". ".join(parts) + ". Fix or remove those files.",
                RunRecordWarning,
                stacklevel=3,  # the caller of ls_runs
            )

    def frame(self) -> Any:
        """The pandas DataFrame (built from whole columns, not row by row); a copy each call."""
        if self._frame is None:
            self._frame = self._build_frame()
        # deep: the caller may change its frame; the strings themselves are shared, not copied
        return self._frame.copy()

    def _build_frame(self) -> Any:
        import numpy as np
        import pandas as pd

        n = len(self.ids)
        prefix = os.path.join(self.runs_dir, "")
        data: dict[str, Any] = {
            "run_dir": [prefix + i for i in self.ids],
            "id": self.ids,
            "status": self.base["status"],
        }
        for c in ("start", "end"):
            # integer µs -> datetime64[ns, UTC] exactly, missing values as NaT
            us = np.array(self.base[c], dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
            ns = np.where(us == _NAT, _NAT, us * 1000)
            data[c] = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
        # read_row stores numbers or None here: None becomes NaN / <NA>
        data["duration"] = np.array(self.base["duration"], dtype=float) if n else np.zeros(0)
        data["script"] = self.base["script"]
        data["exit_code"] = pd.array(self.base["exit_code"], dtype="Int64")
        names = [k for k, v in self.extra.items() if any(x is not None for x in v)]
        names.sort(
            key=lambda k: GROUPS.index(k[: k.index("_") + 1])
        )  # stable: keeps first-seen order
        for name in names:
            values = self.extra[name]
            if name in self.bools:
                data[name] = pd.array(
                    [None if v is None else bool(v) for v in values], dtype="boolean"
                )
                if not data[name].isna().any():
                    data[name] = data[name].astype(bool)
            else:
                data[name] = values
        df = pd.DataFrame(data, copy=False)
        for name in names:
            if df[name].dtype == object:
                # a column of numbers with gaps arrives as objects: make it numeric
                converted = pd.Series(df[name].tolist()).infer_objects()
                if converted.dtype != object:
                    df[name] = converted.to_numpy()
        return df


# ---------------------------------------------------------------- the index


def _signature(path: str) -> str:
    return ",".join(f"{x:.0f}" for x in record.file_signature(path))


def stored_running(
    path: str, sig: str, host: str | None, pid: int | None, pid_start: int | None
) -> str | None:
    """The status now of a run the index holds as running, from its stored process, or
    None when its files changed since (it is read again). The files are compared again
    after a dead process is found: a run that wrote its end and then exited between
    the two looks is read, not called killed."""
    if _signature(path) != sig:
        return None
    status = record.resolve_status(
        {"status": "running", "host": host, "pid": pid, "pid_start": pid_start}
    )
    if status != "running" and _signature(path) != sig:
        return None
    return status


class _Index:
    def __init__(self, runs_dir: str) -> None:
        self.runs_dir = runs_dir
        self.path = os.path.join(runs_dir, INDEX_FILE)
        os.makedirs(os.path.join(runs_dir, INDEX_DIR), exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.debug("index %s runs in journal mode %s", self.path, mode)
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._ensure_schema()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def _ensure_schema(self) -> None:
        db = self.db
        have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {"meta", "runs", "columns"} <= have:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row and row[0] == SCHEMA_VERSION:
                return
        db.execute("BEGIN IMMEDIATE")
        try:
            have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            row = (
                db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if "meta" in have
                else None
            )
            if not (row and row[0] == SCHEMA_VERSION and {"runs", "columns"} <= have):
                for t in ("meta", "runs", "columns"):
                    db.execute(f"DROP TABLE IF EXISTS {t}")
                db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                db.execute("CREATE TABLE columns (name TEXT PRIMARY KEY, sqlcol TEXT, kind TEXT)")
                # mtime: the folder's time when read (-1: read again); sig: file signature
                # of a running run; problem: why the run is (partly) unreadable
                db.execute(
                    "CREATE TABLE runs (id TEXT PRIMARY KEY, mtime INTEGER, sig TEXT, "
                    "host TEXT, pid INTEGER, pid_start INTEGER, problem TEXT, corrupt INTEGER, "
                    'status TEXT, start INTEGER, "end" INTEGER, duration, script, exit_code)'
                )
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- one query gives both what refresh compares and what the listing shows
    _STORED = ("id", "mtime", "sig", "host", "pid", "pid_start", "problem", "corrupt")

    def _select(self, cols: list[tuple[str, str, str]]) -> str:
        """The fields of a row: ``_FIXED`` (read through ``_AT``), then ``cols``' columns."""
        fixed = (_FETCHED.get(name, f'"{name}"') for name in _FIXED)
        return ", ".join([*fixed, *(c[1] for c in cols)])

    def _snapshot(self) -> tuple[list[tuple[str, str, str]], list[tuple[Any, ...]]]:
        cols = self.db.execute("SELECT name, sqlcol, kind FROM columns").fetchall()
        cols.sort(key=lambda c: int(c[1][1:]))  # in the order they were first seen
        query = f"SELECT {self._select(cols)} FROM runs ORDER BY {_NEWEST}"
        return cols, self.db.execute(query).fetchall()

    #: what the freshness check needs of every row: the first fields of a full row, so
    #: that ``_AT`` reads both
    _LIGHT = f"SELECT {', '.join(_FIXED[: _STATUS + 1])} FROM runs ORDER BY {_NEWEST}"

    def newest_ids(self) -> list[str]:
        """Bring the index up to date and return the run ids, newest first (no full fetch)."""
        query = self._LIGHT
        rows = self.db.execute(query).fetchall()
        to_read, status_updates, gone, dir_mtime = self._changes(rows, False)
        if to_read or gone or dir_mtime is not None or status_updates:
            self._write(self._read(to_read), status_updates, gone, dir_mtime)
            if to_read or gone:
                rows = self.db.execute(query).fetchall()
        return [r[_ID] for r in rows if not r[_CORRUPT]]

    def listing(self, full: bool = False) -> Table:
        """Bring the index up to date with the folders and return the table.

        The folders are checked in full every time (the freshness rule); what a
        process may skip is fetching and converting the table again: the last
        table this process built is kept with the index's write token, which
        every write replaces (from any process), and is returned while no write
        happened since and the check finds nothing to update. When this process
        itself writes a few changed runs, and no other process wrote since its
        rows were fetched, only those runs' rows are fetched again.
        """
        token = self._token()
        kept = None if full else _TABLES.get(self.runs_dir)
        found = None
        if kept is not None and token is not None and kept.token == token:
            cols, rows = kept.cols, kept.rows
            # fetch what the check needs only (nothing, when the journal answers it)
            found = _pushdown.fast_changes(self)
            light = [] if found is not None else self.db.execute(self._LIGHT).fetchall()
        else:
            kept = None
            cols, rows = self._snapshot()
            light = rows
        to_read, status_updates, gone, dir_mtime = found or self._changes(light, full)
        if to_read or gone or dir_mtime is not None or status_updates:
            alone, token = self._write(self._read(to_read), status_updates, gone, dir_mtime, token)
            changed = {name for name, _ in to_read} | {name for _, name in status_updates}
            patched = (
                self._patch(cols, rows, changed, set(gone))
                if alone and len(changed) + len(gone) <= PATCH_MAX
                else None
            )
            if patched is None:
                # the token is read before the rows: a table kept under it is never older
                token = self._token()
                cols, rows = self._snapshot()
            else:
                cols, rows = patched
        elif kept is not None:
            return kept.table
        table = self._table(cols, rows)
        table.presorted = True
        if token is not None:
            with _TABLES_LOCK:  # the dashboard lists from several threads
                _TABLES.pop(self.runs_dir, None)
                _TABLES[self.runs_dir] = _Kept(token, table, cols, rows)
                while len(_TABLES) > _TABLES_KEPT:
                    del _TABLES[next(iter(_TABLES))]  # the least recently built
        return table

    def _patch(
        self,
        cols: list[tuple[str, str, str]],
        rows: list[tuple[Any, ...]],
        changed: set[str],
        gone: set[str],
    ) -> tuple[list[tuple[str, str, str]], list[tuple[Any, ...]]] | None:
        """``rows`` with the changed runs fetched again and the gone ones dropped.

        Only valid when this process's write was the only one since ``rows`` were
        fetched (the caller checks the token). None when the columns changed (a
        new metric or flag name): the caller then fetches everything.
        """
        now = self.db.execute("SELECT name, sqlcol, kind FROM columns").fetchall()
        now.sort(key=lambda c: int(c[1][1:]))
        if [c[:2] for c in now] != [c[:2] for c in cols]:
            return None
        fresh = []
        names = sorted(changed)
        for i in range(0, len(names), 500):  # within SQLite's limit on parameters
            part = names[i : i + 500]
            marks = ", ".join("?" * len(part))
            query = f"SELECT {self._select(now)} FROM runs WHERE id IN ({marks})"
            fresh += self.db.execute(query, part).fetchall()
        drop = changed | gone
        out = [r for r in rows if r[_ID] not in drop]
        out += fresh
        # as _NEWEST orders them: start (missing: _NAT, last), then id, both descending
        out.sort(key=lambda r: (r[_START], r[_ID]), reverse=True)
        return now, out

    def _token(self) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
        if row is None:
            # an index from before tokens (or a new one): give it one, once
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('token', ?)", (os.urandom(12).hex(),)
            )
            row = self.db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
        return row[0] if row else None

    def _changes(
        self, rows: list[tuple[Any, ...]], full: bool
    ) -> tuple[list[tuple[str, int]], list[tuple[str, str]], list[str], int | None]:
        """What to read again, statuses to update, rows to drop, and the folder time to store."""
        if not full:  # a large index: the journal names what changed (see _pushdown)
            found = _pushdown.fast_changes(self)
            if found is not None:
                return found
        base = os.path.join(self.runs_dir, "")
        stat = os.stat
        # The runs folder's own time changes when a run folder is added, removed or renamed:
        # while it matches the time stored at the last scan, the index's ids are the folders.
        dir_mtime = stat(self.runs_dir).st_mtime_ns
        stored = self.db.execute("SELECT value FROM meta WHERE key = 'dir_mtime'").fetchone()
        if not full and stored is not None and stored[0] == str(dir_mtime):
            names = [r[_ID] for r in rows]
            new_dir_mtime = None
            aligned = True
        else:
            aligned = False
            names = run_folders(self.runs_dir)
            # a time within the racy window may hide a second change: scan again next time
            racy = dir_mtime > time.time_ns() - RACY_NS
            new_dir_mtime = None if racy else dir_mtime
        mtimes: list[int | None]
        try:
            mtimes = [stat(base + name).st_mtime_ns for name in names]
        except FileNotFoundError:  # a folder removed while we looked: the slow way
            mtimes = []
            for name in names:
                try:
                    mtimes.append(stat(base + name).st_mtime_ns)
                except FileNotFoundError:
                    mtimes.append(None)
        # (id, the index's row or None for a new folder, the folder's time or None if gone)
        looks: list[tuple[str, tuple[Any, ...] | None, int | None]]
        if aligned:
            # names are the rows' ids, in order: pick out the few rows worth a look in one pass
            looks = [
                (r[_ID], r, m)
                for r, m in zip(rows, mtimes, strict=True)
                if m != r[_MTIME] or r[_STATUS] == "running"
            ]
        else:
            known = {r[_ID]: r for r in rows}
            looks = [(n, known.get(n), m) for n, m in zip(names, mtimes, strict=True)]
            looks += [(n, known[n], None) for n in known.keys() - set(names)]
        to_read: list[tuple[str, int]] = []
        status_updates: list[tuple[str, str]] = []
        gone: list[str] = []
        for name, old, mtime in looks:
            if mtime is None:
                gone.append(name)
            elif full or old is None or old[_MTIME] != mtime:
                to_read.append((name, mtime))
            elif old[_STATUS] == "running":
                owner = self.db.execute(
                    "SELECT sig, host, pid, pid_start FROM runs WHERE id = ?", (name,)
                ).fetchone()
                status = stored_running(base + name, *owner)
                if status is None:
                    to_read.append((name, mtime))
                elif status != "running":
                    status_updates.append((status, name))
        if new_dir_mtime is not None and stored is not None and stored[0] == str(new_dir_mtime):
            new_dir_mtime = None  # already stored
        return to_read, status_updates, gone, new_dir_mtime

    def _read(self, to_read: list[tuple[str, int]]) -> list[dict[str, Any]]:
        now_ns = time.time_ns()
        if len(to_read) >= PARALLEL_MIN_RUNS:
            rows = _read_in_workers(self.runs_dir, to_read, now_ns)
            if rows is not None:
                return rows
        return _read_runs(self.runs_dir, to_read, now_ns)

    def _write(
        self,
        rows: list[dict[str, Any]],
        status_updates: list[tuple[str, str]],
        gone: list[str],
        dir_mtime: int | None,
        expected: str | None = None,
    ) -> tuple[bool, str]:
        """Store the rows; (whether the token was still ``expected``, the new token)."""
        db = self.db
        # a rebuild: no sync to disk inside its one transaction (the index is a cache: one
        # damaged by a power cut is deleted and rebuilt); 0.15-0.25 s at 100,000 rows here
        bulk = len(rows) >= BULK_ROWS
        if bulk:
            db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
            alone = expected is not None and before is not None and before[0] == expected
            # read the column map inside the write lock: another process may have added some
            cols = {
                name: (sqlcol, kind)
                for name, sqlcol, kind in db.execute("SELECT name, sqlcol, kind FROM columns")
            }
            existing = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
            for row in rows:
                for key, value in row.get("extra", {}).items():
                    entry = cols.get(key)
                    if entry is None:
                        n = len(cols) + 1
                        while f"c{n}" in existing:
                            n += 1
                        sqlcol = f"c{n}"
                        kind = (
                            "nan"
                            if value.__class__ is bytes  # _NAN, or a copy of it from a worker
                            else "bool"
                            if isinstance(value, bool) or value is None
                            else "other"
                        )
                        db.execute(f"ALTER TABLE runs ADD COLUMN {sqlcol}")
                        db.execute("INSERT INTO columns VALUES (?, ?, ?)", (key, sqlcol, kind))
                        existing.add(sqlcol)
                        cols[key] = (sqlcol, kind)
                    elif value.__class__ is bytes and entry[1] != "nan":
                        db.execute("UPDATE columns SET kind = 'nan' WHERE name = ?", (key,))
                        cols[key] = (entry[0], "nan")
                    elif entry[1] == "bool" and value is not None and not isinstance(value, bool):
                        db.execute("UPDATE columns SET kind = 'other' WHERE name = ?", (key,))
                        cols[key] = (entry[0], "other")
            fixed = [*self._STORED, *_BASE_SQL]
            at_corrupt = fixed.index("corrupt")
            # rows with the same columns go in one executemany
            groups: dict[tuple[str, ...], list[list[Any]]] = {}
            for row in rows:
                extra = row.get("extra", {})
                keys = tuple(extra)
                values = [row.get(c) for c in fixed]
                values[at_corrupt] = _NOT_RUN if row.get("not_run") else row.get("corrupt", 0)
                values.extend(extra.values())
                groups.setdefault(keys, []).append(values)
            for keys, batch in groups.items():
                names = ", ".join([*(f'"{c}"' for c in fixed), *(cols[k][0] for k in keys)])
                marks = ", ".join("?" * (len(fixed) + len(keys)))
                db.executemany(f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})", batch)
            db.executemany("UPDATE runs SET status = ? WHERE id = ?", status_updates)
            db.executemany("DELETE FROM runs WHERE id = ?", [(g,) for g in gone])
            if dir_mtime is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('dir_mtime', ?)", (str(dir_mtime),))
            _pushdown.store_offset(self)  # how far the journal was read
            # a new random token on every write: a table a process keeps is good while the
            # token is unchanged (random, so that a rebuilt index never repeats an old one)
            token = os.urandom(12).hex()
            db.execute("INSERT OR REPLACE INTO meta VALUES ('token', ?)", (token,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            if bulk:
                db.execute("PRAGMA synchronous = NORMAL")
        return alone, token

    def _table(self, cols: list[tuple[str, str, str]], rows: list[tuple[Any, ...]]) -> Table:
        table = Table(self.runs_dir)
        good = [r for r in rows if not r[_CORRUPT]]
        table.skipped = [(r[_ID], r[_PROBLEM]) for r in rows if r[_CORRUPT] == 1]
        table.partial = [(r[_ID], r[_PROBLEM]) for r in good if r[_PROBLEM]]
        # one list per field, transposed in C; then each field taken by name
        columns: list[Any] = (
            list(zip(*good, strict=True)) if good else [()] * (len(_FIXED) + len(cols))
        )
        table.ids = list(columns[_ID])
        for c in _BASE_SQL:
            table.base[c] = columns[_AT[c]]
        first = len(_FIXED)
        for j, (name, _, kind) in enumerate(cols):
            values = columns[first + j]
            if kind == "nan":  # the blob that stands for NaN, back to NaN
                values = [math.nan if v == _NAN else v for v in values]
            table.extra[name] = values
            if kind == "bool":
                table.bools.add(name)
        return table


def _read_runs(runs_dir: str, to_read: list[tuple[str, int]], now_ns: int) -> list[dict[str, Any]]:
    """The index rows of the runs ``to_read`` ((name, folder time) pairs), read at ``now_ns``."""
    base = os.path.join(runs_dir, "")
    rows = []
    for name, mtime in to_read:
        sig = None  # before the read: a corrupt run.json raises out of it
        try:
            row = read_row(runs_dir, name, now_ns / 1e9)
            if row["status"] == "running":
                # a running run is compared by its file signature next time: take the
                # signature first, then read again, so that a write in between makes
                # the stored signature old (read again later), never the content
                sig = _signature(base + name)
                row = read_row(runs_dir, name, now_ns / 1e9)
        except RunRecordError as exc:
            row = {"id": name, "status": "corrupt", "problem": str(exc), "corrupt": 1}
        starting = row["status"] == "running" and row.get("pid") is None
        if mtime > now_ns - RACY_NS or starting:
            row["mtime"], row["sig"] = -1, None
        else:
            row["mtime"], row["sig"] = mtime, sig
        rows.append(row)
    return rows


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


#: from this many runs to read at once (a rebuild), they are read by worker processes,
#: one per core (``TRAINRUN_PARALLEL_MIN_RUNS``; ``TRAINRUN_READ_WORKERS`` caps the count)
PARALLEL_MIN_RUNS = _env_int("TRAINRUN_PARALLEL_MIN_RUNS", 20_000)
_CHUNK_RUNS = 2_000


def _cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return min(cores, _env_int("TRAINRUN_READ_WORKERS", 16))


def _read_in_workers(
    runs_dir: str, to_read: list[tuple[str, int]], now_ns: int, workers: int | None = None
) -> list[dict[str, Any]] | None:
    """``_read_runs`` spread over worker processes, in chunks, in order; None when there is
    one core, or workers cannot be forked safely here (the caller then reads the runs itself).

    Reading is what a rebuild spends its time on: 4 files a run opened, read and parsed
    (``read_row``, with every check it makes: links refused, reads bounded, damaged files
    noted). The workers return the rows; the one writer stays this process.

    Workers are forked, which starts one in about a millisecond and runs nothing of the
    caller's again. Only from a process with one thread (``trainrun ls``, a script): a fork
    beside other threads (the dashboard's, a notebook's) may copy a lock another thread
    holds, and the other start methods import the caller's main module again.
    """
    workers = min(workers or _cores(), -(-len(to_read) // _CHUNK_RUNS))
    if workers < 2 or threading.active_count() != 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    if multiprocessing.current_process().daemon:
        return None  # a daemonic process (a multiprocessing.Pool's worker) has no children
    chunks = [to_read[i : i + _CHUNK_RUNS] for i in range(0, len(to_read), _CHUNK_RUNS)]
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = pool.map(_read_runs, [runs_dir] * len(chunks), chunks, [now_ns] * len(chunks))
            return [row for part in parts for row in part]
    except (OSError, BrokenProcessPool) as exc:  # a process limit, no /dev/shm...
        log.debug("reading runs in worker processes failed (%s); reading them here", exc)
        return None


def _remove_index(runs_dir: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(os.path.join(runs_dir, INDEX_FILE + suffix))
        except FileNotFoundError:
            pass


def _scan(runs_dir: str) -> Table:
    """The listing without the index: read every folder."""
    rows = []
    skipped = []
    now = time.time()
    for name in run_folders(runs_dir):
        try:
            row = read_row(runs_dir, name, now)
        except RunRecordError as exc:
            skipped.append((name, str(exc)))
            continue
        if not row.get("not_run"):
            rows.append(row)
    table = Table.from_rows(runs_dir, rows)
    table.skipped = skipped
    return table


def _through_index(runs_dir: str, use: Any) -> Any:
    """``use(index)`` on the runs folder's index; None when the index cannot be used."""
    for attempt in (1, 2):
        index = None
        try:
            index = _Index(runs_dir)
            return use(index)
        except sqlite3.DatabaseError as exc:
            # sqlite3.OperationalError (locked too long, read-only folder, disk full) is a
            # DatabaseError too: only a damaged file is worth deleting and rebuilding
            damaged = not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc)
            if index is not None:
                index.close()
                index = None
            if damaged and attempt == 1:
                log.warning(
                    "The run index %s is damaged (%s); rebuilding it.",
                    os.path.join(runs_dir, INDEX_FILE),
                    exc,
                )
                _remove_index(runs_dir)
                continue
            log.warning(
                "The run index in %s cannot be used (%s); reading the run folders.", runs_dir, exc
            )
            return None
        except OSError as exc:
            log.warning(
                "The run index in %s cannot be used (%s); reading the run folders.", runs_dir, exc
            )
            return None
        finally:
            if index is not None:
                index.close()
    return None  # pragma: no cover - the loop returns


def load_table(
    runs_dir: str | os.PathLike[str], *, refresh: bool = False, use_index: bool = True
) -> Table:
    """Every run of ``runs_dir`` as a Table, through the index when it can be used."""
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # this machine's cache of it
        from trainrun.runs.store._remote_index import RemoteRuns

        return RemoteRuns(runs_dir).load_table(refresh)  # type: ignore[no-any-return]
    runs_dir = os.path.abspath(os.fspath(runs_dir))
    if not os.path.isdir(runs_dir):
        return Table(runs_dir)
    table = (
        _through_index(runs_dir, lambda index: index.listing(full=refresh)) if use_index else None
    )
    return table if table is not None else _scan(runs_dir)


def load_ids(runs_dir: str | os.PathLike[str]) -> list[str]:
    """The ids of the listable runs of ``runs_dir``, newest first (cheaper than a table)."""
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        from trainrun.runs.store._remote_index import RemoteRuns

        return RemoteRuns(runs_dir).ids()
    runs_dir = os.path.abspath(os.fspath(runs_dir))
    if not os.path.isdir(runs_dir):
        return []
    ids = _through_index(runs_dir, lambda index: index.newest_ids())
    if ids is not None:
        return ids
    table = _scan(runs_dir)
    start = table.base["start"]
    order = sorted(range(len(table.ids)), key=lambda i: (start[i], table.ids[i]), reverse=True)
    return [table.ids[i] for i in order]
