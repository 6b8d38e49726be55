"""``python train.py`` on a script that uses trainrun: say it is not recording, or record.

With no training run, the first trainrun call of a script prints one line
saying that nothing is recorded and how to record. With ``TRAINRUN_RECORD=1``
(``TRAINRUN_RUNS_DIR`` names the runs folder, default ``runs``) the script
records itself instead: an in-process run (:func:`start_run`) starts at that
first call and ends when the interpreter exits, completed, failed (an uncaught
exception, or ``sys.exit`` with a non-zero code) or interrupted (Ctrl-C).
``TRAINRUN_RECORD=0`` silences the line. A project can ask for recording in its
``pyproject.toml`` (found beside the script or in a folder above it)::

    [tool.trainrun]
    record = true          # false: never record, and no reminder either
    runs_dir = "runs"      # where such runs go (TRAINRUN_RUNS_DIR wins)

The environment variable wins over the project setting.

Nothing happens at a prompt, in a notebook (use ``with start_run():`` there),
under pytest, or in the launcher's own flag check.
"""

from __future__ import annotations

import os
import sys
from typing import Any

RECORD_ENV = "TRAINRUN_RECORD"
RUNS_DIR_ENV = "TRAINRUN_RUNS_DIR"
_state = {"done": False}


def _script() -> str | None:
    """The script being run as ``python script.py``, or None (a prompt, a host program)."""
    from trainrun._interactive import in_interactive_python

    if in_interactive_python():
        return None
    arg0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(arg0)
    if not arg0.endswith(".py") or name in ("pytest", "py.test", "__main__.py"):
        return None
    if os.environ.get("TRAINRUN_DESCRIBE_FLAGS") or "pytest" in sys.modules:
        return None
    return arg0 if os.path.isfile(arg0) else None


def no_run() -> bool:
    """Called when trainrun finds no active run; True when a run was started now."""
    if _state["done"]:
        return False
    _state["done"] = True
    script = _script()
    if script is None:
        return False
    wanted = os.environ.get(RECORD_ENV, "").strip().lower()
    setting = _project_setting(script) if not wanted else {}
    if wanted in ("0", "false", "no", "off") or setting.get("record") is False:
        return False
    if wanted in ("1", "true", "yes", "on") or setting.get("record") is True:
        return _record(script, setting.get("runs_dir"))
    try:
        sys.stderr.write(
            f"trainrun: not recording: `python {script}` keeps no run record. "
            f"Record it with `trainrun run {script}` or TRAINRUN_RECORD=1 "
            f"(TRAINRUN_RECORD=0 hides this line).\n"
        )
    except (OSError, ValueError, AttributeError):
        pass
    return False


def _project_setting(script: str) -> dict[str, Any]:
    """``[tool.trainrun]`` of the nearest pyproject.toml above the script (at most 6 levels)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no TOML reader in the standard library
        return {}
    folder = os.path.dirname(os.path.abspath(script))
    for _ in range(6):
        path = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(path):
            try:
                with open(path, "rb") as handle:
                    table = tomllib.load(handle).get("tool", {}).get("trainrun", {})
            except (OSError, ValueError):
                return {}
            return table if isinstance(table, dict) else {}
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return {}


def _record(script: str, runs_dir: Any = None) -> bool:
    import atexit

    from trainrun.runs.launch._inprocess import start_run

    folder = os.environ.get(RUNS_DIR_ENV) or (runs_dir if isinstance(runs_dir, str) else "runs")
    try:
        run = start_run(runs_dir=folder)
    except Exception as exc:  # noqa: BLE001 - the script runs on unrecorded
        sys.stderr.write(f"trainrun: warning: could not start recording {script}: {exc}\n")
        return False
    seen: dict[str, Any] = {"exc": None, "code": None}
    previous_hook, previous_exit = sys.excepthook, sys.exit

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        seen["exc"] = value
        previous_hook(kind, value, tb)

    def exit_(code: Any = None) -> None:
        seen["code"] = code
        previous_exit(code)

    def finish() -> None:
        exc = seen["exc"]
        code = seen["code"]
        if exc is None and code not in (None, 0):
            exc = SystemExit(code)
        run.end(exc)

    sys.excepthook = excepthook
    sys.exit = exit_  # type: ignore[assignment]
    atexit.register(finish)
    sys.stderr.write(f"trainrun: recording this script as run {run.id} ({run.run_dir})\n")
    return True
