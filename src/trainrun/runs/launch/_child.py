"""Bootstrap that runs a training script so that it dies with its launcher (Linux).

``training_run`` starts ``[python, <this file>, script, *args]`` instead of
``[python, script, *args]``. Before the script runs, this asks the kernel to
send SIGTERM when the launcher dies (``prctl(PR_SET_PDEATHSIG)``), then checks
that the launcher is still its parent (it may have died between fork and
prctl). Without it, a SIGKILLed launcher leaves the script training on as an
orphan until its next print hits the closed pipe, while the record says killed.

The script then runs as ``python script.py`` would run it: in a fresh
``__main__`` module that stays in ``sys.modules`` (pickling and
multiprocessing see the script's classes), with ``sys.argv[0]`` the script,
``sys.path[0]`` its folder, tracebacks without this file's frames, exit code
1 for an uncaught exception, ``SystemExit`` handled by the interpreter, and an
uncaught ``KeyboardInterrupt`` ending the process by SIGINT after shutdown.

This file is started by path and imports only the standard library: it does
not need trainrun importable in the child and adds no import time.

Run by hand it behaves as ``python script.py`` (without the death signal
unless ``TRAINRUN_LAUNCHER_PID`` is set)::

    python -m trainrun.runs.launch._child train.py --dropout 0.1
"""

from __future__ import annotations

import builtins
import os
import sys
import types

#: The launcher's pid, set by training_run; removed before the script runs.
LAUNCHER_ENV = "TRAINRUN_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1


def _die_with_launcher() -> int | None:
    text = os.environ.pop(LAUNCHER_ENV, None)
    if not text or not sys.platform.startswith("linux"):
        return None
    try:
        launcher = int(text)
    except ValueError:
        return None
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return None  # no prctl: the script runs as before, orphaned if the launcher is killed
    # the signal is armed only from here on: a launcher that already died went unnoticed
    if os.getppid() != launcher:
        os._exit(128 + int(signal.SIGTERM))
    return launcher


# ---------------------------------------------------------------- the watcher

#: The launcher passes the read end of the output pipe under this name (a number).
OUTPUT_FD_ENV = "TRAINRUN_OUTPUT_FD"
#: Seconds the script gets after SIGTERM, once its launcher has died, before SIGKILL.
WATCH_GRACE = 5.0


def _start_watcher(launcher: int | None) -> None:
    """A tiny process that outlives a killed launcher: it saves the output and ends the script.

    Spawned (``posix_spawn``, not waited for: the script starts at once) as
    ``python -I -S _child.py --watch ...`` with only the pipe's read end and
    ``/dev/null`` for its standard streams, it waits on pidfds for the launcher
    or the script to end. The script ending first (and the launcher having read
    all it printed): it exits. The launcher dying first (SIGKILL, even while
    stopped): it sends the script SIGCONT, so that a stopped script receives its
    death signal, and SIGTERM, copies what is left in the output pipe and what
    the script still prints to output.log, and after :data:`WATCH_GRACE` seconds
    sends SIGKILL.
    """
    text = os.environ.pop(OUTPUT_FD_ENV, None)
    fd = int(text) if text and text.isdigit() else -1
    run_dir = os.environ.get("TRAINRUN_RUN_DIR")
    if fd < 0:
        return
    try:
        if launcher is None or not run_dir or not hasattr(os, "posix_spawn"):
            return
        os.set_inheritable(fd, True)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.posix_spawn(
                sys.executable,
                [sys.executable, "-I", "-S", os.path.abspath(__file__), "--watch",
                 str(launcher), str(os.getpid()), str(fd), os.path.join(run_dir, "output.log")],
                {"PATH": os.environ.get("PATH", "")},
                file_actions=[(os.POSIX_SPAWN_DUP2, null, n) for n in (0, 1, 2)],
                setsid=True,  # out of the terminal's process group: Ctrl-C is not for it
            )  # fmt: skip
        except OSError:
            pass  # no watcher: a killed launcher then loses what is left in the pipe
        finally:
            os.close(null)
    finally:
        os.close(fd)  # the script itself must never hold the read end


def _watch_main(argv: list[str]) -> None:  # pragma: no cover - the watcher process
    launcher, script, fd = int(argv[0]), int(argv[1]), int(argv[2])
    try:
        launcher_fd = os.pidfd_open(launcher)
    except ProcessLookupError:
        launcher_fd = -1  # already gone: act at once
    _watch(launcher_fd, script, fd, argv[3])


def _launcher_drains(launcher_fd: int, fd: int) -> bool:  # pragma: no cover
    """After the script ended: False once the launcher has read the pipe to its end,
    True if the launcher died first (what is left in the pipe is then the watcher's)."""
    import select

    pipe = select.poll()
    pipe.register(fd, select.POLLIN | select.POLLHUP)
    waiter = select.poll()
    waiter.register(launcher_fd, select.POLLIN)
    while True:
        if waiter.poll(50):
            return True
        events = dict(pipe.poll(0)).get(fd, 0)
        if events & select.POLLHUP and not events & select.POLLIN:
            return False  # every writer closed and nothing left unread


