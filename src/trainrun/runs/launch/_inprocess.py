"""In-process runs: ``with start_run(...) as run:`` records a run from a notebook or any process.

MLflow's two lines, with trainrun's record: the block gets its own run folder,
listed like any other. run.json says "running" with this process's pid while
the block runs (a process that dies is then read as killed) and then
completed, failed (the exception and its traceback) or interrupted (Ctrl-C).
What the block prints is copied to output.log: at the file descriptors (so C
code, ``os.system`` and child processes are seen too) in a script, through
``sys.stdout`` / ``sys.stderr`` in Jupyter; the calling file is snapshotted into ``source/`` (in Jupyter, the
notebook's cells as ``source/notebook.py``, and the ``.ipynb`` itself when its
path is known); files the block creates or changes under the working folder
are copied into ``artifacts/``; matplotlib figures left open land in ``plots/``.

>>> from trainrun import start_run, log_metrics
>>> with start_run(flags={"lr": 0.1}, runs_dir="runs") as run:  # doctest: +SKIP
...     log_metrics(step=0, loss=1.0)
>>> run.status  # doctest: +SKIP
'completed'
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun.exceptions import FlagError, TrainrunError
from trainrun.runs import active, record
from trainrun.runs.record._lock import update_json, update_run

TRACEBACK_LINES = 60


class _Tee:
    """A text stream that writes to the original and appends to output.log."""

    def __init__(self, original: Any, log: Any, lock: threading.Lock) -> None:
        self._original, self._log, self._lock = original, log, lock

    def write(self, text: str) -> int:
        try:
            with self._lock:
                self._log.write(text)
                self._log.flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed log must not break the user's print()
        return self._original.write(text) if self._original is not None else len(text)

    def flush(self) -> None:
        if self._original is not None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _FdCapture:
    """Output captured at the file descriptors: fd 1 and 2 go through pipes, each copied to
    the original descriptor and to output.log by a thread. Sees what C code, ``os.system``
    and child processes print too. Not used where sys.stdout is no real file (Jupyter)."""

    def __init__(self, log_path: Path) -> None:
        self.log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lock = threading.Lock()
        self.saved: list[int] = []
        self.threads: list[threading.Thread] = []
        for std in (1, 2):
            saved = os.dup(std)
            read, write = os.pipe()
            os.dup2(write, std)
            os.close(write)
            self.saved.append(saved)
            thread = threading.Thread(
                target=self._pump, args=(read, saved), daemon=True, name="trainrun-output"
            )
            thread.start()
            self.threads.append(thread)

    def _pump(self, read: int, out: int) -> None:
        try:
            while True:
                chunk = os.read(read, 65536)
                if not chunk:
                    break
                with self.lock:
                    try:
                        os.write(self.log, chunk)
                    except OSError:
                        pass  # a full disk must not stop the output reaching the terminal
                try:
                    os.write(out, chunk)
                except OSError:
                    pass
        finally:
            os.close(read)

    def stop(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        for std, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, std)  # closes the pipe's writer: its pump sees EOF
        for thread in self.threads:
            thread.join(2.0)  # a child process still holding the pipe: do not wait on it
        for saved in self.saved:
            os.close(saved)
        os.close(self.log)


def _real_std_fds() -> bool:
    """True when sys.stdout and sys.stderr write to fd 1 and 2 (not in Jupyter, not replaced)."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _caller_file() -> str | None:
    """The first frame outside trainrun: the file (or notebook cell) that started the run."""
    here = str(Path(__file__).resolve().parents[2])  # .../trainrun
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not os.path.abspath(name).startswith(here) and not name.startswith("<frozen"):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _ipython() -> Any:
    shell = sys.modules.get("IPython")
    try:
        return shell.get_ipython() if shell is not None else None  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return None


