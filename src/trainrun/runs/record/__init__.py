"""The run folder's layout, and the only code that writes or reads its files.

A run is a folder; the folder is the source of truth (the SQLite index in
``store`` is a cache of it)::

    runs/2026-11-27T10-15-42Z/   UTC start, created atomically; "-2", "-3"... on collision
      run.json          id, script, command, status, start, end, duration, exit_code,
                        error, traceback, host, pid, pid_start, python, packages, git, tags
      flags.json        {"values": {name: value}, "declared": {name: {type, default, ...}}}
      metrics.jsonl     one JSON object a line: {"step": 3, "time": 1764..., "loss": 0.4}
      evaluation.json   {name: value}
      output.log        everything the script printed, written live
      source/           snapshot of the script's source files
      plots/ artifacts/ tensorboard/ model/

JSON files are replaced atomically (write a temporary file, then rename), and
metrics are appended one line per write, so a killed run leaves readable
files: at worst a truncated last line of ``metrics.jsonl``, which readers skip.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from trainrun._atomic import replace_text
from trainrun.exceptions import RunRecordError

# typing, socket, tempfile and datetime are left out on purpose: this module is on
# the path of every `trainrun run`, and together they cost ~10 ms of start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUN_FILE = "run.json"
FLAGS_FILE = "flags.json"
METRICS_FILE = "metrics.jsonl"
EVALUATION_FILE = "evaluation.json"
OUTPUT_FILE = "output.log"
SOURCE_DIR = "source"
PLOTS_DIR = "plots"
ARTIFACTS_DIR = "artifacts"
TENSORBOARD_DIR = "tensorboard"
MODEL_DIR = "model"
SUBDIRS = (SOURCE_DIR, PLOTS_DIR, ARTIFACTS_DIR, TENSORBOARD_DIR, MODEL_DIR)

#: Statuses written to run.json. "killed" is never written: it is what a
#: "running" record becomes when the process that owns it is gone.
STATUSES = ("running", "completed", "failed", "interrupted", "killed")
FINISHED = ("completed", "failed", "interrupted", "killed")

#: How long a run folder without run.json counts as a run still starting up.
STARTING_GRACE_S = 30.0


# ---------------------------------------------------------------- writing


def _default(value: Any) -> Any:
    # numpy / torch scalars and paths turn up in user metrics; store them plainly.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON: store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return _clean(value.item())
        except (TypeError, ValueError):
            return value
    return value


def dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), default=_default, ensure_ascii=False, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any, *, durable: bool = True) -> None:
    """Replace ``path`` with ``obj`` as JSON, atomically (readers see old or new, never half).

    ``durable`` (the default) fsyncs the data before the rename, so that the new
    content also survives a power loss or an OS crash. Without it the write is
    still atomic for every reader and survives the writer's crash or kill (the
    data is in the OS's cache), but a power loss right after may leave the old
    file, no file, or an empty one (which readers report as corrupt).

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> write_json(p, {"a": 1}); read_json(p)
    {'a': 1}
    """
    text = json.dumps(_clean(obj), default=_default, ensure_ascii=False, indent=2) + "\n"
    replace_text(path, text, durable=durable)


def append_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Append records, one JSON line each, in a single write (O_APPEND keeps lines whole)."""
    data = "".join(dumps(r) + "\n" for r in records)
    if not data:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, e.g. '2026-11-27T10:15:42.123456Z'."""
    ns = time.time_ns()
    seconds, micros = divmod(ns // 1000, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def new_run_dir(runs_dir: str | os.PathLike[str]) -> Path:
    """Create and return a new, unique run folder under ``runs_dir``.

    The name is the UTC start time; ``mkdir`` is atomic, so two processes that
    start in the same second get different folders ("...Z", "...Z-2", ...).
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    for n in range(1, 10_000):
        path = runs_dir / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        for sub in SUBDIRS:
            (path / sub).mkdir()
        return path
    raise RunRecordError(f"Could not create a unique run folder in {runs_dir} for {stamp}.")


# ---------------------------------------------------------------- processes


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if unknown.

    Stored beside the pid so that a recycled pid is not mistaken for our process.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int | None, pid_start: int | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    if pid_start is not None:
        now = process_start_time(pid)
        if now is not None and now != pid_start:
            return False  # the pid was reused by another process
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
        if stat[stat.rfind(")") + 2 :].startswith("Z"):
            return False
    except OSError:
        pass
    return True


