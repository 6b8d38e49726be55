"""In-process runs that the integrations start when no run is recording the process.

Inside ``trainrun run script.py`` (or ``training_run``) the Keras callback, the
Lightning logger and ``trainrun.sklearn.log_model`` write into that run. In a
plain ``python train.py`` or a notebook they start one here instead: a run
folder under ``runs/`` with the same run.json as a launched run (status,
start and end, host, pid, Python and package versions, a snapshot of the
calling script), made the active run of this process so that everything
logged afterwards (``log_metrics``, ``write_evaluation``, ``log_artifact``)
lands in it too.

The run belongs to the object that started it (a callback, a logger): the same
object training again continues the run; another one ends it and starts its
own. A run is ``completed`` when its owner says so, ``failed`` (with the
traceback) or ``interrupted`` when the process dies of an uncaught exception
or Ctrl-C first; a killed process leaves it ``running``, which readers show
as ``killed``.

This is a small starter of its own until ``trainrun.start_run`` (issue 13)
lands; the two should become one.

>>> import tempfile
>>> from trainrun import _autorun
>>> run = _autorun.ensure(owner="doc", runs_dir=tempfile.mkdtemp(), integration="doctest")
>>> run.end("completed"); run.info["status"]
'completed'
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun.runs import active, record

__all__ = ["AutoRun", "current", "end_current", "ensure", "recording", "write_finished_run"]

DEFAULT_RUNS_DIR = "runs"

_lock = threading.Lock()
_current: AutoRun | None = None


class AutoRun:
    """One in-process run: its folder, its owner, and how it ends."""

    def __init__(self, folder: Path, owner: object, info: dict[str, Any]) -> None:
        self.folder = folder
        self.owner_id = id(owner)
        self.info = info
        self.ended = False
        self._t0 = time.time()

    def end(
        self, status: str = "completed", error: str | None = None, tb: str | None = None
    ) -> None:
        """Write the final status; the run stays active until another one starts."""
        if self.ended:
            return
        self.ended = True
        fields = {
            "status": status,
            "end": record.utc_now(),
            "duration": round(time.time() - self._t0, 6),
            "exit_code": 0 if status == "completed" else 1,
            "error": error,
            "traceback": tb,
        }
        self.info.update(fields)
        from trainrun.runs.record._lock import update_run

        try:
            update_run(self.folder, fields)
        except OSError as exc:
            active._warn_once("autorun-end", f"could not finish the run {self.folder}: {exc}")

    def reopen(self) -> None:
        """Mark an ended run running again (its owner trains once more)."""
        if not self.ended:
            return
        self.ended = False
        from trainrun.runs.record._lock import update_run

        fields = {"status": "running", "end": None, "duration": None, "exit_code": None}
        self.info.update(fields)
        try:
            update_run(self.folder, fields, durable=False)
        except OSError as exc:
            active._warn_once("autorun-reopen", f"could not update the run {self.folder}: {exc}")


def recording() -> bool:
    """True when a run records this process (launched, activated, or started here).

    Asks ``active.run_dir()`` only when something names a run, so that a plain
    script is not told "not recording" by the lookup an integration makes just
    before it starts an in-process run.
    """
    if active._explicit is None and not os.environ.get(active.RUN_DIR_ENV):
        return False
    return active.run_dir() is not None


def current() -> AutoRun | None:
    """The in-process run started here, if it is still this process's active run."""
    run = _current
    if run is None or active._explicit != run.folder:
        return None
    return run


