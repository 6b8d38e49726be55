"""Argument parsing for ``trainrun``: each verb lives in its own module with ``register()``.

A verb module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit code.
Verb modules import the heavy parts of trainrun inside ``func`` only, so that
``trainrun --help`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from trainrun import __version__
from trainrun.exceptions import TrainrunError

# one module per family of verbs, in the order shown by --help
VERB_MODULES = ("runs", "tune", "view", "ui", "board", "import_tfruns")
# the family of each known verb: `trainrun ls ...` imports cli/runs.py alone, which
# keeps a command's start-up short; --help and any other word load every family
VERB_FAMILY = {
    **dict.fromkeys(("run", "ls", "show", "clean", "restore", "purge", "copy"), "runs"),
    "tune": "tune",
    "view": "view",
    "compare": "view",
    "ui": "ui",
    "board": "board",
    "import-tfruns": "import_tfruns",
}

EXIT_CODES = """exit codes:
  0  success
  1  the command ran but failed (a failed run, a failed trial)
  2  bad usage or bad input (unknown flag, bad filter, no such run)
  130  interrupted (Ctrl-C or SIGTERM)"""


def build_parser(
    families: tuple[str, ...] = VERB_MODULES, verb: str | None = None
) -> argparse.ArgumentParser:
    """The ``trainrun`` parser with the verbs of ``families``.

    ``verb``: the verb on the command line, when known. A family module with a
    ``register_verb(subparsers, verb)`` then adds that verb's parser alone (the
    others are never shown: the command line already chose).
    """
    parser = argparse.ArgumentParser(
        prog="trainrun",
        description="Train models and keep every training run on record.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trainrun {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in families:
        try:
            module = importlib.import_module(f"trainrun.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"trainrun.cli.{name}":
                raise
            continue  # verb not built yet
        if verb is not None and hasattr(module, "register_verb"):
            module.register_verb(sub, verb)
        else:
            module.register(sub)
    return parser


def run(argv: list[str]) -> int:
    family = VERB_FAMILY.get(argv[0]) if argv else None
    parser = build_parser((family,), argv[0]) if family else build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if not argv else 2
    # SIGTERM (a service manager, `kill`, a scheduler's cancel) stops a command as
    # Ctrl-C does: runs are stopped and recorded "interrupted", not left "running"
    from trainrun.runs.launch._signals import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            code = int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except TrainrunError as exc:
        # bad input from the user: the message says what to fix; a traceback would bury it
        print(f"trainrun: error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "exit_at_once", False) and _is_this_command(argv):
        _exit_at_once(code)
    return code


def _is_this_command(argv: list[str]) -> bool:
    """True in the ``trainrun`` process itself, not where a program calls ``main([...])``."""
    entry = sys.argv[0] if sys.argv else ""
    is_entry = os.path.basename(entry) in ("trainrun", "trainrun.exe") or entry.endswith(
        os.path.join("trainrun", "__main__.py")
    )
    return is_entry and sys.argv[1:] == argv


def _exit_at_once(code: int) -> None:
    """End the process now, skipping the interpreter's teardown (~7 ms, a tenth of a launch).

    For verbs whose work is entirely on disk when they return (``trainrun run``:
    the final record is written and fsynced); only the standard streams need
    flushing. Nothing of the user's runs in this process.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)