def _host_name() -> str:
    # os.uname().nodename is what socket.gethostname() returns on POSIX, without
    # importing socket (~2 ms on every launch)
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        import socket

        return socket.gethostname()


HOST = _host_name()


def resolve_status(run: Mapping[str, Any]) -> str:
    """The truthful status of a run record: a 'running' run whose owner died is 'killed'.

    Only a run started on this host can be checked; one from another host is
    trusted as written.
    """
    status = run.get("status") or "running"
    if status != "running":
        return status
    if run.get("host") not in (None, HOST):
        return status
    return "running" if process_alive(run.get("pid"), run.get("pid_start")) else "killed"


# ---------------------------------------------------------------- reading


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read a JSON file; ``default`` if it is absent; RunRecordError if it is corrupt."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise RunRecordError(f"Could not read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunRecordError(
            f"The run record file {path} is not valid JSON ({exc.msg} at line {exc.lineno}). "
            "It may have been edited by hand or written by a crashed process; "
            "fix or delete the file."
        ) from exc


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metric history of a run: one dict per logged line, in order.

    Lines that do not parse (a truncated last line after a kill) are skipped.
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def last_metrics(history: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The last non-null value of every metric in a history (``step`` and ``time`` excluded)."""
    last: dict[str, Any] = {}
    for rec in history:
        for key, value in rec.items():
            if key in ("step", "time", "epoch") or value is None:
                continue
            last[key] = value
    return last


def read_run(
    run_dir: str | os.PathLike[str], history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything a run folder records, as one dict (the status resolved).

    Keys: every field of run.json, plus ``run_dir`` (absolute path), ``flags``,
    ``declared_flags``, ``evaluation``, ``metrics`` (last values) and ``problems``
    (a list of strings: files that could not be read). A missing run.json (a run
    folder created by hand, or a launcher killed between mkdir and its first
    write) still gives a record: 'running' while the folder is younger than
    STARTING_GRACE_S seconds, then 'killed' with the problem noted.
    Raises RunRecordError only when run.json exists and is corrupt.
    """
    run_dir = Path(run_dir).resolve()
    problems: list[str] = []
    run = read_json(run_dir / RUN_FILE)
    if run is None:
        # The launcher starts the script before it writes run.json: a young folder
        # without one is a run starting up, an old one a launcher that died.
        try:
            age = time.time() - run_dir.stat().st_mtime
        except OSError:
            age = STARTING_GRACE_S
        run = {"status": "running" if age < STARTING_GRACE_S else "killed"}
        if age >= STARTING_GRACE_S:
            problems.append(f"{RUN_FILE} is missing")
        status = run["status"]
    elif not isinstance(run, dict):
        raise RunRecordError(f"{run_dir / RUN_FILE} does not hold a JSON object.")
    else:
        status = resolve_status(run)
    record: dict[str, Any] = dict(run)
    record["id"] = run_dir.name
    record["run_dir"] = str(run_dir)
    record["status"] = status

    def soft(name: str) -> Any:
        try:
            value = read_json(run_dir / name, default={})
        except RunRecordError as exc:
            problems.append(str(exc))
            return {}
        if not isinstance(value, dict):
            problems.append(f"{name} does not hold a JSON object")
            return {}
        return value

    flags = soft(FLAGS_FILE)
    record["flags"] = dict(flags.get("values", {}))
    record["declared_flags"] = dict(flags.get("declared", {}))
    record["evaluation"] = soft(EVALUATION_FILE)
    # a caller that already read the history (the report pages) passes it: read once
    record["metrics"] = last_metrics(read_metrics(run_dir) if history is None else history)
    record["problems"] = problems
    return record


def file_signature(run_dir: str | os.PathLike[str]) -> tuple[float, ...]:
    """Modification times of the files a listing reads: changes when the record changes."""
    run_dir = Path(run_dir)
    sig = []
    for name in (RUN_FILE, FLAGS_FILE, METRICS_FILE, EVALUATION_FILE):
        try:
            st = os.stat(run_dir / name)
            sig.append(st.st_mtime_ns + st.st_size)
        except FileNotFoundError:
            sig.append(0)
    return tuple(float(x) for x in sig)
