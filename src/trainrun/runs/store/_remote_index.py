"""Listing a shared store: a local SQLite cache of its index, refreshed incrementally.

Each machine keeps, in ``cache_root(url) / "index"``, an index of the same shape
as a local runs folder's (``_index._Index``): the listing, filters pushed into
SQL, ``latest_n`` and ``limit`` then cost what they cost locally.

A refresh asks the store only what changed: every row a machine writes comes
with a change marker ``.trainrun/changes/<ns>-<run id>``, named by the
writer's time, so one listing *after* the last marker seen returns the new ones
(a marker can land late, from a slow writer or a clock a little behind: the
last ``WINDOW_S`` seconds, 2 minutes, are listed again, and markers already seen skipped).
The rows of the runs named are then fetched; a row gone from the store (a run
purged) drops out. The first refresh (or ``refresh=True``) lists every row.

Markers are kept for ``changes_horizon()`` (``TRAINRUN_CHANGES_HORIZON``, a day),
then deleted by a machine that lists (``RemoteRuns.compact``); a cache refreshed
longer ago than that, or a snapshot older than that, is not trusted to go on from:
the listing starts again (every row, or a recent snapshot).

A *running* row whose heartbeat is older than ``heartbeat_timeout()`` reads as
*killed* (its machine died, or lost the store for that long), in the listing and in
every local copy of the run (``fetch``, ``mirror``: ``show``, ``view``, the
dashboard); a later heartbeat makes it *running* again.

The mirror (``mirror``) is what ``trainrun ui`` and ``trainrun board`` serve over a
store, brought up to date as they ask: only rows that changed are looked at, and of
those runs only files whose size or time changed are fetched (appended to, when they
grew, so that TensorBoard's open event files see the new records).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import shutil
import stat
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from trainrun._atomic import replace_text
from trainrun.exceptions import RunNotFoundError, RunRecordError
from trainrun.runs import record
from trainrun.runs.store import _pushdown
from trainrun.runs.store._objectstore import (
    CHANGES,
    IDS,
    INDEX,
    META,
    ObjectStore,
    StoreError,
    StoreUnavailableError,
    change_key,
    parse_url,
)
from trainrun.runs.store._sync import (
    _env_seconds,
    _files,
    cache_root,
    heartbeat_timeout,
    push_pending,
)

__all__ = ["RemoteRuns", "StaleListingWarning"]

log = logging.getLogger("trainrun.runs")

SNAPSHOT = f"{META}/snapshot.jsonl.gz"
#: a snapshot is written by a machine that lists a store of at least this many runs, when the
#: store's is older than SNAPSHOT_EVERY_S; each machine looks at most every SNAPSHOT_CHECK_S
SNAPSHOT_MIN_RUNS = 1000
SNAPSHOT_EVERY_S = 3600.0
SNAPSHOT_CHECK_S = 600.0
#: markers this recent are listed again at every refresh: a writer names its marker by its
#: clock before the PUT (which may take up to its 10 s timeout, retried), and clocks differ a
#: little (NTP keeps them within a second); a refresh costs a LIST of this window's markers
WINDOW_S = 120.0
_FETCHERS = 16
#: a RemoteRuns refreshes the cache at most once in this many seconds (one verb's questions)
_SAME_VERB_S = 1.0
#: set by ``from_cache()``: listings answered by the cache as it is, the store not asked
_CACHE_ONLY: ContextVar[bool] = ContextVar("trainrun_store_cache_only", default=False)


@contextmanager
def from_cache() -> Iterator[None]:
    """Within it, ``ls_runs("s3://...")`` and the other listings of a store answer from this
    machine's cache of its index as it is, without asking the store what changed: the
    dashboard asks the store itself, at its refresh interval (``RemoteRuns.update``)."""
    token = _CACHE_ONLY.set(True)
    try:
        yield
    finally:
        _CACHE_ONLY.reset(token)


def _row(data: bytes, run_id: str) -> dict[str, Any] | None:
    """A row as the store keeps it, as the index's writer takes it (values as _index stores them)."""
    from trainrun.runs.store._index import _scalar

    try:
        row = json.loads(data)
    except ValueError:
        return {"id": run_id, "status": "corrupt", "problem": "unreadable row", "corrupt": 1}
    if not isinstance(row, dict):
        return None
    row["id"] = run_id
    row["extra"] = {str(k): _scalar(v) for k, v in (row.get("extra") or {}).items()}
    row["mtime"] = 0
    heartbeat = row.get("heartbeat")
    row["sig"] = str(float(heartbeat)) if isinstance(heartbeat, (int, float)) else None
    if row.get("status") == "running" and _stale(row["sig"]):
        row["status"] = "killed"
    return row


