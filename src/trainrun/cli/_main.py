"""Argument parsing for ``trainrun``: each verb lives in its own module with ``register()``.

A verb module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a function taking the parsed arguments and returning an exit code.
Verb modules import the heavy parts of trainrun inside ``func`` only, so that
``trainrun --help`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from trainrun import __version__
from trainrun.exceptions import TrainrunError

# one module per family of verbs, in the order shown by --help
VERB_MODULES = ("runs", "tune", "view", "ui", "board")
# the family of each known verb: `trainrun ls ...` imports cli/runs.py alone, which
# keeps a command's start-up short; --help and any other word load every family
VERB_FAMILY = {
    **dict.fromkeys(("run", "ls", "show", "clean", "restore", "purge", "copy"), "runs"),
    "tune": "tune",
    "view": "view",
    "compare": "view",
    "ui": "ui",
    "board": "board",
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
    from trainrun.runs._launch_signals import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except TrainrunError as exc:
        # bad input from the user: the message says what to fix; a traceback would bury it
        print(f"trainrun: error: {exc}", file=sys.stderr)
        return 2
