"""training_run(): run a script as a recorded training run.

The launcher creates the run folder, starts the script in a child process
with the same Python, writes run.json (status "running", with its own pid)
while the child's interpreter boots, and copies the child's output live to the
terminal and to output.log. While the
script runs, a thread snapshots the source and looks up package versions and
the git state. When the child exits, run.json gets the final status, exit
code, error and traceback tail.

How the child is started:

- ``[sys.executable, script, --name=value ..., *args]`` as a list: no shell, so
  no flag value can run anything. Flag overrides travel twice: as
  ``--name=value`` arguments (visible in ``command``, and read by scripts that
  parse their own arguments) and as JSON in ``TRAINRUN_FLAGS`` (typed, read by
  :func:`trainrun.flags`, highest precedence).
- ``TRAINRUN_RUN_DIR`` names the run folder; ``PYTHONUNBUFFERED=1`` makes
  output arrive as it is printed.
- The working folder is the caller's, as with ``python src/train.py`` and in
  tfruns (``cwd=`` chooses another, e.g. the script's folder); the script's
  flags.yml is still found beside it. A relative ``runs_dir`` is taken relative
  to the caller's working folder.
- Before any of this, overrides are checked against the flags the script
  declares (:mod:`trainrun.runs.launch._declared`): a refused one leaves no folder.

Statuses: completed (exit code 0); failed (any other exit code, or the child
killed by a signal other than SIGINT/SIGTERM); interrupted (Ctrl-C in the
launcher, the child stopped by SIGINT/SIGTERM, or its exit code 130). A launcher that is itself
killed leaves "running" with a dead pid, which readers report as killed; on
Linux the script gets SIGTERM at that moment (``PR_SET_PDEATHSIG``, armed by the
bootstrap in :mod:`trainrun.runs.launch._child`), so it does not train on as an orphan.
``exit_code`` is the child's return code (negative: the signal number).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from trainrun.exceptions import FlagError, RunRecordError, ScriptNotFoundError, UsageError
from trainrun.runs import record
from trainrun.runs.launch._signals import SigtermInterrupt, Terminated, sigterm_as_interrupt
from trainrun.runs.record._lock import update_json, update_run

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from typing import Any

__all__ = ["training_run", "stop_all_runs", "unique_run_dir"]

#: Seconds the child gets after SIGINT, then after SIGTERM, before SIGKILL.
INTERRUPT_GRACE = 5.0
TERMINATE_GRACE = 2.0

#: The bootstrap that starts scripts on Linux (see :func:`_child_argv`).
_CHILD_FILE = Path(__file__).with_name("_child.py")
#: The launcher's pid for the bootstrap: ``_child.LAUNCHER_ENV``, spelled out here so
#: that the launcher does not import the bootstrap module
_LAUNCHER_ENV = "TRAINRUN_LAUNCHER_PID"
#: ``_child.OUTPUT_FD_ENV``: the read end of the output pipe, for the bootstrap's watcher
_OUTPUT_FD_ENV = "TRAINRUN_OUTPUT_FD"

_children: dict[int, subprocess.Popen[bytes]] = {}
#: Final records that could not be written (a full disk), handed back to the caller.
unwritten: dict[Path, dict[str, Any]] = {}
_children_lock = threading.Lock()


# ---------------------------------------------------------------- checking arguments


def _check_flags(flags: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The overrides by canonical name, and each name as the caller spelled it (for argv)."""
    if flags is None:
        return {}, {}
    if not isinstance(flags, Mapping):
        raise FlagError(
            "training_run() takes flags as a dict of flag names to values. "
            f"Received: flags={flags!r}"
        )
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, value in flags.items():
        if not isinstance(name, str) or not name.strip("-"):
            raise FlagError(f"Flag names must be non-empty strings. Received: {name!r}")
        key = name.lstrip("-").replace("-", "_")
        if not key.isidentifier():
            raise FlagError(
                f"The flag name {name!r} is not valid: use letters, digits and '_' or '-'. "
                f"Received: {name!r}"
            )
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalars from a grid
        if value is not None and not isinstance(value, (str, bool, int, float)):
            raise FlagError(
                f"The value of flag {key!r} must be a number, a string, a boolean or None. "
                f"Received: {key}={value!r}"
            )
        if isinstance(value, str) and "\x00" in value:
            raise FlagError(
                f"The value of flag {key!r} contains a NUL character, which no command line "
                f"can carry. Received: {key}={value!r}"
            )
        if key in out:
            raise FlagError(f"The flag {key!r} is given twice. Received: flags={dict(flags)!r}")
        out[key] = value
        spelled[key] = name.lstrip("-")
    return out, spelled