def _snapshot(caller: str | None, run_dir: Path, runs_root: Path) -> dict[str, Any]:
    """source/: the calling script and its neighbours, or the notebook's cells."""
    from trainrun.runs.launch.snapshot import snapshot_source

    dest = run_dir / record.SOURCE_DIR
    shell = _ipython()
    if caller and os.path.isfile(caller) and shell is None:
        return snapshot_source(caller, dest, exclude=[runs_root]).summary()
    if shell is not None:
        namespace = getattr(shell, "user_ns", {}) or {}
        cells = [c for c in namespace.get("In", []) if isinstance(c, str) and c.strip()]
        dest.mkdir(exist_ok=True)
        files = []
        (dest / "notebook.py").write_text(
            "".join(f"# In[{i}]:\n{c.rstrip()}\n\n" for i, c in enumerate(cells, 1)),
            encoding="utf-8",
        )
        files.append("notebook.py")
        for key in ("__vsc_ipynb_file__", "__session__"):
            path = namespace.get(key)
            if isinstance(path, str) and path.endswith(".ipynb") and os.path.isfile(path):
                if not os.path.islink(path) and os.path.getsize(path) <= 20_000_000:
                    import shutil

                    shutil.copyfile(path, dest / os.path.basename(path))
                    files.append(os.path.basename(path))
                break
        return {"files": len(files), "bytes": 0, "skipped": [], "notebook": True}
    return {"files": 0, "bytes": 0, "skipped": ["no source file (interactive session)"]}