def _stamp(key: str) -> int:
    """The writer's time in a change marker's key (``.trainrun/changes/<ns>-<run id>``)."""
    return int(key[len(CHANGES) :].split("-", 1)[0])


def changes_horizon() -> float:
    """Seconds a change marker is kept (``TRAINRUN_CHANGES_HORIZON``, default a day; at
    least four listing windows): older ones are deleted by ``RemoteRuns.compact``."""
    return max(_env_seconds("TRAINRUN_CHANGES_HORIZON", 86400.0), 4 * WINDOW_S)


def _within_horizon(since: Any, now: float) -> bool:
    """True when markers written after ``since`` (seconds) are all still in the store:
    a cache refreshed then, or a snapshot good to then, can go on from there."""
    try:
        since = float(since)
    except (TypeError, ValueError):
        return False
    return now - since < changes_horizon() - 2 * WINDOW_S


def _stale(sig: str | None, now: float | None = None) -> bool:
    try:
        beat = float(sig) if sig is not None else 0.0
    except ValueError:
        beat = 0.0
    return beat < (time.time() if now is None else now) - heartbeat_timeout()


def _snapshot_bytes(db: Any, after: int) -> bytes:
    """Every row of the cache as the store keeps rows, gzipped JSON lines after a header."""
    kinds = {sqlcol: (name, kind) for name, sqlcol, kind in db.execute("SELECT * FROM columns")}
    cur = db.execute("SELECT * FROM runs WHERE corrupt = 0")
    fields = [d[0] for d in cur.description]
    lines = [record.dumps({"after": after, "written": time.time()})]
    for values in cur:
        row = dict(zip(fields, values, strict=True))
        out = {k: row[k] for k in _ROW_FIELDS}
        sig = row["sig"]
        out["heartbeat"] = float(sig) if sig else None
        extra = {}
        for sqlcol, (name, kind) in kinds.items():
            value = row.get(sqlcol)
            if value is None:
                continue
            if isinstance(value, bytes):
                value = math.nan  # the index's NaN
            elif kind == "bool" and isinstance(value, int):
                value = bool(value)
            extra[name] = value
        out["extra"] = extra
        lines.append(record.dumps(out))
    return gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=5)


_ROW_FIELDS = (
    "id",
    "status",
    "start",
    "end",
    "duration",
    "script",
    "exit_code",
    "host",
    "pid",
    "pid_start",
    "problem",
)


class StaleListingWarning(UserWarning):
    """The store did not answer: the listing comes from this machine's cache of its index."""


