"""Listing a shared store: a local SQLite cache of its index, refreshed incrementally.

Each machine keeps, in ``cache_root(url) / "index"``, an index of the same shape
as a local runs folder's (``_index._Index``): the listing, filters pushed into
SQL, ``latest_n`` and ``limit`` then cost what they cost locally.

A refresh asks the store only what changed: every row a machine writes comes
with a change marker ``.trainrun/changes/<ns>-<run id>``, named by the
writer's time, so one listing *after* the last marker seen returns the new ones
(a marker can land late, from a slow writer or a clock a little behind: the
last ``WINDOW_S`` seconds are listed again, and markers already seen skipped).
The rows of the runs named are then fetched; a row gone from the store (a run
purged) drops out. The first refresh (or ``refresh=True``) lists every row.

A *running* row whose heartbeat is older than ``heartbeat_timeout()`` reads as
*killed* (its machine died, or lost the store for that long); a later heartbeat
makes it *running* again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trainrun.exceptions import RunNotFoundError, RunRecordError
from trainrun.runs import record
from trainrun.runs.store import _pushdown
from trainrun.runs.store._objectstore import CHANGES, INDEX, ObjectStore, parse_url
from trainrun.runs.store._sync import cache_root, heartbeat_timeout, push_pending

__all__ = ["RemoteRuns"]

#: markers this recent are listed again at every refresh (late writers, clock skew)
WINDOW_S = 600.0
_FETCHERS = 16


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


def _stale(sig: str | None, now: float | None = None) -> bool:
    try:
        beat = float(sig) if sig is not None else 0.0
    except ValueError:
        beat = 0.0
    return beat < (time.time() if now is None else now) - heartbeat_timeout()


class RemoteRuns:
    """The runs of ``s3://bucket/prefix`` as this machine lists, shows and fetches them."""

    def __init__(self, url: str) -> None:
        self.url = str(parse_url(url))
        self.store = ObjectStore(url)
        self.root = cache_root(url)
        self.cache_dir = self.root / "index"
        self.copies = self.root / "copies"

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
        """Bring the cache ``index`` up to date with the store (only what changed)."""
        db = index.db
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'remote_%'").fetchall())
        window = int(WINDOW_S * 1e9)
        known = {r[0] for r in db.execute("SELECT id FROM runs")}
        if full or "remote_after" not in meta:
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
            fetched = self._fetch(ids)
            after = max([after, *stamps.values()])
            seen = [k for k in keys if stamps[k] > after - window]
        rows = [r for r in fetched.values() if r is not None]
        gone = [i for i, r in fetched.items() if r is None and i in known]
        if full or "remote_after" not in meta:
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
        db.execute("COMMIT")

    def _through(self, use: Any, refresh: bool = False) -> Any:
        from trainrun.runs.store._index import _Index

        push_pending(self.url)  # runs of this machine that ended while the store was away
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        index = _Index(str(self.cache_dir))
        try:
            self.refresh(index, full=refresh)
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
        if isinstance(ref, str) and ref.startswith(self.url + "/"):
            ref = ref[len(self.url) + 1 :].strip("/")
        ids = self.ids()
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
        hint = f" It matches {len(near)} runs: {', '.join(near[:5])}." if near else ""
        raise RunNotFoundError(f"No run {ref!r} in {self.url}.{hint}")

    def fetch(self, ref: Any) -> Path:
        """A local copy of the run (its files under ``cache_root/copies/<id>``), fetched anew."""
        run_id = self.resolve(ref)
        prefix = f"{run_id}/"
        target = self.copies / run_id
        tmp = self.copies / f".{run_id}.fetching-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for entry in self.store.list(prefix):
                rel = entry.key[len(prefix) :]
                parts = rel.split("/")
                # only plain names below the run: nothing lands outside its folder
                if not rel or any(p in ("", ".", "..") for p in parts):
                    continue
                data = self.store.get(entry.key)
                if data is None:
                    continue
                path = tmp.joinpath(*parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            if not record.is_run_folder(tmp):
                raise RunRecordError(f"The run {run_id} in {self.url} holds no record files yet.")
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target