def _flags_record(flags: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if flags is None:
        return None
    if not isinstance(flags, Mapping):
        raise FlagError(
            f"start_run() takes flags as a dict of names to values. Received: {flags!r}"
        )
    from trainrun.runs.flags import Flags, _infer

    specs = {}
    for name, value in flags.items():
        spec = _infer(str(name), value)
        specs[spec.name] = spec
    values = {spec.name: spec.default for spec in specs.values()}
    return Flags(values, specs, dict.fromkeys(values, "run")).record()


class Run:
    """A run recorded in this process; ``with start_run(...) as run`` gives one.

    ``run_dir``, ``id``, ``flags`` (a read-only mapping), ``status`` ("running",
    then "completed", "failed" or "interrupted"). :meth:`end` finishes it
    without a ``with`` block.
    """

    def __init__(
        self,
        run_dir: Path,
        runs_root: Path,
        flags: Any,
        capture_output: bool,
        artifacts: bool,
        caller: str | None,
        keep_current: bool = False,
    ) -> None:
        self.run_dir, self.id = run_dir, run_dir.name
        self.keep_current = keep_current
        self.runs_root = runs_root
        self.flags = flags
        self.status = "running"
        self._capture, self._artifacts, self._caller = capture_output, artifacts, caller
        self._start = time.time()
        self._streams: tuple[Any, Any] | None = None
        self._fds: _FdCapture | None = None
        self._log: Any = None
        self._details: threading.Thread | None = None
        self._fields: dict[str, Any] = {}
        self._before: Any = None
        self._sync: Any = None  # a RunSync when runs_dir is s3://...

    # ------------------------------------------------------------ life
    def _begin(self) -> None:
        from trainrun.runs.launch._artifacts import scan

        if self._artifacts:
            self._before = scan(Path.cwd(), exclude=[self.runs_root])
        self._details = threading.Thread(target=self._look_up, daemon=True, name="trainrun-run")
        self._details.start()
        self._start_capture()
        active.activate(self.run_dir)
        _open_runs.append(self)

    def _start_capture(self) -> None:
        if self._capture and _ipython() is None and _real_std_fds():
            try:
                self._fds = _FdCapture(self.run_dir / record.OUTPUT_FILE)
            except OSError:
                self._fds = None
        if self._capture and self._fds is None:
            self._log = open(self.run_dir / record.OUTPUT_FILE, "a", encoding="utf-8")  # noqa: SIM115
            lock = threading.Lock()
            self._streams = (sys.stdout, sys.stderr)
            sys.stdout = _Tee(sys.stdout, self._log, lock)  # type: ignore[assignment]
            sys.stderr = _Tee(sys.stderr, self._log, lock)  # type: ignore[assignment]

    def _stop_capture(self) -> None:
        if self._fds is not None:
            self._fds.stop()
            self._fds = None
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _look_up(self) -> None:
        from trainrun.runs.launch._environment import git_state

        fields: dict[str, Any] = {}
        try:
            fields["source"] = _snapshot(self._caller, self.run_dir, self.runs_root)
        except Exception as exc:  # noqa: BLE001 - the run goes on without a snapshot
            fields["source"] = {"files": 0, "bytes": 0, "skipped": [f"snapshot failed: {exc}"]}
        try:
            fields["packages"] = _package_versions()
            fields["git"] = git_state(Path.cwd(), exclude=(self.runs_root,))
        except Exception:  # noqa: BLE001
            pass
        self._fields = fields

    def end(self, exc: BaseException | None = None) -> None:
        """Finish the run: its status from ``exc`` (None: completed); idempotent."""
        if self.status != "running":
            return
        from trainrun.runs.launch._artifacts import capture_artifacts
        from trainrun.runs.launch._plots import save_open_figures

        exit_code = 0
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            exc = None
        if exc is None:
            outcome = {"status": "completed", "error": None, "traceback": None}
        elif isinstance(exc, SystemExit):
            exit_code = exc.code if isinstance(exc.code, int) else 1
            outcome = {
                "status": "failed",
                "error": f"Exited with code {exc.code}",
                "traceback": None,
            }
        else:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            text = "".join(lines).splitlines()
            if len(text) > TRACEBACK_LINES:
                text = [text[0], "  ...", *text[-(TRACEBACK_LINES - 2) :]]
            interrupted = isinstance(exc, KeyboardInterrupt)
            exit_code = 130 if interrupted else 1
            error = (
                "Interrupted (KeyboardInterrupt)"
                if interrupted
                else (f"{type(exc).__name__}: {exc}")
            )
            outcome = {
                "status": "interrupted" if interrupted else "failed",
                "error": error[:2000],
                "traceback": "\n".join(text),
            }
        try:
            save_open_figures(self.run_dir / record.PLOTS_DIR)
        except Exception:  # noqa: BLE001 - figures are a courtesy
            pass
        self._stop_capture()
        if not self.keep_current:
            active.deactivate()
        if self._details is not None:
            self._details.join(10.0)
        final: dict[str, Any] = {
            **self._fields,
            **outcome,
            "end": record.utc_now(),
            "duration": round(time.time() - self._start, 6),
            "exit_code": exit_code,
        }
        if self._before is not None:
            final["artifacts"] = capture_artifacts(
                Path.cwd(), self.run_dir / record.ARTIFACTS_DIR, self._before, [self.runs_root]
            )
        self.status = str(outcome["status"])
        try:
            update_run(self.run_dir, final)
        except OSError as exc2:
            sys.stderr.write(f"trainrun: error: could not finish run {self.id}: {exc2}\n")
        if self._sync is not None:
            self._sync.stop()  # everything pushed (retried while the store is away)
        if self in _open_runs:
            _open_runs.remove(self)

    def reopen(self) -> None:
        """Mark an ended run running again (its owner trains once more); no-op while running.

        The run becomes this process's active run again and its output is captured
        again, appended to output.log.
        """
        if self.status == "running":
            return
        if active.is_active() and active.run_dir() != self.run_dir:
            raise FlagError(
                f"Run {self.id} cannot be reopened while another run records this process "
                f"({active.run_dir()}); end that run first."
            )
        self.status = "running"
        fields = {"status": "running", "end": None, "duration": None, "exit_code": None}
        fields.update(error=None, traceback=None)
        try:
            update_run(self.run_dir, fields, durable=False)
        except OSError as exc:
            active._warn_once(f"reopen:{self.id}", f"could not update run {self.id}: {exc}")
        self._details = None
        self._before = None
        self._start_capture()
        if active.run_dir() != self.run_dir:
            active.activate(self.run_dir)
        _open_runs.append(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.end(exc)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, status={self.status!r}, run_dir={str(self.run_dir)!r})"


def start_run(
    flags: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    run_dir: str | os.PathLike[str] | None = None,
    capture_output: bool = True,
    artifacts: bool = True,
    source: str | os.PathLike[str] | None = None,
    keep_current: bool = False,
) -> Run:
    """Start recording a run in this process; use as ``with start_run(...) as run:``.

    ``flags``: the run's settings, recorded as its flags (types inferred, as
    ``flags()`` does) and given back as ``run.flags``. ``tags``: ``{str: str}``.
    ``run_dir``: record into this new or empty folder instead of a new one under
    ``runs_dir``. ``capture_output``: copy what is printed to output.log.
    ``artifacts``: copy files the block creates or changes under the working
    folder into ``artifacts/`` (limits and exclusions as for ``training_run``).
    Inside the block, ``log_metrics``, ``write_evaluation``, ``save_plot`` and
    the rest write into this run. Without ``with``, call ``run.end()``; a run
    still open when the process exits ends then (failed or interrupted when an
    uncaught exception ends the process).

    ``source``: the script to snapshot and name as the run's script, for a
    library that starts a run on its caller's behalf (default: the file that
    calls ``start_run``); a name that is no file (``"<interactive>"``) is
    recorded without a snapshot. ``keep_current``: the run stays this process's
    active run after it ends, so that what is logged afterwards (an
    ``evaluate`` after ``fit``) still lands in it; ``run.reopen()`` marks it
    running again.

    >>> with start_run(flags={"dropout": 0.2}) as run:  # doctest: +SKIP
    ...     print(run.flags["dropout"])
    """
    active._plain_script_checked = True  # a program that starts runs needs no reminder
    if active.is_active():
        raise FlagError(
            "start_run() was called while a run is already recording this process "
            f"({active.run_dir()}); end that run first (leave its with-block or call run.end())."
        )
    record_flags = _flags_record(flags)
    remote = None
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # a shared store
        from trainrun.runs.store._sync import check_store, staging_dir

        remote, runs_dir = runs_dir, staging_dir(runs_dir)
        check_store(remote)
    runs_root = Path(runs_dir).expanduser().resolve()
    if run_dir is not None:
        from trainrun.runs.launch import _own_run_dir

        folder = _own_run_dir(run_dir)
    else:
        try:
            folder = record.new_run_dir(runs_root)
        except OSError as exc:
            from trainrun.runs.launch import _cannot_start

            raise _cannot_start(runs_root, exc) from exc
    caller = os.fspath(source) if source is not None else _caller_file()
    shell = _ipython()
    script: str = "<notebook>" if shell is not None else (caller or "<interactive>")
    info = _run_info(folder, script, tags)
    update_run(folder, info)
    values = None
    if record_flags is not None:
        update_json(folder / record.FLAGS_FILE, lambda cur: cur.update(record_flags))
        values = record_flags["values"]
    from trainrun.runs.flags import Flags

    run = Run(
        folder,
        runs_root,
        Flags(values or {}, {}, {}),
        capture_output,
        artifacts,
        caller,
        keep_current,
    )
    if remote is not None:  # pushed as it goes, like a launched run (store/_sync.py)
        from trainrun.runs.store._sync import RunSync

        run._sync = RunSync(folder, remote).start()
    run._begin()
    return run


def _run_info(folder: Path, script: str, tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """run.json of a run starting now in this process (its status "running")."""
    return record.starting_record(
        folder,
        script=script,
        command=list(sys.argv),
        cwd=os.getcwd(),
        tags={str(k): str(v) for k, v in (tags or {}).items()},
        in_process=True,
    )


_versions: dict[str, str] | None = None


def _package_versions() -> dict[str, str]:
    """The installed packages' versions, looked up once a process (installs do not change)."""
    global _versions
    if _versions is None:
        from trainrun.runs.launch._environment import package_versions

        _versions = package_versions()
    return dict(_versions)


_open_runs: list[Run] = []


@atexit.register
def _end_open_runs() -> None:
    """Runs still open when the process ends: failed, interrupted or completed."""
    exc = getattr(sys, "last_value", None)
    for run in list(_open_runs):
        run.end(exc)


# ---------------------------------------------------------------- runs the integrations start
#
# Inside ``trainrun run script.py`` (or ``training_run``) the Keras callback, the Lightning
# logger and ``trainrun.sklearn.log_model`` write into that run. In a plain ``python train.py``
# or a notebook they start one through ``start_run`` instead. The run belongs to the object
# that started it (a callback, a logger): the same object training again reopens it; another
# one ends it and starts its own. It stays the active run after its owner ends it, so that an
# ``evaluate`` after ``fit`` lands in it.

DEFAULT_RUNS_DIR = "runs"

_owner_lock = threading.Lock()
_owned: tuple[Run, int] | None = None  # the integrations' run and id() of its owner


def recording() -> bool:
    """True when a run records this process (launched, activated, or started here).

    Asks ``active.run_dir()`` only when something names a run, so that a plain
    script is not told "not recording" by the lookup an integration makes just
    before it starts an in-process run.
    """
    if active._explicit is None and not os.environ.get(active.RUN_DIR_ENV):
        return False
    return active.run_dir() is not None


def owned_run(owner: object | None = None) -> Run | None:
    """The integrations' in-process run while it is this process's active run (of ``owner``)."""
    if _owned is None or active._explicit != _owned[0].run_dir:
        return None
    if owner is not None and _owned[1] != id(owner):
        return None
    return _owned[0]


def _script_of_process() -> str:
    """The user's script (``sys.argv[0]``) when it is a file worth snapshotting, else a name."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not argv0 or argv0 == "-c":
        return "<interactive>"
    path = Path(argv0)
    if path.suffix != ".py" or not path.is_file():
        return argv0
    resolved = path.resolve()
    if "site-packages" in resolved.parts or "dist-packages" in resolved.parts:
        return argv0  # a tool's entry point (pytest, ipykernel), not the user's script
    return str(resolved)


def ensure_run(
    owner: object,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    integration: str,
) -> Run | None:
    """Make sure a run records ``owner``'s training; None when an outside run already does.

    With a launched run (``trainrun run``) or one the user started or activated,
    that run is used and nothing is started. ``owner``'s own run is reopened;
    one of another owner is ended (completed) and a new one started. A runs
    folder that cannot be written is said once; the training goes on unrecorded.
    """
    global _owned
    with _owner_lock:
        mine = owned_run()
        if mine is None and recording():
            return None  # a run launched from outside (or started by the user) records us
        if mine is not None:
            if _owned is not None and _owned[1] == id(owner):
                mine.reopen()
                return mine
            mine.end()
            active.deactivate()
        root = Path(runs_dir or DEFAULT_RUNS_DIR).expanduser()
        try:
            run = start_run(
                tags={"integration": integration, "in_process": "true"},
                runs_dir=root,
                artifacts=False,
                source=_script_of_process(),
                keep_current=True,
            )
        except (OSError, TrainrunError) as exc:
            # bookkeeping must not stop the training: say so once and train unrecorded
            active._warn_once(
                f"in-process:{root}",
                f"could not start a run in {root} ({exc}); this training is not recorded. "
                "Pass runs_dir= a writable folder, or run the script with `trainrun run`.",
            )
            return None
        _owned = (run, id(owner))
        return run


def end_owned(owner: object, exc: BaseException | None = None) -> None:
    """End ``owner``'s in-process run, if it has one (it stays active for later writes)."""
    run = owned_run(owner)
    if run is not None:
        run.end(exc)


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
    info = _run_info(
        folder,
        _script_of_process(),
        {"integration": integration, "in_process": "true", **(tags or {})},
    )
    parent = owned_run()
    if parent is not None:  # written in the same moment as its parent
        info["git"] = record.read_json(parent.run_dir / record.RUN_FILE).get("git")
    info.update(
        status="completed",
        end=info["start"],
        duration=duration,
        exit_code=0,
        properties=dict(properties or {}),
        packages=_package_versions(),
    )
    if metrics:
        stamp = round(time.time(), 6)
        record.append_jsonl(folder / record.METRICS_FILE, [{"time": stamp, **r} for r in metrics])
    record.write_json(
        folder / record.FLAGS_FILE, {"values": dict(flags), "declared": {}}, durable=False
    )
    record.write_json(folder / record.EVALUATION_FILE, dict(evaluation), durable=False)
    record.write_json(folder / record.RUN_FILE, info, durable=False)
    return folder
