"""Pushing a run to the shared store while it runs: files, its listing row, a heartbeat.

A run whose ``runs_dir`` is ``s3://bucket/prefix`` is written locally, exactly
as any run (crash-safe, readable while it runs), in this machine's staging
folder for that store (``cache_root(url) / "staging"``). A :class:`RunSync`
beside the launcher pushes it:

* at start, it claims the run's id in the store with a conditional write
  (``.trainrun/ids/<id>``, create-if-absent): two machines that start a run in
  the same second get ``<id>`` and ``<id>-2``, never one folder for two runs;
* every ``interval`` seconds (``TRAINRUN_SYNC_INTERVAL``, default 10): the
  record files that changed (run.json, flags, metrics, evaluation, output.log,
  the TensorBoard event files),
  then the run's listing row with a ``heartbeat`` time and a change marker;
  a listing elsewhere reads a *running* row whose heartbeat is older than
  ``HEARTBEAT_TIMEOUT_S`` (``TRAINRUN_HEARTBEAT_TIMEOUT``, default 60 s) as
  *killed*;
* at the end: every file of the folder (source, plots, artifacts, model...),
  then the final row.

When the server does not answer, the run goes on locally; each later push
retries, and the final push retries until ``TRAINRUN_SYNC_FINAL_TIMEOUT``
(default 120 s). A run still not pushed then is marked in the staging folder
(``.trainrun/unpushed/``) and pushed by the next run or listing over that
store from this machine (:func:`push_pending`).

>>> sync = RunSync(Path("~/.cache/trainrun/s3/team-runs/churn/staging/2026-11-27T10-15-42Z"),
...                "s3://team-runs/churn")                                   # doctest: +SKIP
>>> sync.start(); ...; sync.stop()                                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

from trainrun._atomic import replace_text
from trainrun.exceptions import RunRecordError
from trainrun.runs import record
from trainrun.runs.store._objectstore import (
    IDS,
    INDEX,
    ObjectStore,
    StoreUnavailableError,
    change_key,
    parse_url,
)

__all__ = [
    "RunSync",
    "cache_root",
    "check_store",
    "heartbeat_timeout",
    "push_copy",
    "push_pending",
    "staging_dir",
]

log = logging.getLogger("trainrun.runs")

#: the record files pushed while the run lasts (everything else at the end)
LIVE_FILES = (
    record.RUN_FILE,
    record.FLAGS_FILE,
    record.METRICS_FILE,
    record.EVALUATION_FILE,
    record.OUTPUT_FILE,
)
#: TensorBoard event files larger than this are pushed at the end only (bytes)
LIVE_EVENTS_MAX = 16 * 1024 * 1024
_UNPUSHED = ".trainrun/unpushed"
_REMOTE_IDS = ".trainrun/remote-ids"


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 and math.isfinite(value) else default


def heartbeat_timeout() -> float:
    """Seconds without a heartbeat after which a running row reads as killed."""
    return _env_seconds("TRAINRUN_HEARTBEAT_TIMEOUT", 60.0)


def cache_root(url: str) -> Path:
    """This machine's folder for the store ``url``: staging, downloaded runs, the index cache."""
    base = os.environ.get("TRAINRUN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "trainrun",
    )
    parsed = parse_url(url)
    tail = hashlib.sha1(parsed.prefix.encode()).hexdigest()[:10]
    return Path(base) / "s3" / parsed.bucket / f"{parsed.prefix.replace('/', '_') or '_'}-{tail}"


def staging_dir(url: str) -> Path:
    """Where runs launched on this machine into ``url`` are written first."""
    return cache_root(url) / "staging"


def check_store(url: str) -> None:
    """StoreError for a store that cannot work (URL, credentials, bucket); a server that does
    not answer only warns: the run is recorded locally and pushed later."""
    try:
        ObjectStore(url).check()
        push_pending(url)  # runs of this machine that ended while the store was away
    except StoreUnavailableError as exc:
        log.warning("%s; the run is recorded locally and pushed when it answers.", exc)


def _files(run_dir: Path) -> list[str]:
    """Relative paths of the regular files inside the run (links and special files skipped)."""
    out = []
    real = os.path.realpath(run_dir)
    for dirpath, dirnames, filenames in os.walk(real):  # never enters linked folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                out.append(os.path.relpath(path, real).replace(os.sep, "/"))
    return out


def _json_value(value: Any) -> Any:
    return math.nan if isinstance(value, bytes) else value  # the index's NaN blob


