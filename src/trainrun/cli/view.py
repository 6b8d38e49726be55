"""``trainrun view RUN`` and ``trainrun compare RUN RUN...``: the report pages."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view",
        help="write a run's report page and open it",
        description="Write a run's report page (one self-contained HTML file) and open it "
        "in a browser when the session is interactive. The path is printed either way.",
    )
    p.add_argument(
        "run", nargs="?", default=None, help="run id or folder (default: the latest run)"
    )
    p.add_argument("--runs-dir", default="runs", help="folder that holds the runs (default: runs)")
    p.add_argument("-o", "--output", default=None, help="write the page here, do not open it")
    p.add_argument("--no-open", action="store_true", help="never open a browser")
    p.set_defaults(func=_view)

    p = subparsers.add_parser(
        "compare",
        help="compare two or more runs side by side",
        description="Write a page comparing runs side by side (metrics, evaluation, flags, "
        "source and output diffs) and open it when interactive.",
    )
    p.add_argument("runs", nargs="*", help="run ids or folders (default: the latest two)")
    p.add_argument("--runs-dir", default="runs", help="folder that holds the runs (default: runs)")
    p.add_argument("-o", "--output", default=None, help="write the page here, do not open it")
    p.add_argument("--no-open", action="store_true", help="never open a browser")
    p.set_defaults(func=_compare)


def _fail(exc: Exception) -> int:
    print(f"trainrun: error: {exc}", file=sys.stderr)
    return 2


def _run_arg(value: str | None):
    # "0", "1" ... mean "latest", "one before" (as the Python API's integer index)
    return int(value) if value is not None and value.isdigit() and len(value) < 6 else value


def _view(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.report import save_run_view, view_run

    try:
        if args.output:
            path = save_run_view(_run_arg(args.run), args.output, runs_dir=args.runs_dir)
            print(f"Run report: {path}")
        else:
            view_run(
                _run_arg(args.run), runs_dir=args.runs_dir, viewer=False if args.no_open else None
            )
    except (TrainrunError, FileNotFoundError, ValueError) as exc:
        return _fail(exc)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.report import compare_runs, save_run_comparison

    runs = [_run_arg(r) for r in args.runs] or None
    try:
        if args.output:
            path = save_run_comparison(runs, args.output, runs_dir=args.runs_dir)
            print(f"Run comparison: {path}")
        else:
            compare_runs(runs, runs_dir=args.runs_dir, viewer=False if args.no_open else None)
    except (TrainrunError, FileNotFoundError, ValueError) as exc:
        return _fail(exc)
    return 0