def _watch(launcher_fd: int, script: int, fd: int, log: str) -> None:  # pragma: no cover
    import select
    import signal
    import time

    try:
        try:
            script_fd = os.pidfd_open(script)
        except ProcessLookupError:
            script_fd = -1

        def send(sig: int) -> None:
            # through the pidfd: never a signal to a process that reused the pid
            if script_fd >= 0:
                try:
                    signal.pidfd_send_signal(script_fd, sig)
                except OSError:
                    pass

        if launcher_fd >= 0:
            poller = select.poll()
            poller.register(launcher_fd, select.POLLIN)
            if script_fd >= 0:
                poller.register(script_fd, select.POLLIN)
            ready = {f for f, _ in poller.poll()}
            if launcher_fd not in ready and not _launcher_drains(launcher_fd, fd):
                os._exit(0)  # the script ended and the launcher read all it printed
        for sig in (signal.SIGCONT, signal.SIGTERM):
            send(sig)
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        kill_at = time.monotonic() + WATCH_GRACE
        give_up = kill_at + 5.0
        reader = select.poll()
        reader.register(fd, select.POLLIN | select.POLLHUP)
        while time.monotonic() < give_up:
            if time.monotonic() >= kill_at:
                send(signal.SIGKILL)
                kill_at = give_up
            if not reader.poll(200):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break  # every writer closed: the script and its children are gone
            os.write(out, chunk)
    finally:
        os._exit(0)


# ---------------------------------------------------------------- argparse scripts

_DESCRIBE_ENV = "TRAINRUN_DESCRIBE_FLAGS"  # trainrun.runs.flags._describe.DESCRIBE_ENV


def _plain(value: object) -> object:
    """A JSON-ready form of a parsed value or default (paths and the like as strings)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _declared(parser: object) -> dict[str, dict[str, object]]:
    """The parser's options as flag declarations, by ``dest`` (help and version left out)."""
    import argparse

    kinds = {
        argparse._StoreTrueAction: ("boolean", "store_true"),
        argparse._StoreFalseAction: ("boolean", "store_false"),
        argparse.BooleanOptionalAction: ("boolean", "boolean_optional"),
    }
    types: dict[object, str] = {int: "integer", float: "numeric", str: "string", None: "string"}
    out: dict[str, dict[str, object]] = {}
    for action in getattr(parser, "_actions", []):
        strings = list(action.option_strings)
        if not strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue  # positionals are the script's own arguments, not flags
        longs = [o for o in strings if o.startswith("--")]
        if type(action) in kinds:
            type_, kind = kinds[type(action)]
        elif type(action) is argparse._StoreAction and action.nargs in (None, "?"):
            type_ = types.get(action.type, "string")
            kind = (
                "store"
                if action.type in types
                else f"store:{getattr(action.type, '__name__', '?')}"
            )
        else:
            type_, kind = "other", type(action).__name__.strip("_")
        default = action.default if action.default is not argparse.SUPPRESS else None
        out[action.dest] = {
            "type": type_,
            "default": _plain(default),
            "description": action.help if isinstance(action.help, str) else "",
            "choices": _plain(list(action.choices)) if action.choices is not None else None,
            "option": (longs or strings)[0],
            "action": kind,
        }
    return out


def _write_flags(run_dir: str, parser: object, namespace: object) -> None:
    """flags.json for an argparse script: every parsed option, defaults included."""
    import fcntl
    import json

    declared = _declared(parser)
    values = {k: _plain(getattr(namespace, k, None)) for k in declared}
    try:
        requested = json.loads(os.environ.get("TRAINRUN_FLAGS") or "{}")
    except ValueError:
        requested = {}
    sources = {}
    for name, spec in declared.items():
        if name in requested:
            sources[name] = "run"
        elif values[name] != spec["default"]:
            sources[name] = "command line"
        else:
            sources[name] = "default"
    text = json.dumps(
        {"values": values, "declared": declared, "sources": sources, "parser": "argparse"},
        indent=2,
        default=str,
    )
    path = os.path.join(run_dir, "flags.json")
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the lock trainrun's own writers take
        tmp = f"{path}.{os.getpid()}.argparse.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    finally:
        os.close(fd)