def _flag_arg(name: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return f"--{name}={text}"


def _check_strings(value: Any, what: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"training_run() {what} must be a list of strings, one per argument. "
            f"Received: {what}={value!r}"
        )
    out = []
    for item in value:
        if not isinstance(item, str):
            raise TypeError(
                f"training_run() {what} must hold strings only. Received: {item!r} in {what}"
            )
        out.append(item)
    return out


def _check_env(env: Mapping[str, Any] | None) -> dict[str, str | None]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise TypeError(
            f"training_run() env must be a dict of variable names to strings. Received: env={env!r}"
        )
    out: dict[str, str | None] = {}
    for key, value in env.items():
        key = str(key)
        text = None if value is None else str(value)
        if not key or "=" in key or "\x00" in key or (text is not None and "\x00" in text):
            raise UsageError(
                "training_run() env names must be non-empty without '=' or NUL, and values "
                f"without NUL. Received: {key!r}={value!r}"
            )
        out[key] = text
    return out


# ---------------------------------------------------------------- the child


def _child_env(
    run_dir: Path, overrides: Mapping[str, Any], env: Mapping[str, str | None] | None
) -> dict[str, str]:
    child = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[str(key)] = str(value)
    child["TRAINRUN_RUN_DIR"] = str(run_dir)
    # always set: a run started from inside another run must not inherit its overrides
    child["TRAINRUN_FLAGS"] = json.dumps(overrides)
    child["PYTHONUNBUFFERED"] = "1"
    child.setdefault("PYTHONIOENCODING", "utf-8")
    return child


def _child_argv(command: list[str], env: dict[str, str]) -> list[str]:
    """What actually starts: on Linux, the script behind the bootstrap that ties it to us.

    ``command`` (``python script.py ...``) stays what the record shows: it is
    what the run is equivalent to. On Linux the child runs
    ``python <trainrun/runs/launch/_child.py> script.py ...``, which arms
    ``PR_SET_PDEATHSIG`` so that a SIGKILLed launcher takes the script with it
    (no preexec_fn: that is unsafe when the launcher has threads).
    """
    if not sys.platform.startswith("linux") or not _CHILD_FILE.is_file():
        return command
    env[_LAUNCHER_ENV] = str(os.getpid())
    return [command[0], str(_CHILD_FILE), *command[1:]]


@contextmanager
def _signals_unblocked() -> Iterator[None]:
    """Unblock SIGINT/SIGTERM in this thread while the child is forked from it.

    A child inherits the forking thread's signal mask, and some hosts block
    SIGINT in their threads (Ray's workers do, and cancel tasks another way);
    a script started from there would ignore the SIGINT that stops it.
    """
    try:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    except (AttributeError, OSError, ValueError):
        yield
        return
    wanted = blocked & {signal.SIGINT, signal.SIGTERM}
    if not wanted:
        yield
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)