class RemoteRuns:
    """The runs of ``s3://bucket/prefix`` as this machine lists, shows and fetches them."""

    def __init__(self, url: str) -> None:
        self.url = str(parse_url(url))
        self.store = ObjectStore(url)
        self.root = cache_root(url)
        self.cache_dir = self.root / "index"
        self.copies = self.root / "copies"
        self._refreshed = -math.inf  # when this object last refreshed the cache (monotonic)
        self._opening: dict[str, threading.Lock] = {}  # open_run: one fetch of a run at a time
        self._opening_guard = threading.Lock()

    # ---------------------------------------------------------------- refresh

    def _fetch(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        def one(run_id: str) -> tuple[str, dict[str, Any] | None]:
            data = self.store.get(INDEX + run_id + ".json")
            return run_id, None if data is None else _row(data, run_id)

        if len(ids) <= 2:
            return dict(one(i) for i in ids)
        with ThreadPoolExecutor(min(_FETCHERS, len(ids))) as pool:
            return dict(pool.map(one, ids))

    def refresh(self, index: Any, full: bool = False) -> None:
        """Bring the cache ``index`` up to date with the store (only what changed).

        A cache last refreshed longer ago than the markers are kept (``changes_horizon()``,
        less a margin) may have missed markers since deleted: it starts again as a first
        listing does (from a recent snapshot, else every row).
        """
        db = index.db
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'remote_%'").fetchall())
        window = int(WINDOW_S * 1e9)
        refreshed_at = time.time()
        if "remote_after" in meta and not _within_horizon(
            meta.get("remote_refreshed"), refreshed_at
        ):
            del meta["remote_after"]  # markers it has not seen may be gone: start again
        first = full or "remote_after" not in meta
        known = {r[0] for r in db.execute("SELECT id FROM runs")}
        from_snapshot: dict[str, dict[str, Any] | None] = {}
        if not full and "remote_after" not in meta:
            loaded = self._load_snapshot()  # a first listing: one object, then what changed since
            if loaded is not None and _within_horizon(loaded[0] / 1e9, refreshed_at):
                meta["remote_after"] = str(loaded[0])
                from_snapshot = {r["id"]: r for r in loaded[1]}
        if "remote_after" not in meta or full:
            started = time.time_ns()
            # the recent markers first: every row fetched after is at least as new as they say
            marks = [
                e.key for e in self.store.list(CHANGES, after=f"{CHANGES}{started - window:020d}")
            ]
            ids = [
                e.key[len(INDEX) : -len(".json")]
                for e in self.store.list(INDEX)
                if e.key.endswith(".json")
            ]
            fetched = self._fetch(ids)
            after = max([started - window, *(_stamp(k) for k in marks)])
            seen = marks
        else:
            after = int(meta["remote_after"])
            seen_before = set(json.loads(meta.get("remote_seen", "[]")))
            start = f"{CHANGES}{max(0, after - window):020d}"
            keys = [e.key for e in self.store.list(CHANGES, after=start)]
            stamps = {k: _stamp(k) for k in keys}
            new = [k for k in keys if k not in seen_before]
            ids = sorted({k[len(CHANGES) :].split("-", 1)[1] for k in new})
            fetched = {**from_snapshot, **self._fetch(ids)}
            after = max([after, *stamps.values()])
            seen = [k for k in keys if stamps[k] > after - window]
        rows = [r for r in fetched.values() if r is not None]
        gone = [i for i, r in fetched.items() if r is None and i in known]
        if first:  # every row of the store is in hand: what the cache holds beside them is gone
            gone += sorted(known - set(fetched))
        # running rows not fetched now: killed once their heartbeat is too old
        now = time.time()
        status_updates = [
            ("killed", run_id)
            for run_id, sig in db.execute("SELECT id, sig FROM runs WHERE status = 'running'")
            if run_id not in fetched and _stale(sig, now)
        ]
        if rows or gone or status_updates:
            index._write(rows, status_updates, gone, None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('remote_after', ?)", (str(after),))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('remote_seen', ?)", (json.dumps(seen),))
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('remote_refreshed', ?)", (repr(refreshed_at),)
        )
        db.execute("COMMIT")
        self._maybe_snapshot(index, after)

    # ---------------------------------------------------------------- snapshots

    def _load_snapshot(self) -> tuple[int, list[dict[str, Any]]] | None:
        """(the marker time it is good to, its rows) from the store's snapshot; None if none."""
        data = self.store.get(SNAPSHOT)
        if data is None:
            return None
        try:
            head, _, body = gzip.decompress(data).partition(b"\n")
            after = int(json.loads(head)["after"])
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            return None  # damaged: list every row instead
        rows = []
        for line in body.splitlines():
            try:
                run_id = json.loads(line).get("id")
            except (ValueError, AttributeError):
                continue
            row = _row(line, run_id) if isinstance(run_id, str) and run_id else None
            if row is not None:
                rows.append(row)
        return after, rows

    def _maybe_snapshot(self, index: Any, after: int) -> None:
        """Now and then (``SNAPSHOT_EVERY_S``), write every row as one object, so that a
        machine's first listing of a large store is one GET instead of one per run."""
        db = index.db
        now = time.time()
        checked = db.execute("SELECT value FROM meta WHERE key = 'snapshot_checked'").fetchone()
        if checked is not None and now - float(checked[0]) < SNAPSHOT_CHECK_S:
            return
        db.execute("INSERT OR REPLACE INTO meta VALUES ('snapshot_checked', ?)", (str(now),))
        count = db.execute("SELECT count(*) FROM runs WHERE corrupt = 0").fetchone()[0]
        try:
            if count >= SNAPSHOT_MIN_RUNS:
                current = [e for e in self.store.list(SNAPSHOT) if e.key == SNAPSHOT]
                if not current or now - current[0].modified >= SNAPSHOT_EVERY_S:
                    self.store.put(SNAPSHOT, _snapshot_bytes(db, after))
            self.compact()
        except StoreError as exc:  # a read-only machine, say: the others write it
            log.debug("No snapshot of %s written or markers compacted: %s", self.url, exc)

    def compact(self) -> int:
        """Delete the change markers older than ``changes_horizon()``; how many.

        Markers only say "this row changed": a machine whose cache is younger than the
        horizon has seen them; an older one starts again (``refresh``). The LIST starts
        at the oldest marker and stops at the first one to keep: O(markers deleted).
        """
        cutoff = time.time_ns() - int(changes_horizon() * 1e9)
        old = []
        for entry in self.store.list(CHANGES):
            try:
                stamp = _stamp(entry.key)
            except ValueError:
                continue  # not a marker of ours: left alone
            if stamp >= cutoff:
                break
            old.append(entry.key)
        if old:
            self.store.delete_many(old)
        return len(old)

    def _through(self, use: Any, refresh: bool = False) -> Any:
        from trainrun.runs.store._index import _Index

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        index = _Index(str(self.cache_dir))
        try:
            try:
                # one verb asks several times (resolve, then the row, then fetch): the store
                # is asked once
                due = time.monotonic() - self._refreshed > _SAME_VERB_S
                if refresh or (due and not _CACHE_ONLY.get()):
                    push_pending(self.url)  # runs of this machine that ended while it was away
                    self.refresh(index, full=refresh)
                    self._refreshed = time.monotonic()
            except StoreUnavailableError as exc:
                known = index.db.execute("SELECT value FROM meta WHERE key = 'remote_after'")
                if known.fetchone() is None:
                    raise  # never listed from here: nothing to fall back on
                warnings.warn(
                    f"{exc} Listing this machine's last copy of its index instead.",
                    StaleListingWarning,
                    stacklevel=4,
                )
            return use(index)
        finally:
            index.close()

    # ---------------------------------------------------------------- listing

    def load_table(self, refresh: bool = False) -> Any:
        """Every run of the store as a Table (newest first)."""

        def use(index: Any) -> Any:
            cols, rows = index._snapshot()
            table = index._table(cols, rows)
            table.presorted = True
            table.runs_dir = self.url
            return table

        return self._through(use, refresh)

    def ls_query(
        self,
        filt: Any,
        order: Any,
        decreasing: bool,
        latest_n: int | None,
        limit: int | None,
    ) -> Any:
        """ls_runs's answer through SQL over the cache, or None for the DataFrame path."""
        return self._through(
            lambda index: _pushdown.query_frame(
                index, filt, order, decreasing, latest_n, limit, refresh=None, runs_dir=self.url
            )
        )

    def ids(self) -> list[str]:
        """Listable run ids, newest first."""
        return self._through(
            lambda index: [
                r[0]
                for r in index.db.execute(
                    f"SELECT id FROM runs WHERE corrupt = 0 ORDER BY {_pushdown._NEWEST}"
                )
            ]
        )

    # ---------------------------------------------------------------- one run

    def resolve(self, ref: Any) -> str:
        """The id of the run ``ref`` names: an id, a unique id prefix, an index, a row."""
        if hasattr(ref, "get") and not isinstance(ref, str):
            ref = ref.get("id") or ref.get("run_dir")
        if isinstance(ref, os.PathLike):  # a local copy of one of its runs (get_run_dir's)
            path = Path(ref)
            if path.parent in (self.copies, self.root / "mirror"):
                ref = f"{self.url}/{path.name}"
        ids = self.ids()
        if isinstance(ref, str) and ref.startswith(self.url + "/"):
            ref = ref[len(self.url) + 1 :].strip("/")
            if ref not in ids:  # a run's full URL names that run only, never a prefix of others
                raise RunNotFoundError(f"No run {ref!r} in {self.url}.")
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 0 <= ref < len(ids):
                return ids[ref]
            raise RunNotFoundError(
                f"There is no run {ref} back in {self.url}: it holds {len(ids)} run(s)."
            )
        if not isinstance(ref, str) or not ref:
            raise RunNotFoundError(f"Name a run of {self.url} by id or index. Received: {ref!r}")
        if ref in ids:
            return ref
        near = [i for i in ids if i.startswith(ref)]
        if len(near) == 1:
            return near[0]
        named = self._named(ref) if not near else []  # a name given with name_run
        if len(named) == 1:
            return named[0]
        if named:
            raise RunNotFoundError(
                f"The name {ref!r} is given to {len(named)} runs of {self.url} "
                f"({', '.join(named[:5])}); name one by its id."
            )
        hint = f" It matches {len(near)} runs: {', '.join(near[:5])}." if near else ""
        raise RunNotFoundError(f"No run {ref!r} in {self.url}.{hint}")

    def _named(self, name: str) -> list[str]:
        """Ids of the runs named ``name`` (``run_name``), from the cache (just refreshed)."""

        def use(index: Any) -> list[str]:
            col = index.db.execute("SELECT sqlcol FROM columns WHERE name = 'run_name'").fetchone()
            if col is None:
                return []  # no run has a name yet
            sql = f'SELECT id FROM runs WHERE corrupt = 0 AND "{col[0]}" = ?'
            return [r[0] for r in index.db.execute(sql, (name,))]

        return self._through(use)

    def _row_of(self, run_id: str) -> tuple[str, str | None, str | None]:
        """(stamp, sig, status) of a run as the cache, just refreshed, lists it."""
        found = self._through(
            lambda index: index.db.execute(
                "SELECT sig, status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        )
        if found is None:
            return "", None, None
        return f"{found[0]}:{found[1]}", found[0], found[1]

    def fetch(self, ref: Any) -> Path:
        """A local copy of the run (its files under ``cache_root/copies/<id>``), brought up to
        date only when its row changed since (a heartbeat, its end, an annotation). Its
        status is the listing's: a run whose heartbeat stopped reads ``killed`` here too."""
        run_id = self.resolve(ref)
        return self._copy(run_id, self.copies, *self._row_of(run_id))

    def first_listing_due(self) -> bool:
        """True when this machine's next listing of the store starts again from every row (or
        a snapshot): the cache was never filled here, or is older than the markers kept."""

        def due(index: Any) -> bool:
            meta = dict(
                index.db.execute(
                    "SELECT key, value FROM meta WHERE key IN ('remote_after', 'remote_refreshed')"
                ).fetchall()
            )
            return "remote_after" not in meta or not _within_horizon(
                meta.get("remote_refreshed"), time.time()
            )

        with from_cache():
            return bool(self._through(due))

    def update(self) -> None:
        """Bring this machine's cache of the index up to date now (only what changed).

        A store that does not answer is a ``StaleListingWarning`` when this machine listed it
        before (its cache stays as it was), an error when it never did.
        """
        self._refreshed = -math.inf
        self._through(lambda index: None)

    def open_run(self, run_id: str) -> Path | None:
        """The dashboard's copy of the run named exactly ``run_id`` (``cache_root/mirror/<id>``),
        fetched when a page needs it and brought up to date only when its row changed since
        (a heartbeat, its end, an annotation): only that run's changed files. None when the
        cache does not list it (no id prefixes, no indexes, no names: a URL names one run).

        The cache is read as it is; ``update`` asks the store what changed.
        """
        if (
            not isinstance(run_id, str)
            or not run_id
            or run_id.startswith(".")
            or run_id == record.ARCHIVE_DIR
            or any(c in run_id for c in ("/", "\\", "\0"))
        ):
            return None  # a plain name only: nothing outside the mirror is ever named
        with from_cache():
            want, sig, status = self._row_of(run_id)
        if not want:
            return None
        mirror = self.root / "mirror"
        with self._opening_guard:
            lock = self._opening.setdefault(run_id, threading.Lock())
        try:
            with lock:  # two pages of one run at once (its page and its poll): one fetch
                self._copy(run_id, mirror, want, sig, status)
        except RunRecordError:
            return None  # no record files in the store yet: not a run to show
        except StoreError:
            if not (mirror / run_id).is_dir():
                raise
            # the store away: the copy fetched last time (the page says the store is away)
        return record.run_by_name(mirror, run_id)  # a run folder, as a local dashboard checks

    def lists(self, run_id: str) -> bool:
        """True when the cache, as it is, lists a run under exactly ``run_id``."""
        with from_cache():
            return bool(self._row_of(run_id)[0])

    def forget_gone(self) -> int:
        """Remove from ``mirror/`` the runs ``open_run`` fetched that the cache no longer lists
        (archived or deleted, here or on another machine); how many."""
        mirror = self.root / "mirror"
        stamps = mirror / ".fetched"
        try:
            opened = [p.name for p in stamps.iterdir()]
        except OSError:
            return 0
        if not opened:
            return 0

        def listed(index: Any) -> set[str]:
            out: set[str] = set()
            for at in range(0, len(opened), 500):  # SQLite's bound on parameters
                part = opened[at : at + 500]
                sql = f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(part))})"
                out.update(r[0] for r in index.db.execute(sql, part))
            return out

        with from_cache():
            keep = self._through(listed)
        gone = [i for i in opened if i not in keep]
        for run_id in gone:
            if record.run_by_name(mirror, run_id) is not None:  # a plain name inside the mirror
                shutil.rmtree(mirror / run_id, ignore_errors=True)
            (stamps / run_id).unlink(missing_ok=True)
        return len(gone)

    def _copy(
        self, run_id: str, folder: Path, want: str, sig: str | None, status: str | None
    ) -> Path:
        """``folder/<run_id>``, fetched unless the stamp of its last fetch is ``want``."""
        stamp_file = folder / ".fetched" / run_id
        try:
            if want and stamp_file.read_text(encoding="utf-8") == want:
                if (folder / run_id).is_dir():
                    return folder / run_id
        except OSError:
            pass
        copy = self._fetch_into(run_id, folder)
        _listed_status(copy, status, sig)
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(want, encoding="utf-8")
        return copy

    def mirror(self) -> Path:
        """A local runs folder holding every run of the store, for TensorBoard and the dashboard.

        Incremental: a run is looked at again only when its row changed (a new heartbeat,
        its end), and then only its files that changed are fetched; runs gone from the
        store are removed from the mirror. Statuses are the listing's (``killed`` when a
        heartbeat stopped).
        """
        target = self.root / "mirror"
        state_file = self.root / "mirror.json"
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        rows = self._through(
            lambda index: index.db.execute(
                "SELECT id, sig, status FROM runs WHERE corrupt = 0"
            ).fetchall()
        )
        now = {run_id: (f"{sig}:{status}", sig, status) for run_id, sig, status in rows}
        before = dict(state)
        todo = [
            run_id
            for run_id, (stamp, _, _) in now.items()
            if state.get(run_id) != stamp or not (target / run_id).is_dir()
        ]

        def one(run_id: str) -> str | None:
            stamp, sig, status = now[run_id]
            try:
                folder = self._fetch_into(run_id, target)
            except RunRecordError:
                return None  # no record files yet: next time
            _listed_status(folder, status, sig)
            return stamp

        # runs fetched side by side (a first mirror of a large store is mostly waiting)
        with ThreadPoolExecutor(max(1, min(_FETCHERS, len(todo)))) as pool:
            for run_id, stamp in zip(todo, pool.map(one, todo), strict=True):
                if stamp is not None:
                    state[run_id] = stamp
        for run_id in sorted(set(state) - set(now)):
            if record.run_by_name(target, run_id) is not None:  # a plain name inside the mirror
                shutil.rmtree(target / run_id, ignore_errors=True)
            state.pop(run_id, None)
        target.mkdir(parents=True, exist_ok=True)
        if state != before or not state_file.exists():  # a dashboard asks every few seconds
            replace_text(state_file, json.dumps(state), durable=False)
        return target

    def _fetch_into(self, run_id: str, folder: Path) -> Path:
        """The run's files in ``folder/<run_id>``, fetching only those whose size or time
        differs from the local copy's; files gone from the store are removed. Each file is
        replaced whole (written beside it, then renamed): a reader never sees half of one."""
        prefix = f"{run_id}/"
        target = folder / run_id
        wanted: dict[str, Any] = {}
        for entry in self.store.list(prefix):
            rel = entry.key[len(prefix) :]
            parts = rel.split("/")
            # only plain, visible names below the run: nothing lands outside its folder
            if not rel or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
                continue
            wanted[rel] = entry
        if not any(rel in wanted for rel in _RECORD_FILES):
            raise RunRecordError(f"The run {run_id} in {self.url} holds no record files yet.")
        if not target.is_dir():  # a first fetch: written aside, then appears whole
            tmp_dir = folder / f".{run_id}.fetching-{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(tmp_dir, ignore_errors=True)
            tmp_dir.mkdir(parents=True)
            try:
                self._fetch_files(tmp_dir, wanted)
                os.rename(tmp_dir, target)
            except OSError:
                if not target.is_dir():  # not another fetcher's copy, just in place
                    raise
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            return target
        self._fetch_files(target, wanted)
        from trainrun.runs.tensorboard import HPARAMS_FILE_SUFFIX

        for rel in _files(target):
            # gone from the store; the HParams file `trainrun board` wrote here stays
            if rel not in wanted and not rel.endswith(HPARAMS_FILE_SUFFIX):
                os.unlink(target.joinpath(*rel.split("/")))
        return target

    def _fetch_files(self, target: Path, wanted: dict[str, Any]) -> None:
        real = os.path.realpath(target)
        for rel, entry in wanted.items():
            path = target.joinpath(*rel.split("/"))
            # never written through a link inside the copy that leads out of it
            if os.path.commonpath([real, os.path.realpath(path.parent)]) != real:
                continue
            try:
                self._fetch_file(path, entry)
            except OSError as exc:  # a key that cannot be a file here ("a" and "a/b"): skipped
                log.debug("Not fetched from %s: %s (%s)", self.url, entry.key, exc)

    def _fetch_file(self, path: Path, entry: Any) -> None:
        try:
            st = os.lstat(path)
            if (
                stat.S_ISREG(st.st_mode)
                and st.st_size == entry.size
                and abs(st.st_mtime - entry.modified) < 1e-3
            ):
                return  # the same file as the store's
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.store.get(entry.key)
        if data is None:
            return  # deleted since the listing
        if _grew(path, data):  # appended to (metrics, output, events): appended here too
            os.utime(path, (entry.modified, entry.modified))
            return
        # this process and thread only: a dashboard's pages fetch from several threads
        tmp = path.parent / f".{path.name}.fetching-{os.getpid()}-{threading.get_ident()}"
        tmp.write_bytes(data)
        os.utime(tmp, (entry.modified, entry.modified))
        os.replace(tmp, path)

    # ---------------------------------------------------------------- annotations

    def annotate(self, ref: Any, **changes: Any) -> dict[str, Any]:
        """tag_run / note_run / name_run over the store: the run's run.json changed in a
        fresh copy, then pushed with its row and a change marker (every machine sees it).

        A run still running is refused: its machine pushes its run.json as it goes, and
        would overwrite the change.
        """
        from trainrun.runs.record._annotations import annotate
        from trainrun.runs.store._index import read_row

        run_id = self.resolve(ref)
        _, _, status = self._row_of(run_id)
        if status == "running":
            raise RunRecordError(
                f"The run {run_id} in {self.url} is still running on another machine, which "
                "pushes its run.json as it goes and would overwrite a tag, note or name given "
                "now. Annotate it once it has ended."
            )
        old = self.store.get(INDEX + run_id + ".json")
        if old is None:
            raise RunNotFoundError(f"No run {run_id!r} in {self.url} (purged meanwhile?).")
        folder = self.fetch(run_id)
        result = annotate(folder, **changes)
        self.store.put_file(f"{run_id}/{record.RUN_FILE}", folder / record.RUN_FILE)
        try:
            before = json.loads(old)
        except ValueError:
            before = {}
        row = read_row(str(self.copies), run_id)
        row["id"] = run_id
        row["local_id"] = before.get("local_id", run_id) if isinstance(before, dict) else run_id
        row["heartbeat"] = time.time()  # a new stamp: every machine's copy is fetched again
        row["extra"] = {k: math.nan if isinstance(v, bytes) else v for k, v in row["extra"].items()}
        self.store.put(INDEX + run_id + ".json", record.dumps(row).encode("utf-8"))
        self.store.put(change_key(run_id), b"")
        return result

    # ---------------------------------------------------------------- clean, restore, purge

    def refs(self, runs: Any) -> list[str]:
        """Ids named by ``runs``: None (all), an ls_runs() DataFrame, one run or a list."""
        if runs is None:
            return self.ids()
        if hasattr(runs, "columns"):  # a DataFrame
            runs = list(runs["id"] if "id" in runs.columns else runs["run_dir"])
        elif isinstance(runs, (str, int)) or hasattr(runs, "get"):
            runs = [runs]
        return [self.resolve(r) for r in runs]

    def refs_or_archived(self, runs: Any, archive: RemoteRuns) -> list[tuple[RemoteRuns, str]]:
        """Runs named for purge_runs: in the archive first (exact ids), then here."""
        if hasattr(runs, "columns"):
            runs = list(runs["id"] if "id" in runs.columns else runs["run_dir"])
        elif isinstance(runs, (str, int)) or hasattr(runs, "get"):
            runs = [runs]
        archived = set(archive.ids())
        out: list[tuple[RemoteRuns, str]] = []
        for ref in runs:
            if isinstance(ref, str) and ref.startswith(archive.url + "/"):
                ref = ref[len(archive.url) + 1 :]
            if isinstance(ref, str) and ref in archived:
                out.append((archive, ref))
            else:
                out.append((self, self.resolve(ref)))
        return out

    def _running(self, ids: list[str]) -> set[str]:
        def use(index: Any) -> set[str]:
            rows = index.db.execute("SELECT id FROM runs WHERE status = 'running'")
            return {r[0] for r in rows} & set(ids)

        return set(self._through(use))

    def move(self, run_id: str, to: RemoteRuns) -> str:
        """Move one run into the store ``to`` (copied, then deleted here); its id there."""
        row = self.store.get(INDEX + run_id + ".json")
        new = run_id
        n = 2
        while not to.store.create(IDS + new, b"{}"):
            new = f"{run_id}-{n}"
            n += 1
        keys = [e.key for e in self.store.list(f"{run_id}/")]
        for key in keys:
            data = self.store.get(key)
            if data is not None:
                to.store.put(f"{new}/{key[len(run_id) + 1 :]}", data)
        if row is not None:
            moved = json.loads(row)
            moved["id"] = new
            to.store.put(INDEX + new + ".json", record.dumps(moved).encode("utf-8"))
            to.store.put(change_key(new), b"")
        self.delete(run_id, keys)
        return new

    def delete(self, run_id: str, keys: list[str] | None = None) -> None:
        """Delete one run: its files, its row and its claim; a marker tells other machines."""
        if keys is None:
            keys = [e.key for e in self.store.list(f"{run_id}/")]
        self.store.delete_many([*keys, INDEX + run_id + ".json", IDS + run_id])
        self.store.put(change_key(run_id), b"")


