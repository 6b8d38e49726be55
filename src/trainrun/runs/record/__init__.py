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

import functools
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from trainrun._atomic import replace_text
from trainrun.exceptions import RunRecordError
from trainrun.runs.record._files import (
    JSON_LIMIT,
    METRICS_LIMIT,
    NotRegularFileError,
    is_real_folder,
    open_regular,
    read_bytes,
    read_head_tail,
    walk,
)
from trainrun.runs.record._folders import (
    ARCHIVE_DIR,
    candidate_names,
    is_run_folder,
    resolve_run,
    run_by_name,
    run_folder_names,
    run_inside,
)
from trainrun.runs.record._journal import note_change

__all__ = [
    "ARCHIVE_DIR",
    "JSON_LIMIT",
    "METRICS_LIMIT",
    "NotRegularFileError",
    "append_jsonl",
    "candidate_names",
    "check_flags",
    "check_run_fields",
    "column_suffix",
    "dumps",
    "file_signature",
    "finished_since",
    "is_real_folder",
    "is_run_folder",
    "json_safe",
    "last_metrics",
    "new_run_dir",
    "open_regular",
    "parse_json",
    "parse_metrics",
    "read_bytes",
    "read_head_tail",
    "read_json",
    "read_metrics",
    "read_run",
    "resolve_run",
    "resolve_status",
    "run_by_name",
    "run_folder_names",
    "run_inside",
    "run_path",
    "starting_or_killed",
    "utc_now",
    "walk",
    "write_json",
]

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
    """Plain Python values for JSON: numpy/torch scalars unwrapped, keys made text.

    NaN and the infinities stay what they are: they are written as ``NaN``,
    ``Infinity`` and ``-Infinity`` (as Python's json module writes and reads them),
    so a diverged loss reads back as NaN, not as a missing value.
    """
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
    """One line of JSON (NaN and infinities as ``NaN``/``Infinity``, which ``json.loads`` reads)."""
    return json.dumps(_clean(obj), default=_default, ensure_ascii=False)


def json_safe(value: Any) -> Any:
    """``value`` for strict JSON readers (a browser): NaN and infinities as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


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
    note_change(path)  # after the rename: a listing that reads the note sees the file


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


def starting_record(
    run_dir: Path, *, script: str, command: list[str], cwd: str, tags: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """run.json of a run starting now in this process: status "running", nothing ended yet.

    The one place that says what a new record holds; the launcher and in-process runs add
    their own fields through ``extra`` (placed after ``cwd``).
    """
    pid = os.getpid()
    return {
        "id": run_dir.name,
        "script": script,
        "command": command,
        "cwd": cwd,
        **extra,
        "status": "running",
        "start": utc_now(),
        "end": None,
        "duration": None,
        "exit_code": None,
        "error": None,
        "traceback": None,
        "host": HOST,
        "pid": pid,
        "pid_start": process_start_time(pid),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": {},
        "git": None,
        "tags": tags,
    }


def resolve_status(run: Mapping[str, Any]) -> str:
    """The truthful status of a run record: a 'running' run whose owner died is 'killed'.

    Only a run started on this host can be checked; one from another host is
    trusted as written. A status that is not one of STATUSES reads 'unknown'.
    """
    status = run.get("status") or "running"
    if status not in STATUSES:
        return "unknown"
    if status != "running":
        return status
    if run.get("host") not in (None, HOST):
        return status
    pid, pid_start = run.get("pid"), run.get("pid_start")
    if not _is_int64(pid) or not (pid_start is None or _is_int64(pid_start)):
        return "killed"  # no process can be checked: nothing owns the record
    return "running" if process_alive(pid, pid_start) else "killed"


def finished_since(run_dir: str | os.PathLike[str], run: Mapping[str, Any]) -> bool:
    """Whether run.json, read as ``run`` (written 'running') and found with its owner
    dead, says something else now: the owner wrote its end and exited between the read
    and the check. The caller reads the record again instead of calling it killed."""
    if (run.get("status") or "running") != "running":
        return False
    try:
        again = read_json(Path(run_dir) / RUN_FILE)
    except (RunRecordError, OSError):
        return False
    return isinstance(again, dict) and (again.get("status") or "running") != "running"


def _is_int64(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


# ---------------------------------------------------------------- column names


_NOT_NAME = re.compile(r"[^0-9A-Za-z_]+")


@functools.lru_cache(maxsize=8192)  # the same few names recur in every run
def column_suffix(name: Any) -> str:
    """A metric, flag or tag name as the rest of a column name: ``"label/mean"`` -> ``"label_mean"``.

    Every run of characters other than ASCII letters, digits and ``_`` becomes
    one ``_``; leading and trailing ``_`` are dropped; an empty result is
    ``"value"``. The one rule for ``ls_runs`` columns, the index and tuning.
    """
    return _NOT_NAME.sub("_", str(name)).strip("_") or "value"


# ---------------------------------------------------------------- reading


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read a JSON record file; ``default`` if it is absent; RunRecordError naming the file
    if it is not valid UTF-8 JSON, is larger than JSON_LIMIT, or is a link or special file."""
    try:
        data = read_bytes(path, JSON_LIMIT)
    except FileNotFoundError:
        return default
    except RunRecordError:
        raise
    except OSError as exc:
        raise RunRecordError(f"Could not read {os.fspath(path)}: {exc}") from exc
    return parse_json(data, path)


