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
# Linux's numbers, written out: importing signal (and enum) would add ~7 ms to every launch
_SIGTERM = 15


def _die_with_launcher() -> None:
    text = os.environ.pop(LAUNCHER_ENV, None)
    if not text or not sys.platform.startswith("linux"):
        return
    try:
        launcher = int(text)
    except ValueError:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, _SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return  # no prctl: the script runs as before, orphaned if the launcher is killed
    # the signal is armed only from here on: a launcher that already died went unnoticed
    if os.getppid() != launcher:
        os._exit(128 + _SIGTERM)


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
    _die_with_launcher()
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
