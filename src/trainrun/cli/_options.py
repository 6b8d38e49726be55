"""Options every verb shares, declared once: ``--runs-dir``, run references, ``--filter``, ``--latest``.

A run reference is what the Python API takes: an id or a unique prefix of one, a run
folder's path, or a small integer counting back from the latest run (0 = latest).
``--filter EXPR`` and ``--latest N`` choose runs as ``ls_runs`` does.
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUNS_DIR_HELP = "folder that holds the runs (default: runs)"
RUN_HELP = "run id, unique id prefix, run folder, or N-th latest (0 = latest)"


def add_runs_dir(p: argparse.ArgumentParser, *, positional_alias: bool = False) -> None:
    """``--runs-dir DIR``; with ``positional_alias`` the older ``VERB [RUNS_DIR]`` form too."""
    p.add_argument("--runs-dir", default="runs", metavar="DIR", help=RUNS_DIR_HELP)
    if positional_alias:
        p.add_argument(
            "old_runs_dir",
            nargs="?",
            default=None,
            metavar="RUNS_DIR",
            help="deprecated: the runs folder as a positional argument; use --runs-dir",
        )
    p.set_defaults(_runs_dir_option=True)


def runs_dir(args: argparse.Namespace) -> str:
    """The runs folder asked for, honouring the deprecated positional alias (with a warning)."""
    from trainrun.exceptions import UsageError

    old = getattr(args, "old_runs_dir", None)
    if old is not None:
        if args.runs_dir not in ("runs", old):
            raise UsageError(
                f"Two runs folders were given: --runs-dir {args.runs_dir} and {old}. "
                f"Give one, as --runs-dir {old}."
            )
        print(
            f"trainrun: warning: the runs folder as a positional argument is deprecated; "
            f"write --runs-dir {old}",
            file=sys.stderr,
        )
        return str(old)
    return str(args.runs_dir)


def add_run_ref(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    if required:
        p.add_argument("run", metavar="RUN", help=RUN_HELP)
    else:
        p.add_argument(
            "run", nargs="?", default=None, metavar="RUN", help=RUN_HELP + " (default 0)"
        )


def add_selection(p: argparse.ArgumentParser) -> None:
    """``--filter EXPR`` and ``--latest N``, as ``trainrun ls`` takes them."""
    p.add_argument("--filter", default=None, metavar="EXPR", help="only runs matching EXPR")
    p.add_argument(
        "--latest", type=positive_int, default=None, metavar="N", help="only the N latest runs"
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def run_ref(text: Any) -> Any:
    """``"0"``, ``"1"``... count back from the latest run, as the Python API's integers do."""
    if isinstance(text, str) and text.isdigit() and len(text) < 6:
        return int(text)
    return text


def selected(args: argparse.Namespace, refs: list[str]) -> list[Any] | None:
    """The runs that ``refs`` (RUN arguments), ``--filter`` and ``--latest`` choose, newest
    first, as run folders; None when none of them was given (the verb's default)."""
    expr = getattr(args, "filter", None)
    latest = getattr(args, "latest", None)
    if not expr and latest is None:
        return [run_ref(r) for r in refs] or None
    from trainrun.runs.store import get_run_dir, ls_runs

    folder = runs_dir(args)
    chosen = ls_runs(folder, filter=expr, latest_n=latest, columns=["run_dir"])["run_dir"].tolist()
    if refs:
        import os

        wanted = {get_run_dir(run_ref(r), folder).name for r in refs}
        chosen = [c for c in chosen if os.path.basename(c) in wanted]
    return chosen


def one_run(args: argparse.Namespace, ref: str | None) -> Any:
    """The one run a single-run verb acts on: RUN, else the newest that --filter/--latest
    choose, else the latest run (0)."""
    from trainrun.exceptions import RunNotFoundError

    runs = selected(args, [ref] if ref is not None else [])
    if runs is None:
        return 0
    if not runs:
        raise RunNotFoundError(
            f"No run in {runs_dir(args)} matches --filter {getattr(args, 'filter', None)!r}"
            f"{' and RUN ' + repr(ref) if ref is not None else ''}; loosen the filter "
            "(trainrun ls shows what there is)."
        )
    return runs[0]