def parse_json(data: bytes, path: str | os.PathLike[str], *, short: bool = False) -> Any:
    """The JSON in ``data`` (read from ``path``); RunRecordError naming the file when it is not.

    ``short``: a message of one clause naming the file alone (a listing's warning
    gathers many).
    """
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        why = f"{exc.msg} at line {exc.lineno}"
    except RecursionError:
        why = "nested too deeply"
    if short:
        raise RunRecordError(f"{os.path.basename(path)} is not valid JSON ({why})")
    raise RunRecordError(
        f"The run record file {os.fspath(path)} is not valid JSON ({why}). "
        "It may have been edited by hand or written by a crashed process; "
        "fix or delete the file."
    )


def parse_metrics(data: bytes) -> list[dict[str, Any]]:
    """The records of metrics.jsonl bytes: one dict per line that parses to an object.

    Lines that do not parse (a truncated last line after a kill) and lines that
    are not objects are skipped. Parsing 100,000 lines one ``json.loads`` at a
    time takes about a second; joined into one array, a fraction of that.
    """
    text = data.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        parsed = json.loads("[" + ",".join(lines) + "]")
    except (ValueError, RecursionError):
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except (ValueError, RecursionError):
                continue
    return [rec for rec in parsed if type(rec) is dict]


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metric history of a run: one dict per logged line, in order (see parse_metrics).

    A metrics.jsonl that is a link, a special file or larger than METRICS_LIMIT
    raises RunRecordError.
    """
    try:
        data = read_bytes(Path(run_dir) / METRICS_FILE, METRICS_LIMIT)
    except FileNotFoundError:
        return []
    return parse_metrics(data)


def last_metrics(history: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The last non-null value of every metric in a history (``step`` and ``time`` excluded)."""
    last: dict[str, Any] = {}
    for rec in history:
        for key, value in rec.items():
            if key in ("step", "time", "epoch") or value is None:
                continue
            last[key] = value
    return last


#: the type each run.json field must have; a field of another type is ignored (and noted)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "script": (str,),
    "command": (list,),
    "start": (str,),
    "end": (str,),
    "duration": (int, float),
    "exit_code": (int,),
    "error": (str,),
    "traceback": (str,),
    "host": (str,),
    "pid": (int,),
    "pid_start": (int,),
    "python": (str,),
    "packages": (dict,),
    "git": (dict,),
    "tags": (dict,),
    "properties": (dict,),
}
_INT_FIELDS = ("exit_code", "pid", "pid_start")
_CHECK_VALUE = frozenset((*_INT_FIELDS, "duration"))