def _hook_argparse(describe: bool) -> None:
    """Describe (probe) or record (run) the first parse of the script's argparse parser."""
    import argparse

    original = argparse.ArgumentParser.parse_known_args
    state = {"depth": 0, "done": False}

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        if state["done"] or state["depth"]:
            return original(self, args, namespace)  # a subparser's parse, or a later parser
        if describe:
            state["done"] = True
            from_file = os.environ.get(_DESCRIBE_ENV, "")
            text = __import__("json").dumps({"kind": "argparse", "flags": _declared(self)})
            with open(f"{from_file}.tmp", "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(f"{from_file}.tmp", from_file)
            os._exit(0)  # nothing after the declaration runs
        state["depth"] += 1
        try:
            result = original(self, args, namespace)
        finally:
            state["depth"] -= 1
        state["done"] = True
        run_dir = os.environ.get("TRAINRUN_RUN_DIR")
        if run_dir and os.path.isdir(run_dir):
            try:
                _write_flags(run_dir, self, result[0])
            except Exception as exc:  # noqa: BLE001 - recording must not break the script
                sys.stderr.write(
                    f"trainrun: warning: could not record the parsed arguments: {exc}\n"
                )
        return result

    argparse.ArgumentParser.parse_known_args = parse_known_args  # type: ignore[method-assign]


# ---------------------------------------------------------------- matplotlib figures


def _plots_module() -> types.ModuleType:
    """trainrun's _plots.py, loaded by path (trainrun may not be importable here)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_plots.py")
    spec = importlib.util.spec_from_file_location("_trainrun_plots", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class _PyplotHook:
    """A meta-path finder that waits for ``matplotlib.pyplot`` and then diverts its figures.

    Once pyplot is imported: ``show()`` saves the open figures into plots/, and an
    exit handler (registered after pyplot's own, so that it runs before pyplot
    closes the figures) saves those still open.
    """

    def __init__(self, plots_dir: str) -> None:
        self.plots_dir = plots_dir

    def find_spec(self, name: str, path: object, target: object = None) -> object:
        if name != "matplotlib.pyplot":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # type: ignore[arg-type]
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        plots_dir = self.plots_dir

        def exec_module(module: types.ModuleType) -> None:
            original(module)
            try:
                plots = _plots_module()
                plots.patch_show(module, plots_dir)
                import atexit

                atexit.register(plots.save_open_figures, plots_dir)
            except Exception as exc:  # noqa: BLE001 - figures are a courtesy
                sys.stderr.write(f"trainrun: warning: plots will not be saved: {exc}\n")

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _divert_plots() -> None:
    run_dir = os.environ.get("TRAINRUN_RUN_DIR")
    if not run_dir or os.environ.get("TRAINRUN_PLOTS", "1") in ("0", "false", "no", "off"):
        return
    if "matplotlib.pyplot" in sys.modules:
        return
    sys.meta_path.insert(0, _PyplotHook(os.path.join(run_dir, "plots")))  # type: ignore[arg-type]


def _trim(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Drop this file's frames, so the traceback starts in the script as usual."""
    here = os.path.abspath(__file__)
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == here:
        tb = tb.tb_next
    return tb


class _SigintAtExit:
    """Ends the process by SIGINT after shutdown, as the interpreter does on Ctrl-C.

    Registered with atexit before the script runs, so it runs after the
    script's own atexit handlers (atexit is last in, first out).
    """

    armed = False

    def __call__(self) -> None:
        if not self.armed:
            return
        import signal

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str]) -> None:
    """Run ``argv[0]`` as the main script with ``argv[1:]`` as its arguments."""
    if not argv:
        sys.stderr.write("usage: python -m trainrun.runs.launch._child SCRIPT [ARGS ...]\n")
        raise SystemExit(2)
    if argv[0] == "--watch":
        _watch_main(argv[1:])
        return
    _start_watcher(_die_with_launcher())
    script = argv[0]
    sys.argv[:] = argv
    folder = os.path.dirname(os.path.realpath(script))
    if sys.path and sys.path[0] == os.path.dirname(os.path.realpath(__file__)):
        sys.path[0] = folder  # as for `python script.py`
    elif (
        sys.path and sys.path[0] in ("", os.getcwd()) and not getattr(sys.flags, "safe_path", False)
    ):
        sys.path[0] = folder  # started with -m: the working folder stood first
    import atexit
    from importlib.machinery import SourceFileLoader

    with open(script, "rb") as handle:
        source = handle.read()
    describe = bool(os.environ.get(_DESCRIBE_ENV))
    if not describe:
        _divert_plots()
    # argparse costs ~3 ms to import: only for scripts that name it (or the probe)
    if describe or b"argparse" in source or b"ArgumentParser" in source:
        _hook_argparse(describe)
    sigint_at_exit = _SigintAtExit()
    atexit.register(sigint_at_exit)
    main_module = types.ModuleType("__main__")
    main_module.__file__ = script
    main_module.__cached__ = None  # type: ignore[attr-defined]
    main_module.__loader__ = SourceFileLoader("__main__", script)
    if sys.version_info < (3, 14):  # lazily created from 3.14 on
        main_module.__annotations__ = {}  # type: ignore[attr-defined]
    main_module.__builtins__ = builtins  # type: ignore[attr-defined]
    me = sys.modules.get("__main__")  # keep this module alive while the script runs
    sys.modules["__main__"] = main_module
    try:
        code = compile(source, script, "exec", dont_inherit=True)
        exec(code, main_module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported exactly as the interpreter would
        tb = _trim(exc.__traceback__)
        exc.__traceback__ = tb
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        if sys.version_info >= (3, 12):
            sys.last_exc = exc
        sys.excepthook(type(exc), exc, tb)
        if isinstance(exc, KeyboardInterrupt):
            sigint_at_exit.armed = True
            raise SystemExit(130) from None  # the exit code if the signal cannot end us
        raise SystemExit(1) from None
    finally:
        del me


if __name__ == "__main__":
    main(sys.argv[1:])
