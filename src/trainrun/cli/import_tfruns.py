"""``trainrun import-tfruns DIR [--runs-dir DIR]``: bring R tfruns runs into a runs folder."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-tfruns",
        help="import the runs of R's tfruns (tfruns.d folders)",
        description="Import tfruns run folders (each holding tfruns.d/): flags, metrics, "
        "evaluation, properties, output, source, plots and files. Runs already imported "
        "are skipped; the tfruns folder is not changed.",
    )
    p.add_argument("source", metavar="DIR", help="a tfruns runs folder, or one tfruns run folder")
    p.add_argument("--runs-dir", default="runs", help="folder to import into (default: runs)")
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from trainrun.runs.tfruns_import import import_tfruns

    imported = import_tfruns(args.source, runs_dir=args.runs_dir)
    for name in imported:
        print(name)
    print(
        f"trainrun: imported {len(imported)} run(s) into {args.runs_dir}"
        + ("" if imported else " (all were imported before)"),
        file=sys.stderr,
    )
    return 0
