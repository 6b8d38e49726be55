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
from trainrun.exceptions import MissingExtraError, TrainrunError, TuningError

# one module per family of verbs, in the order shown by --help
VERB_MODULES = ("runs", "annotate", "tune", "view", "ui", "board", "import_tfruns")
# the family of each known verb: `trainrun ls ...` imports cli/runs.py alone, which
# keeps a command's start-up short; --help and any other word load every family
VERB_FAMILY = {
    **dict.fromkeys(("run", "ls", "show", "clean", "restore", "purge", "copy"), "runs"),
    **dict.fromkeys(("tag", "note", "name"), "annotate"),
    "tune": "tune",
    "view": "view",
    "compare": "view",
    "ui": "ui",
    "board": "board",
    "import-tfruns": "import_tfruns",
}

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EXIT_CODES = """exit codes:
  0  success
  1  the command ran but failed (a failed run, a failed trial)
  2  bad usage or bad input (unknown flag, bad filter, no such run)
  130  interrupted (Ctrl-C or SIGTERM)
  141  the output's reader went away (a closed pipe)"""


def build_parser(families: tuple[str, ...] = VERB_MODULES) -> argparse.ArgumentParser:
    """The ``trainrun`` parser with the verbs of ``families``."""
    parser = argparse.ArgumentParser(
        prog="trainrun",
        description="Train models and keep every training run on record.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trainrun {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in families:
        importlib.import_module(f"trainrun.cli.{name}").register(sub)
    return parser


def run(argv: list[str]) -> int:
    family = VERB_FAMILY.get(argv[0]) if argv else None
    parser = build_parser((family,)) if family else build_parser()
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
    except BaseException as exc:
        handled = handle_error(exc)
        if handled is None:
            raise
        return handled
    return code


#: the exit code of each error a command may end with (the first class that matches)
ERROR_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (TuningError, EXIT_FAILED),  # a tuning that could not go on: the command ran, and failed
    (MissingExtraError, EXIT_FAILED),  # an optional package to install, not a usage mistake
    (TrainrunError, EXIT_USAGE),  # bad input from the user: the message says what to fix
)


def handle_error(exc: BaseException) -> int | None:
    """The one place a command's error becomes a message on stderr and an exit code.

    A ``TrainrunError`` prints ``trainrun: error: <message>`` (no traceback: it would bury
    what to fix); Ctrl-C (or SIGTERM) prints ``trainrun: interrupted`` and gives 130; a
    closed pipe (``trainrun ls | head -1``) ends quietly with 141, as a shell command
    killed by SIGPIPE does. Anything else is a bug: None, and the caller re-raises it.
    """
    if isinstance(exc, KeyboardInterrupt):
        _print_error("trainrun: interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        # the reader went away: further writes to stdout would raise again at exit
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_BROKEN_PIPE
    for kind, code in ERROR_EXIT_CODES:
        if isinstance(exc, kind):
            _print_error(f"trainrun: error: {exc}")
            return code
    return None


def _print_error(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed too: the exit code still tells
        pass