def _stop_child(proc: subprocess.Popen[bytes], *, wait_first: bool = True) -> None:
    """SIGINT, then SIGTERM, then SIGKILL, each after a grace period; a second Ctrl-C kills.

    ``wait_first``: a terminal's Ctrl-C reaches the child too, so give it a moment
    to react before signalling it; a SIGTERM sent to the launcher alone does not.

    A child started while SIGINT is ignored here (a background job of a
    non-interactive shell, ``nohup``) inherits that and would sit out the whole
    SIGINT grace period: it gets SIGTERM straight away.
    """
    steps: tuple[tuple[signal.Signals, float], ...] = (
        (signal.SIGINT, INTERRUPT_GRACE),
        (signal.SIGTERM, TERMINATE_GRACE),
    )
    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            steps = steps[1:]
    except (OSError, ValueError):
        pass
    try:
        if wait_first:
            try:
                proc.wait(0.2)
                return
            except subprocess.TimeoutExpired:
                pass
        for sig, grace in steps:
            if proc.poll() is not None:
                return
            proc.send_signal(sig)
            try:
                proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        pass  # impatient: fall through to the kill
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _wait_child(proc: subprocess.Popen[bytes], slice_s: float = 0.5) -> None:
    """Wait for the child to exit, waking every ``slice_s`` seconds.

    In slices: an interrupt raised by another thread without a real signal
    (Ray's task cancel, _thread.interrupt_main) only surfaces between
    bytecodes, never inside one long blocking waitpid(). On Linux the wait is
    on a pidfd, which wakes the moment the child exits; ``Popen.wait(timeout)``
    polls with growing sleeps instead, which can add up to half the script's
    run time (measured: a script that sleeps 0.3 s, training_run 333 ms with
    the pidfd, 378 ms with Popen.wait; median of 12).
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:
        while proc.poll() is None:
            try:
                proc.wait(slice_s)
            except subprocess.TimeoutExpired:
                continue
        return
    import select

    try:
        poller = select.poll()  # not select(): a busy host may hand out fds above 1024
        poller.register(pidfd, select.POLLIN)
        while proc.poll() is None:
            poller.poll(slice_s * 1000)
    finally:
        os.close(pidfd)


def stop_all_runs() -> int:
    """Ask every run this process is running (in any thread) to stop, as Ctrl-C would.

    Sends SIGINT to each child (SIGTERM where SIGINT is ignored in this process,
    and so in its children); their ``training_run`` calls then record them
    as interrupted and return. Returns how many were signalled. For tuning
    loops whose runs live in worker threads.

    >>> stop_all_runs()
    0
    """
    with _children_lock:
        procs = list(_children.values())
    # children started while SIGINT is ignored here ignore it too (see _stop_child)
    sig = signal.SIGTERM if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else signal.SIGINT
    count = 0
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                count += 1
            except OSError:
                pass
    return count


# ---------------------------------------------------------------- while it runs


class _Details(threading.Thread):
    """Source snapshot, package versions and git state, looked up while the script runs.

    Written into run.json as soon as they are known, so that a run whose launcher
    is killed has them too, unless the script has already ended: then the
    launcher's final write carries them (one fsync fewer for short scripts).
    """

    def __init__(self, run_dir: Path, script: Path, runs_root: Path) -> None:
        super().__init__(name="trainrun-details", daemon=True)
        self.run_dir, self.script, self.runs_root = run_dir, script, runs_root
        self.fields: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.finishing = False

    def run(self) -> None:
        from trainrun.runs.launch._environment import git_state, package_versions
        from trainrun.runs.launch.snapshot import snapshot_source

        fields: dict[str, Any] = {}
        try:
            fields["source"] = snapshot_source(
                self.script, self.run_dir / record.SOURCE_DIR, exclude=[self.runs_root]
            ).summary()
        except Exception as exc:  # noqa: BLE001 - the run goes on without a snapshot
            fields["source"] = {"files": 0, "bytes": 0, "skipped": [f"snapshot failed: {exc}"]}
        try:
            fields["packages"] = package_versions()
        except Exception:  # noqa: BLE001
            pass
        try:
            fields["git"] = git_state(self.script.parent, exclude=(self.runs_root,))
        except Exception:  # noqa: BLE001
            pass
        with self.lock:
            self.fields = fields
            write_now = not self.finishing
        if write_now:
            try:
                update_run(self.run_dir, fields)
            except Exception as exc:  # noqa: BLE001
                sys.stderr.write(f"trainrun: warning: could not record run details: {exc}\n")

    def collect(self, timeout: float) -> dict[str, Any]:
        """Called once the script has ended: the details, for the final write."""
        with self.lock:
            self.finishing = True
        self.join(timeout)
        with self.lock:
            return dict(self.fields)


def _outcome(
    returncode: int, interrupted: bool, output: str, terminated: bool = False
) -> dict[str, Any]:
    from trainrun.runs.launch._output import error_from_output

    if returncode == 0:
        return {"status": "completed", "error": None, "traceback": None}
    error, tb = error_from_output(output)
    # 130 = 128 + SIGINT: what shells and many scripts exit with after their own Ctrl-C handling
    if interrupted or returncode in (-signal.SIGINT, -signal.SIGTERM, 130):
        by_sigterm = returncode == -signal.SIGTERM and not interrupted
        how = "SIGTERM" if terminated or by_sigterm else "KeyboardInterrupt"
        return {"status": "interrupted", "error": f"Interrupted ({how})", "traceback": tb}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory?)" if returncode == -signal.SIGKILL else ""
        return {"status": "failed", "error": f"Killed by {name}{hint}", "traceback": tb}
    return {"status": "failed", "error": error or f"Exited with code {returncode}", "traceback": tb}


def interactive_session() -> bool:
    """True at an interactive Python prompt (``python``, ``python -i``, IPython, Jupyter).

    The counterpart of R's ``interactive()``: a script or the ``trainrun``
    command is not interactive, even in a terminal. Whether a browser can
    actually open (a display, not under CI) is then up to the report.

    >>> interactive_session()  # doctest: +SKIP
    False
    """
    from trainrun._interactive import in_interactive_python

    return in_interactive_python()


def _view(run_dir: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("trainrun.runs.report") is None:
        sys.stderr.write("trainrun: note: run reports are not available in this install.\n")
        return
    try:
        from trainrun.runs import report

        report.view_run(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run is recorded; the view is a courtesy
        sys.stderr.write(f"trainrun: warning: could not open the run's report: {exc}\n")


def _save_report(run_dir: Path) -> None:
    try:
        from trainrun.runs import report

        report.save_run_view(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run is recorded; the page is a courtesy
        sys.stderr.write(f"trainrun: warning: could not save the run's report: {exc}\n")


# ---------------------------------------------------------------- the entry point


def training_run(
    script: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    args: Sequence[str] = (),
    tags: Mapping[str, Any] | None = None,
    echo: bool = True,
    env: Mapping[str, str | None] | None = None,
    view: bool | str | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check_flags: bool = True,
    nproc: int | None = None,
    artifacts: bool | None = None,
    output_scalars: bool | str = False,
) -> dict[str, Any]:
    """Run ``script`` as a training run and return its record (as ``read_run`` gives it).

    ``flags``: overrides of the script's flags. ``args``: more command-line
    arguments for the script. ``tags``: ``{str: str}`` stored in run.json (e.g.
    a tuning id). ``echo``: copy the script's output to this process's stdout.
    ``env``: extra environment variables for the child (None removes one).
    ``view``: True opens the run's report afterwards; None (the default) does
    so in an interactive session, as tfruns does in R's console: a Python prompt
    or a Jupyter kernel (inline there; see :func:`interactive_session`), never in
    a script, under CI or from the ``trainrun`` command; False never does;
    ``"save"`` writes the report page into the run folder (``report.html``)
    without opening it.

    ``script``: None picks ``train.py`` in the working folder, else the folder's
    only ``.py`` file (tfruns' default script). ``flags`` may also be the path of
    a YAML file of flag values (tfruns' ``flags = "flags.yml"``).
    ``run_dir``: record into this folder (created; it must not exist or be
    empty) instead of a new one under ``runs_dir``. ``cwd``: the script's working
    folder; None (the default) keeps the caller's, as ``python src/train.py``
    and tfruns do; pass the script's folder to run it from there.
    ``check_flags``: before any run folder exists, learn the flags the script
    declares (its ``trainrun.flags()`` call or its ``argparse`` parser, without
    running the rest of it) and refuse an undeclared or mistyped override with
    FlagError; False passes the overrides unchecked (they are then recorded as
    given, ``sources`` "run").
    ``artifacts``: copy the files the script creates or changes under its working
    folder into the run's ``artifacts/`` (default: on, unless
    ``TRAINRUN_ARTIFACTS=0``; limits and exclusions in docs/flags-and-runs.md).
    ``output_scalars``: True records printed ``key: value`` / ``key=value`` lines
    as metrics; a regular expression with named groups picks them instead.
    ``nproc``: run the script on this many processes with torchrun, recorded as one
    run (data-parallel estimators; see docs/distributed.md); the run fails when any
    rank fails, and every rank is stopped when one dies or the run is interrupted.
    Into a shared store (``runs_dir="s3://..."``) the record's ``run_dir`` is this
    machine's staging copy and ``run_url`` the run in the store (its id there may
    end in ``-2`` when another machine took the same id).

    A failing script is not an error here: the record says "failed" with the
    error and traceback tail. Ctrl-C stops the script, records "interrupted" and
    raises KeyboardInterrupt. So does SIGTERM sent to this process while the run
    lasts, when called in the main thread and no SIGTERM handler is installed
    (the default): it is handled as Ctrl-C (the error reads "Interrupted
    (SIGTERM)") and the previous handler is restored afterwards. A program with
    its own SIGTERM handler keeps it.

    >>> run = training_run("train.py", flags={"dropout": 0.3})  # doctest: +SKIP
    >>> run["status"], run["flags"]["dropout"]  # doctest: +SKIP
    ('completed', 0.3)
    """
    if view not in (None, True, False, "save"):
        raise UsageError(
            "training_run() view must be True, False, None (open it in an interactive "
            f"session) or 'save'. Received: view={view!r}"
        )
    with sigterm_as_interrupt() as guard:
        return _training_run(
            script,
            flags,
            runs_dir,
            args=args,
            tags=tags,
            echo=echo,
            env=env,
            view=view,
            guard=guard,
            run_dir=run_dir,
            cwd=cwd,
            check_flags=check_flags,
            nproc=nproc,
            artifacts=artifacts,
            output_scalars=output_scalars,
        )


def unique_run_dir(runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """A new, empty run folder under ``runs_dir``, named by the UTC time (tfruns' unique_run_dir).

    Created at once (``mkdir`` is atomic), so that two processes never get the
    same one; pass it on as ``training_run(run_dir=...)`` or ``start_run(run_dir=...)``.

    >>> folder = unique_run_dir("runs")  # doctest: +SKIP
    >>> training_run("train.py", run_dir=folder)  # doctest: +SKIP
    """
    runs_root = Path(runs_dir).expanduser().resolve()
    try:
        return record.new_run_dir(runs_root)
    except OSError as exc:
        raise _cannot_start(runs_root, exc) from exc


def _default_script(folder: Path) -> Path:
    """tfruns runs train.R by default; here train.py, else the folder's only script."""
    if (folder / "train.py").is_file():
        return folder / "train.py"
    scripts = sorted(p for p in folder.glob("*.py") if p.is_file())
    if len(scripts) == 1:
        return scripts[0]
    listed = ", ".join(p.name for p in scripts[:10]) or "none"
    raise ScriptNotFoundError(
        f"No script was given and {folder} has no train.py and not exactly one .py file "
        f"(found: {listed}); pass the script to run. Received: script=None"
    )


def _flags_from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """tfruns' ``flags = "flags.yml"``: the overrides read from a YAML file (one profile level)."""
    from trainrun.runs.flags._sources import read_flags_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise FlagError(
            f"training_run() flags names a file that does not exist: {os.fspath(path)!r}; "
            f"pass a dict of flag values or the path of a YAML file. Received: flags={path!r}"
        )
    return read_flags_file(file, None)


def _own_run_dir(path: str | os.PathLike[str]) -> Path:
    folder = Path(path).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(
            p.name not in record.SUBDIRS or not p.is_dir() or any(p.iterdir())
            for p in folder.iterdir()
        ):
            raise FlagError(
                f"training_run(run_dir=...) needs a new or empty folder; {folder} already "
                f"holds files. Choose another folder, or use unique_run_dir(). "
                f"Received: run_dir={os.fspath(path)!r}"
            )
        for sub in record.SUBDIRS:
            (folder / sub).mkdir(exist_ok=True)
    except FlagError:
        raise
    except OSError as exc:
        raise _cannot_start(folder, exc) from exc
    return folder


def _cannot_start(where: Path, exc: OSError) -> RunRecordError:
    import errno

    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    why = "the disk is full" if full else f"{type(exc).__name__}: {exc}"
    return RunRecordError(
        f"Cannot start a training run in {where}: {why}. No run was started; "
        f"{'free some space' if full else 'check the folder'} and try again."
    )


class _Plan:
    """Everything checked before a run folder exists: the script, its folder, the overrides."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    script: str
    script_path: Path
    work_dir: Path
    runs_root: Path
    source: bytes
    overrides: dict[str, Any]
    command: list[str]
    extra_env: dict[str, str | None]
    check_flags: bool
    artifacts: bool | None
    output_scalars: bool | str
    before: dict[str, tuple[int, int]] | None  # the working folder before the script ran


def _resolve_script(script: str | os.PathLike[str] | None, cwd: Any) -> tuple[Path, Path, str]:
    work_dir = Path(cwd).expanduser().resolve() if cwd is not None else Path.cwd()
    if not work_dir.is_dir():
        raise ScriptNotFoundError(
            f"training_run() cwd must be an existing folder. Received: cwd={os.fspath(cwd)!r}"
        )
    if script is None:
        script = _default_script(work_dir)
    script_path = Path(script).expanduser()
    if not script_path.is_absolute() and cwd is not None and not script_path.is_file():
        script_path = work_dir / script_path
    if not script_path.is_file():
        raise ScriptNotFoundError(
            f"The training script {os.fspath(script)!r} does not exist "
            f"(looked in {Path.cwd()}); pass the path of a Python file. "
            f"Received: script={os.fspath(script)!r}"
        )
    return script_path.resolve(), work_dir, os.fspath(script)


def _plan(
    script: str | os.PathLike[str] | None,
    flags: Mapping[str, Any] | str | os.PathLike[str] | None,
    runs_dir: str | os.PathLike[str],
    args: Sequence[str],
    env: Mapping[str, str | None] | None,
    cwd: str | os.PathLike[str] | None,
    check_flags: bool,
) -> _Plan:
    """Check everything the caller gave, learning the script's flags (no folder yet)."""
    from trainrun.runs.launch._declared import (
        Declaration,
        check_overrides,
        override_args,
        script_flags,
    )

    script_path, work_dir, shown = _resolve_script(script, cwd)
    if isinstance(flags, (str, os.PathLike)):
        flags = _flags_from_file(flags)
    overrides, spelled = _check_flags(flags)
    extra_args = _check_strings(args, "args")
    extra_env = _check_env(env)
    try:
        source = script_path.read_bytes()
    except OSError as exc:
        raise ScriptNotFoundError(
            f"Could not read the training script {script_path}: {exc}"
        ) from exc
    declaration = Declaration("unknown", problem="not checked (check_flags=False)")
    if overrides and check_flags:
        probe_env = {**os.environ, **{k: v for k, v in extra_env.items() if v is not None}}
        declaration = script_flags(script_path, work_dir, probe_env, source)
        overrides = check_overrides(declaration, overrides, shown)
        if declaration.kind == "unknown":
            sys.stderr.write(
                f"trainrun: note: could not check the flags of {shown}: "
                f"{declaration.problem}; its overrides go to the script unchecked.\n"
            )
    command = [
        sys.executable,
        str(script_path),
        # as spelled: a script's own argparse may know --learning-rate but not --learning_rate
        *override_args(declaration, overrides, spelled),
        *extra_args,
    ]
    return _Plan(
        script=shown,
        script_path=script_path,
        work_dir=work_dir,
        runs_root=Path(runs_dir).expanduser().resolve(),
        source=source,
        overrides=overrides,
        command=command,
        extra_env=extra_env,
        check_flags=check_flags,
    )


#: A small file kept in a running run's folder and deleted when the disk is full, so
#: that the final run.json can still be written (see :func:`_write_final`).
RESERVE_FILE = ".trainrun-reserve"
RESERVE_BYTES = 64 * 1024


def _create_folder(plan: _Plan, run_dir: str | os.PathLike[str] | None) -> Path:
    """The run folder with its space reserve; on a full disk, nothing is left behind."""
    import shutil

    if run_dir is not None:
        folder = _own_run_dir(run_dir)
        own = False
    else:
        try:
            folder = record.new_run_dir(plan.runs_root)
        except OSError as exc:
            _remove_empty_run_dirs(plan.runs_root)
            raise _cannot_start(plan.runs_root, exc) from exc
        own = True
    try:
        fd = os.open(folder / RESERVE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            except (AttributeError, OSError) as exc:
                if getattr(exc, "errno", None) in _DISK_FULL:
                    raise
                os.write(fd, bytes(RESERVE_BYTES))  # no fallocate on this file system
        finally:
            os.close(fd)
    except OSError as exc:
        if own:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _unlink(folder / RESERVE_FILE)
        raise _cannot_start(folder.parent, exc) from exc
    return folder


def _remove_empty_run_dirs(runs_root: Path) -> None:
    """After a failed mkdir on a full disk: remove this second's run folders left empty."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    for folder in runs_root.glob(f"{stamp}*"):
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            if all(p.is_dir() and not any(p.iterdir()) for p in folder.iterdir()):
                for sub in folder.iterdir():
                    sub.rmdir()
                folder.rmdir()
        except OSError:
            continue


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


_DISK_FULL = (28, 122)  # ENOSPC, EDQUOT (Linux numbers; errno costs nothing but reads clearer)


def _disk_full(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _write_final(run_dir: Path, final: dict[str, Any]) -> str | None:
    """Write the final run.json; on a full disk, free the reserve and retry, then write less.

    Returns None when the record is written, else the problem (the previous
    run.json is then intact: atomic replacement never leaves half a file).
    """
    problem = None
    for attempt in range(3):
        try:
            update_run(run_dir, final)
            return None
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if not _disk_full(exc):
                if attempt:
                    break
                time.sleep(0.05)
                continue
            freed = _unlink(run_dir / RESERVE_FILE)
            final = {**final, "record_error": "disk full: the record was written in its reserve"}
            if not freed:
                # the smallest truthful record: drop the bulky fields, keep the outcome
                final = {
                    k: v for k, v in final.items() if k not in ("packages", "source", "traceback")
                }
                final["record_error"] = "disk full: packages, source summary and traceback left out"
    return problem


#: Characters of the output kept in run.json when output.log could not be written.
OUTPUT_TAIL_CHARS = 4000


def _outcome_note(final: dict[str, Any], pump_error: str | None, output: str) -> None:
    """A failed run on a full disk says so; output that could not be kept is noted."""
    if pump_error:
        final["output_error"] = pump_error
        final["output_tail"] = output[-OUTPUT_TAIL_CHARS:]
    full = "No space left on device" in (pump_error or "") or "[Errno 28]" in str(
        final.get("error") or ""
    )
    if (
        full
        and final.get("status") == "failed"
        and not str(final.get("error")).startswith("disk full")
    ):
        final["error"] = f"disk full: {final.get('error')}"


def _training_run(
    script: str | os.PathLike[str] | None,
    flags: Mapping[str, Any] | None,
    runs_dir: str | os.PathLike[str],
    *,
    args: Sequence[str],
    tags: Mapping[str, Any] | None,
    echo: bool,
    env: Mapping[str, str | None] | None,
    view: bool | str | None,
    guard: SigtermInterrupt | None,
    run_dir: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str] | None,
    check_flags: bool,
    nproc: int | None = None,
    artifacts: bool | None = None,
    output_scalars: bool | str = False,
) -> dict[str, Any]:
    remote = None
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        # a shared store: the run is written here first and pushed as it goes (store/_sync.py)
        from trainrun.runs.store._sync import RunSync, check_store, staging_dir

        remote, runs_dir = runs_dir, staging_dir(runs_dir)
        check_store(remote)  # a wrong bucket or credentials: refused before any folder exists
    plan = _plan(script, flags, runs_dir, args, env, cwd, check_flags)
    plan.artifacts = artifacts
    plan.output_scalars = _check_scalars(output_scalars)
    if nproc is not None:  # several ranks under torchrun (see _multiprocess.py)
        from trainrun.runs.launch._multiprocess import check_nproc, multiprocess_command

        plan.command = multiprocess_command(plan.command, check_nproc(nproc))
    tag_map = {str(k): str(v) for k, v in (tags or {}).items()}
    # before any folder exists: a refused override, or a full disk, leaves nothing behind
    folder = _create_folder(plan, run_dir)
    sync = RunSync(folder, remote).start() if remote is not None else None
    try:
        outcome = _launch(plan, folder, tag_map, echo, guard)
    finally:
        _unlink(folder / RESERVE_FILE)
        if sync is not None:
            sync.stop()  # everything pushed (retried while the server is away)
    if outcome is not None:
        raise outcome
    if guard is not None:
        guard.deferred = False
        if guard.received:  # SIGTERM while the record was written: it is complete, now stop
            raise Terminated("SIGTERM")
    if view == "save":
        _save_report(folder)
    elif view or (view is None and interactive_session()):
        _view(folder)
    from trainrun.runs.store._display import RunRecord  # the record, shown in a notebook

    final = unwritten.pop(folder, None)
    # the run's URL in a shared store: its id there may differ (``-2`` when taken)
    where = {"run_url": f"{remote}/{sync.run_id}"} if sync is not None and sync.run_id else {}
    if final is not None:
        # what happened, though the disk could not take it: the caller is not lied to
        return RunRecord({**record.read_run(folder), **final, **where})
    return RunRecord({**record.read_run(folder), **where})


def _check_scalars(pattern: bool | str) -> bool | str:
    if isinstance(pattern, bool):
        return pattern
    if isinstance(pattern, str):
        import re

        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise UsageError(
                f"training_run() output_scalars is not a valid regular expression ({exc}). "
                f"Received: output_scalars={pattern!r}"
            ) from None
        if not compiled.groupindex:
            raise UsageError(
                "training_run() output_scalars needs named groups, e.g. "
                f"r'loss=(?P<loss>\\S+)'. Received: output_scalars={pattern!r}"
            )
        return pattern
    raise UsageError(
        "training_run() output_scalars must be True, False or a regular expression. "
        f"Received: output_scalars={pattern!r}"
    )


def _first_info(plan: _Plan, run_dir: Path, tags: dict[str, str]) -> dict[str, Any]:
    from trainrun.runs.launch._declared import script_digest

    return record.starting_record(
        run_dir,
        script=plan.script,
        command=plan.command,
        cwd=str(plan.work_dir),
        tags=tags,
        script_sha256=script_digest(plan.source),
    )


def _start_child(
    plan: _Plan, run_dir: Path, info: dict[str, Any], write_fd: int, read_fd: int
) -> subprocess.Popen[bytes]:
    child_env = _child_env(run_dir, plan.overrides, plan.extra_env)
    argv = _child_argv(plan.command, child_env)
    keep: tuple[int, ...] = ()
    if argv is not plan.command:  # the bootstrap: it hands the pipe's read end to its watcher
        child_env[_OUTPUT_FD_ENV] = str(read_fd)
        keep = (read_fd,)
    with _signals_unblocked():
        return subprocess.Popen(
            argv,
            cwd=plan.work_dir,
            env=child_env,
            stdout=write_fd,
            stderr=write_fd,
            close_fds=True,
            pass_fds=keep,
        )


def _record_start(run_dir: Path, info: dict[str, Any], plan: _Plan) -> None:
    # merged: the script may already have added properties. Not fsynced: the
    # details write (once the script has run a moment) or the final one makes
    # the record durable; a power loss before that loses a run that had just
    # started, and readers report its folder as killed or corrupt
    update_run(run_dir, info, durable=False)
    if plan.overrides and not plan.check_flags:
        # unchecked overrides (check_flags=False): the script's flags() replaces
        # this with its declarations; a script that parses sys.argv itself still
        # gets its overrides listed, as given
        preset = {
            "values": plan.overrides,
            "declared": {},
            "sources": dict.fromkeys(plan.overrides, "run"),
        }
        update_json(
            run_dir / record.FLAGS_FILE,
            lambda cur: None if cur else cur.update(preset),
            durable=False,
        )


def _launch(
    plan: _Plan,
    run_dir: Path,
    tags: dict[str, str],
    echo: bool,
    guard: SigtermInterrupt | None,
) -> BaseException | None:
    """Start the script, follow it, write the final record; returns what to raise after."""
    import shutil

    from trainrun.runs.launch import _artifacts
    from trainrun.runs.launch._output import OutputPump

    info = _first_info(plan, run_dir, tags)
    plan.before = None
    if _artifacts.enabled(plan.artifacts):
        plan.before = _artifacts.scan(plan.work_dir, exclude=[plan.runs_root])
    start = time.time()
    # The child starts first and run.json is written while its interpreter boots,
    # so the record's fsync adds nothing to the launch. A launcher killed in between
    # leaves a folder without run.json, which readers report as killed.
    read_fd, write_fd = os.pipe()
    try:
        proc = _start_child(plan, run_dir, info, write_fd, read_fd)
    except BaseException as exc:
        os.close(read_fd)
        os.close(write_fd)
        stopped = isinstance(exc, KeyboardInterrupt)
        info.update(
            status="interrupted" if stopped else "failed",
            end=record.utc_now(),
            duration=round(time.time() - start, 6),
            error=f"Could not start the script: {type(exc).__name__}: {exc}",
        )
        problem = _write_final(run_dir, info)
        if problem:
            sys.stderr.write(f"trainrun: error: could not record run {run_dir.name}: {problem}\n")
        if not isinstance(exc, OSError):
            return exc  # recorded, but not ours to swallow
        return None
    os.close(write_fd)  # the child holds the only writer: EOF when it (and its children) exit
    with _children_lock:
        _children[proc.pid] = proc
    info["child_pid"] = proc.pid
    try:
        scalars = None
        if plan.output_scalars:
            from trainrun.runs.launch._scalars import ScalarParser

            scalars = ScalarParser(plan.output_scalars)
        pump = OutputPump(
            read_fd, run_dir / record.OUTPUT_FILE, echo, scalars, run_dir / record.METRICS_FILE
        )
        pump.start()
    except BaseException:
        os.close(read_fd)
        _stop_child(proc, wait_first=False)
        raise
    try:
        _record_start(run_dir, info, plan)
    except OSError as exc:
        # a full disk before the first record: stop the script, leave no folder behind
        _stop_child(proc, wait_first=False)
        pump.join(timeout=2.0)
        with _children_lock:
            _children.pop(proc.pid, None)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise _cannot_start(run_dir.parent, exc) from exc
    return _follow(plan, run_dir, info, proc, pump, start, guard)


def _follow(
    plan: _Plan,
    run_dir: Path,
    info: dict[str, Any],
    proc: subprocess.Popen[bytes],
    pump: Any,
    start: float,
    guard: SigtermInterrupt | None,
) -> BaseException | None:
    details: _Details | None = None
    interrupted = False
    stopped_by: KeyboardInterrupt | None = None
    try:
        try:
            details = _Details(run_dir, plan.script_path, plan.runs_root)
            details.start()
            _wait_child(proc)
        except KeyboardInterrupt as exc:
            interrupted, stopped_by = True, exc
            _stop_child(proc, wait_first=not isinstance(exc, Terminated))
    finally:
        if guard is not None:
            guard.deferred = True  # a SIGTERM now must not cut the final record short
        if proc.poll() is None:  # any other exception on the way out: do not orphan the script
            interrupted = True
            _stop_child(proc)
        ended, duration = record.utc_now(), round(time.time() - start, 6)
        with _children_lock:
            _children.pop(proc.pid, None)
        # a grandchild that outlives the script may hold the pipe open: do not wait forever
        pump.join(timeout=2.0)
        output = pump.text()
        # self-contained: correct even if the first write of run.json was interrupted
        final = {
            **info,
            **(details.collect(timeout=10.0) if details is not None else {}),
            "end": ended,
            "duration": duration,
            "exit_code": proc.returncode,
            **_outcome(proc.returncode, interrupted, output, isinstance(stopped_by, Terminated)),
        }
        if interrupted and proc.returncode == 0:
            final["status"] = "completed"  # it finished before the interrupt reached it
        _outcome_note(final, pump.error, output)
        if plan.before is not None:
            from trainrun.runs.launch._artifacts import capture_artifacts

            try:
                final["artifacts"] = capture_artifacts(
                    plan.work_dir, run_dir / record.ARTIFACTS_DIR, plan.before, [plan.runs_root]
                )
            except Exception as exc:  # noqa: BLE001 - the record matters more
                final["artifacts"] = {"files": [], "count": 0, "bytes": 0, "skipped": [str(exc)]}
        problem = _write_final(run_dir, final)
        if problem:
            final["record_error"] = f"the final record could not be written: {problem}"
            unwritten[run_dir] = final
            sys.stderr.write(
                f"trainrun: error: could not write the final record of run {run_dir.name} "
                f"({problem}); its run.json keeps the last record written. The script "
                f"{'completed' if proc.returncode == 0 else 'ended with exit code ' + str(proc.returncode)}.\n"
            )
    if interrupted:
        return stopped_by or KeyboardInterrupt()
    return None