def check_run_fields(run: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``run`` (a run.json object) with each field of the wrong type dropped, and noted.

    A listing, ``show`` and the pages then read every field as its type says.
    """
    bad = []
    dropped = []
    for key, value in run.items():  # the fields present only: a listing checks every run
        types = _FIELD_TYPES.get(key)
        if types is None or value is None:
            continue
        if type(value) is types[0] and key not in _CHECK_VALUE:
            continue  # the common case, decided by one comparison
        if isinstance(value, bool) or not isinstance(value, types):
            bad.append(f"'{key}' is {type(value).__name__}, not {types[0].__name__}")
        elif key in _INT_FIELDS and not _is_int64(value):
            bad.append(f"'{key}' is out of range")
        elif key == "duration" and not math.isfinite(value):  # type: ignore[arg-type]
            bad.append("'duration' is not a finite number")
        else:
            continue
        dropped.append(key)
    if dropped:
        run = {k: v for k, v in run.items() if k not in dropped}
    status = run.get("status")
    if status is not None and status not in STATUSES:
        bad.append(f"'status' is {str(status)[:40]!r}, not one of {', '.join(STATUSES)}")
    if bad:
        problems.append(f"{RUN_FILE}: " + "; ".join(bad) + " (ignored)")
    return run


def check_flags(
    flags: dict[str, Any], problems: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``values`` and ``declared`` mappings of a flags.json object (a wrong type noted)."""
    out = []
    for key in ("values", "declared"):
        value = flags.get(key)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            problems.append(
                f"{FLAGS_FILE}: '{key}' is {type(value).__name__}, not a mapping (ignored)"
            )
            value = {}
        out.append(value)
    declared = {k: v for k, v in out[1].items() if isinstance(v, dict)}
    if len(declared) != len(out[1]):
        problems.append(f"{FLAGS_FILE}: some 'declared' entries are not mappings (ignored)")
    return out[0], declared


def starting_or_killed(folder: str | os.PathLike[str], now: float | None = None) -> str:
    """The status of a run folder without run.json: 'running' while younger than
    STARTING_GRACE_S (the launcher starts the script before its first write), then 'killed'."""
    try:
        age = (now or time.time()) - os.stat(folder).st_mtime
    except OSError:
        age = math.inf
    return "running" if age < STARTING_GRACE_S else "killed"


def run_path(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir`` absolute, its parent resolved and its last component kept (a run folder
    that is a link keeps the link's name: the run's id)."""
    path = Path(run_dir)
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.absolute().parent.resolve() / path.name


def read_run(
    run_dir: str | os.PathLike[str], history: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Everything a run folder records, as one dict (the status resolved).

    Keys: every field of run.json, plus ``run_dir`` (absolute path), ``flags``,
    ``declared_flags``, ``evaluation``, ``metrics`` (last values) and ``problems``
    (a list of strings: files that could not be read, fields of the wrong type,
    which are left out). A missing run.json (a launcher killed between mkdir and
    its first write) still gives a record: 'running' while the folder is younger
    than STARTING_GRACE_S seconds, then 'killed' with the problem noted.
    Raises RunRecordError, naming the file, only when run.json exists and cannot
    be read as a JSON object.
    """
    run_dir = run_path(run_dir)
    problems: list[str] = []
    run = read_json(run_dir / RUN_FILE)
    if run is None:
        status = starting_or_killed(run_dir)
        run = {"status": status}
        if status == "killed":
            problems.append(f"{RUN_FILE} is missing")
    elif not isinstance(run, dict):
        raise RunRecordError(
            f"{run_dir / RUN_FILE} does not hold a JSON object (it holds a "
            f"{type(run).__name__}); fix or delete the file."
        )
    else:
        run = check_run_fields(run, problems)
        status = resolve_status(run)
        if status == "killed" and finished_since(run_dir, run):
            return read_run(run_dir, history)  # it ended between the read and the check
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

    record["flags"], record["declared_flags"] = check_flags(soft(FLAGS_FILE), problems)
    record["evaluation"] = soft(EVALUATION_FILE)
    # a caller that already read the history (the report pages) passes it: read once
    if history is None:
        try:
            history = read_metrics(run_dir)
        except RunRecordError as exc:
            problems.append(str(exc))
            history = []
    record["metrics"] = last_metrics(history)
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
