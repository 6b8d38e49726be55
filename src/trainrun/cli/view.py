"""``trainrun view RUN`` and ``trainrun compare RUN RUN...``: the report pages."""

from __future__ import annotations

import argparse

from trainrun.cli._options import (
    add_run_ref,
    add_runs_dir,
    add_selection,
    one_run,
    runs_dir,
    selected,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view",
        help="write a run's report page and open it",
        description="Write a run's report page (one self-contained HTML file) and open it "
        "in a browser when the session is interactive. The path is printed either way.",
    )
    add_run_ref(p)
    add_runs_dir(p)
    add_selection(p)
    p.add_argument("-o", "--output", default=None, help="write the page here, do not open it")
    p.add_argument("--no-open", action="store_true", help="never open a browser")
    p.set_defaults(func=_view)

    p = subparsers.add_parser(
        "compare",
        help="compare two or more runs side by side",
        description="Write a page comparing runs side by side (metrics, evaluation, flags, "
        "source and output diffs) and open it when interactive.",
    )
    p.add_argument(
        "runs", nargs="*", metavar="RUN", help="run ids or folders (default: the latest two)"
    )
    add_runs_dir(p)
    add_selection(p)
    p.add_argument("-o", "--output", default=None, help="write the page here, do not open it")
    p.add_argument("--no-open", action="store_true", help="never open a browser")
    p.set_defaults(func=_compare)


def _view(args: argparse.Namespace) -> int:
    from trainrun.runs.report import save_run_view, view_run

    folder = runs_dir(args)
    run = one_run(args, args.run)
    if args.output:
        print(f"Run report: {save_run_view(run, args.output, runs_dir=folder)}")
    else:
        view_run(run, runs_dir=folder, viewer=False if args.no_open else None)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from trainrun.runs.report import compare_runs, save_run_comparison

    runs = selected(args, args.runs)
    if runs is not None and (args.filter or args.latest):
        runs = list(reversed(runs))  # oldest first: the diff reads from earlier to later
    if args.output:
        print(f"Run comparison: {save_run_comparison(runs, args.output, runs_dir=runs_dir(args))}")
    else:
        compare_runs(runs, runs_dir=runs_dir(args), viewer=False if args.no_open else None)
    return 0
