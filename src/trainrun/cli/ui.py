"""``trainrun ui [runs_dir]``: the local dashboard."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui",
        help="serve a dashboard over a runs folder",
        description="Serve a local dashboard over a runs folder: a live, sortable, filterable "
        "table of runs, run pages, comparisons, each with a JSON twin under /api. "
        "Listens on 127.0.0.1 unless --host says otherwise.",
    )
    p.add_argument(
        "runs_dir", nargs="?", default="runs", help="folder that holds the runs (default: runs)"
    )
    p.add_argument(
        "--port", type=int, default=8700, help="port (default: 8700; 0 picks a free one)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    p.set_defaults(func=_ui)


def _ui(args: argparse.Namespace) -> int:
    from trainrun.web.server import serve

    try:
        serve(args.runs_dir, host=args.host, port=args.port, open_browser=args.open)
    except (OSError, ValueError) as exc:
        print(f"trainrun: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