class RunSync:
    """Push one local run folder to the store ``url`` as it goes (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str], url: str, *, interval: float | None = None):
        self.run_dir = Path(run_dir)
        self.url = url
        self.store = ObjectStore(url)
        self.interval = interval or _env_seconds("TRAINRUN_SYNC_INTERVAL", 10.0)
        self.run_id: str | None = self._known_id()
        self.error: str | None = None  # the last push's problem, if it failed
        self._pushed: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- ids

    def _id_file(self) -> Path:
        return self.run_dir.parent / _REMOTE_IDS / self.run_dir.name

    def _known_id(self) -> str | None:
        try:
            return self._id_file().read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def claim(self) -> str:
        """The run's id in the store, claimed by a conditional write (``-2``, ``-3``... if taken)."""
        if self.run_id is not None:
            return self.run_id
        owner = record.dumps({"host": record.HOST, "local": self.run_dir.name}).encode()
        for n in range(1, 10_000):
            candidate = self.run_dir.name if n == 1 else f"{self.run_dir.name}-{n}"
            if self.store.create(IDS + candidate, owner):
                self._id_file().parent.mkdir(parents=True, exist_ok=True)
                replace_text(self._id_file(), candidate + "\n")
                self.run_id = candidate
                return candidate
        raise StoreUnavailableError(f"No free run id near {self.run_dir.name} in {self.url}")

    # ---------------------------------------------------------------- pushing

    def push(self, final: bool = False) -> None:
        """Push what changed (everything at the end), then the row and a change marker."""
        with self._lock:  # the thread's tick and the final push never interleave
            run_id = self.claim()
            names = _files(self.run_dir) if final else self._live_names()
            for rel in names:
                path = self.run_dir / rel
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                sig = (st.st_size, st.st_mtime_ns)
                if self._pushed.get(rel) == sig:
                    continue
                self.store.put_file(f"{run_id}/{rel}", path)
                self._pushed[rel] = sig
            self.store.put(INDEX + run_id + ".json", self.row(run_id))
            self.store.put(change_key(run_id), b"")
            self.error = None

    def _live_names(self) -> list[str]:
        """What is pushed while the run lasts: the record files, and its TensorBoard event
        files up to ``LIVE_EVENTS_MAX`` bytes each (``trainrun board`` over the store shows
        them as they grow; an object is rewritten whole, so a larger one waits for the end)."""
        events = self.run_dir / record.TENSORBOARD_DIR
        live = []
        for rel in _files(events) if events.is_dir() else []:
            try:
                if os.stat(events / rel).st_size <= LIVE_EVENTS_MAX:
                    live.append(f"{record.TENSORBOARD_DIR}/{rel}")
            except OSError:
                continue
        return [*LIVE_FILES, *live]

    def row(self, run_id: str) -> bytes:
        """The run's listing row as the store keeps it (the local index's row, plus heartbeat)."""
        from trainrun.runs.store._index import read_row

        try:
            row = read_row(str(self.run_dir.parent), self.run_dir.name)
        except RunRecordError as exc:  # a corrupt run.json: listed as skipped
            row = {"status": "corrupt", "problem": str(exc), "corrupt": 1, "extra": {}}
        row["id"] = run_id
        row["local_id"] = self.run_dir.name
        row["heartbeat"] = time.time()
        row["extra"] = {k: _json_value(v) for k, v in row.get("extra", {}).items()}
        return record.dumps(row).encode("utf-8")

    # ---------------------------------------------------------------- the thread

    def start(self) -> RunSync:
        """Check the store (StoreError for a wrong bucket or credentials), claim the id, start."""
        try:
            self.store.check()
            self.claim()
        except StoreUnavailableError as exc:  # the server is away: run locally, push later
            self.error = str(exc)
            log.warning("%s; the run is recorded locally and pushed when it answers.", exc)
        self._thread = threading.Thread(target=self._loop, name="trainrun-sync", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.push(final=False)
            except StoreUnavailableError as exc:
                self.error = str(exc)
            except Exception as exc:  # never let the sync break the run
                self.error = str(exc)
                log.warning("Pushing %s to %s failed: %s", self.run_dir.name, self.url, exc)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the thread and push everything; retried until ``timeout`` s. True if pushed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + (
            timeout if timeout is not None else _env_seconds("TRAINRUN_SYNC_FINAL_TIMEOUT", 120.0)
        )
        delay = 0.2
        while True:
            try:
                self.push(final=True)
            except StoreUnavailableError as exc:
                self.error = str(exc)
                if time.monotonic() + delay > deadline:
                    break
                time.sleep(delay)  # a server restarting: wait, then try again
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:  # credentials revoked, a file unreadable: not worth waiting
                self.error = str(exc)
                break
            _unmark(self.run_dir)
            return True
        _mark(self.run_dir)
        log.warning(
            "Run %s is complete locally in %s but not yet in %s (%s); it is pushed by the next "
            "run or listing over that store from this machine.",
            self.run_dir.name,
            self.run_dir,
            self.url,
            self.error,
        )
        return False


def push_copy(run_dir: Path, url: str, name: str | None = None) -> str:
    """``copy_run`` into a store: a finished run pushed whole as ``name`` (or its own
    name); its URL there. FileExistsError when the store has a run of that id."""
    run_id = name or run_dir.name
    status = record.read_run(run_dir)["status"]
    if status == "running":
        raise RunRecordError(
            f"Run {run_dir.name} is still running: copy it into {url} once it has ended (a run "
            f"launched with runs_dir={url!r} is pushed there as it goes)."
        )
    store = ObjectStore(url)
    owner = record.dumps({"host": record.HOST, "copy_of": str(run_dir)}).encode()
    if not store.create(IDS + run_id, owner):
        raise FileExistsError(
            f"Cannot copy {run_dir.name} to {url}: it already holds a run {run_id}. "
            "Pass rename= (trainrun copy --rename NAME)."
        )
    sync = RunSync(run_dir, url)
    sync.run_id = run_id  # claimed above; not remembered beside the run (a copy, not its push)
    sync.push(final=True)
    return f"{parse_url(url)}/{run_id}"


def _mark(run_dir: Path) -> None:
    folder = run_dir.parent / _UNPUSHED
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_dir.name).touch()


def _unmark(run_dir: Path) -> None:
    try:
        (run_dir.parent / _UNPUSHED / run_dir.name).unlink()
    except FileNotFoundError:
        pass


def push_pending(url: str) -> list[str]:
    """Push the runs of this machine that ended while the store was away; their ids."""
    staging = staging_dir(url)
    folder = staging / _UNPUSHED
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    done = []
    for name in names:
        run_dir = staging / name
        if not run_dir.is_dir():
            _unmark(run_dir)
            continue
        sync = RunSync(run_dir, url)
        try:
            sync.push(final=True)
        except StoreUnavailableError:
            break  # still away: the next listing tries again
        _unmark(run_dir)
        done.append(sync.run_id or name)
    return done