_RECORD_FILES = (
    record.RUN_FILE,
    record.FLAGS_FILE,
    record.METRICS_FILE,
    record.EVALUATION_FILE,
    record.OUTPUT_FILE,
)


def _grew(path: Path, data: bytes) -> bool:
    """Append to ``path`` what ``data`` adds to it, when ``data`` begins with its content;
    False (nothing written) otherwise. A reader that holds the file open (TensorBoard
    reading an event file) sees the new records, which a replaced file would hide from it.
    The file is locked meanwhile: two mirrors of one machine (``ui`` and ``board``) never
    append the same records twice."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size < len(data):
        return False
    nofollow = getattr(os, "O_NOFOLLOW", 0)  # never written through a link
    fd = os.open(path, os.O_RDWR | os.O_APPEND | nofollow)
    with open(fd, "r+b") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no second mirror to race with
            pass
        size = os.fstat(f.fileno()).st_size  # under the lock: what is there now
        if size >= len(data):
            return size == len(data) and f.read() == data  # another mirror did it already
        if f.read(size) != data[:size]:
            return False
        f.write(data[size:])
    return True


def _listed_status(folder: Path, status: str | None, sig: str | None) -> None:
    """The listing's verdict in a local copy: a run whose heartbeat stopped is ``killed``.

    A run.json pushed while the run lasted says ``running``; only the host that ran it
    could check its process, so its copy elsewhere would read ``running`` for ever. The
    listing knows better (``heartbeat_timeout()``): the copy says what the listing says.
    """
    if status != "killed":
        return
    path = folder / record.RUN_FILE
    try:
        run = record.read_json(path, default=None)
    except RunRecordError:
        return
    if not isinstance(run, dict) or run.get("status") != "running":
        return
    try:
        beat = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(sig or "")))
    except ValueError:
        beat = "its start"
    run["status"] = "killed"
    run["error"] = run.get("error") or (
        f"No heartbeat from {run.get('host') or 'its machine'} since {beat}, more than "
        f"{heartbeat_timeout():g} s (TRAINRUN_HEARTBEAT_TIMEOUT): its machine died or lost "
        "the store. A late heartbeat makes it running again."
    )
    record.write_json(path, run, durable=False)


def _archive_of(url: str) -> RemoteRuns:
    return RemoteRuns(f"{url.rstrip('/')}/{record.ARCHIVE_DIR}")


def _skip_running(store: RemoteRuns, ids: list[str], verb: str) -> list[str]:
    running = store._running(ids)
    if running:
        warnings.warn(
            f"Not {verb} {len(running)} run(s) still running: {', '.join(sorted(running))}. "
            "Wait for them to finish, or stop them first.",
            UserWarning,
            stacklevel=3,
        )
    return [i for i in ids if i not in running]


def clean(runs: Any, url: str, confirm: bool) -> list[str]:
    """clean_runs over a store: runs moved under ``<url>/archive``; their new URLs."""
    from trainrun.runs.store import _confirm

    store = RemoteRuns(url)
    ids = _skip_running(store, store.refs(runs), "archiving")
    archive = _archive_of(store.url)
    if not ids or not _confirm(f"Move {len(ids)} run(s) to {archive.url}?", confirm, "clean_runs"):
        return []
    return [f"{archive.url}/{store.move(i, archive)}" for i in ids]


def restore(runs: Any, url: str) -> list[str]:
    """restore_runs over a store: archived runs moved back; their URLs."""
    store = RemoteRuns(url)
    archive = _archive_of(store.url)
    out = []
    for run_id in archive.refs(runs):
        if store.store.get(IDS + run_id) is not None:
            raise RunRecordError(
                f"Cannot restore {run_id}: {store.url}/{run_id} already exists. "
                "Purge or clean one of them first."
            )
        out.append(f"{store.url}/{archive.move(run_id, store)}")
    return out


def purge(runs: Any, url: str, confirm: bool) -> list[str]:
    """purge_runs over a store: archived runs (or those named) deleted for good; their ids."""
    from trainrun.runs.store import _confirm

    store = RemoteRuns(url)
    archive = _archive_of(store.url)
    targets: list[tuple[RemoteRuns, str]] = []
    if runs is None:
        targets = [(archive, i) for i in archive.ids()]
    else:
        for ref in store.refs_or_archived(runs, archive):
            targets.append(ref)
    ids = [i for _, i in targets]
    keep = set(_skip_running(store, ids, "deleting"))
    targets = [(s, i) for s, i in targets if i in keep]
    if not targets or not _confirm(
        f"Delete {len(targets)} run(s) permanently?", confirm, "purge_runs"
    ):
        return []
    for where, run_id in targets:
        where.delete(run_id)
    return [i for _, i in targets]