def _script() -> tuple[str, Path | None]:
    """The calling script's name, and its path when it is a file worth snapshotting."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not argv0 or argv0 == "-c":
        return "<interactive>", None
    path = Path(argv0)
    if path.suffix != ".py" or not path.is_file():
        return argv0, None
    resolved = path.resolve()
    if "site-packages" in resolved.parts or "dist-packages" in resolved.parts:
        return argv0, None  # a tool's entry point (pytest, ipykernel), not the user's script
    return argv0, resolved


def ensure(
    owner: object,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    integration: str,
    flags: Mapping[str, Any] | None = None,
) -> AutoRun | None:
    """Make sure a run records ``owner``'s training; None when an outside run already does.

    With a launched run (``trainrun run``) or one started by ``activate``, that
    run is used and nothing is started. An in-process run of the same owner is
    continued; one of another owner is ended (completed) and a new one started.
    """
    global _current
    with _lock:
        mine = current()
        if mine is None and recording():
            return None  # a run launched from outside (or activated by the user) records us
        if mine is not None:
            if mine.owner_id == id(owner):
                mine.reopen()
                return mine
            mine.end("completed")
            active.deactivate()
        root = Path(runs_dir or DEFAULT_RUNS_DIR).expanduser().resolve()
        try:
            folder = record.new_run_dir(root)
            run = AutoRun(folder, owner, _run_info(folder, integration))
            run.info["git"] = _git_state(root)
            record.write_json(folder / record.RUN_FILE, run.info)
        except OSError as exc:
            # bookkeeping must not stop the training: say so once and train unrecorded
            active._warn_once(
                f"autorun:{root}",
                f"could not start a run in {root} ({exc}); this training is not recorded. "
                "Pass runs_dir= a writable folder, or run the script with `trainrun run`.",
            )
            return None
        _snapshot(folder)
        _current = run
        active.activate(folder)
        if flags:
            active.write_run_metadata("flags", dict(flags))
        return run


def end_current(owner: object, status: str = "completed") -> None:
    """End ``owner``'s in-process run, if it has one (it stays active for later writes)."""
    run = current()
    if run is not None and run.owner_id == id(owner):
        run.end(status)


def write_finished_run(
    runs_dir: str | os.PathLike[str],
    *,
    integration: str,
    flags: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    metrics: list[dict[str, Any]] | None = None,
    properties: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    duration: float | None = None,
) -> Path:
    """Write a whole completed run at once (a search's candidate); it never becomes active."""
    folder = record.new_run_dir(Path(runs_dir))
    info = _run_info(folder, integration)
    parent = _current
    if parent is not None:
        info["git"] = parent.info.get("git")  # written in the same moment as the parent
    now = record.utc_now()
    info.update(
        status="completed",
        end=now,
        duration=duration,
        exit_code=0,
        tags={**info["tags"], **(tags or {})},
        properties=dict(properties or {}),
    )
    info["start"] = now
    if metrics:
        stamp = round(time.time(), 6)
        record.append_jsonl(folder / record.METRICS_FILE, [{"time": stamp, **r} for r in metrics])
    record.write_json(
        folder / record.FLAGS_FILE, {"values": dict(flags), "declared": {}}, durable=False
    )
    record.write_json(folder / record.EVALUATION_FILE, dict(evaluation), durable=False)
    record.write_json(folder / record.RUN_FILE, info, durable=False)
    return folder


_versions: dict[str, str] | None = None


def _package_versions() -> dict[str, str]:
    # once a process: a search writes one run per candidate, and installs do not change mid-run
    global _versions
    if _versions is None:
        from trainrun.runs.launch._environment import package_versions

        _versions = package_versions()
    return dict(_versions)


def _git_state(runs_root: Path) -> dict[str, Any] | None:
    """The working folder's git commit, branch and dirty state (the runs folder ignored)."""
    try:
        from trainrun.runs.launch._environment import git_state
    except ImportError:  # an older runs half without it
        return None
    try:
        return git_state(Path.cwd(), exclude=(runs_root,))
    except Exception:  # noqa: BLE001 - a broken git must not stop the training
        return None


def _run_info(folder: Path, integration: str) -> dict[str, Any]:
    script, _ = _script()
    pid = os.getpid()
    return {
        "id": folder.name,
        "script": script,
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "status": "running",
        "start": record.utc_now(),
        "end": None,
        "duration": None,
        "exit_code": None,
        "error": None,
        "traceback": None,
        "host": record.HOST,
        "pid": pid,
        "pid_start": record.process_start_time(pid),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": _package_versions(),
        "git": None,
        "tags": {"integration": integration, "in_process": "true"},
    }


def _snapshot(folder: Path) -> None:
    _, script = _script()
    if script is None:
        return
    from trainrun.runs.launch.snapshot import snapshot_source

    try:
        snapshot_source(script, folder / record.SOURCE_DIR, exclude=[folder.parent])
    except OSError as exc:
        active._warn_once("autorun-snapshot", f"could not snapshot {script}: {exc}")


@atexit.register
def _at_exit() -> None:
    """An in-process run still open when the process ends: failed, interrupted or completed."""
    run = _current
    if run is None or run.ended:
        return
    exc = getattr(sys, "last_value", None)
    if exc is None:
        run.end("completed")
        return
    import traceback

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    run.end(status, error=f"{type(exc).__name__}: {exc}", tb=tb)
