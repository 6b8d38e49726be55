"""``trainrun ui [--runs-dir DIR]``: the local dashboard."""

from __future__ import annotations

import argparse

from trainrun.cli._options import add_runs_dir, runs_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ui",
        help="serve a dashboard over a runs folder",
        description="Serve a local dashboard over a runs folder: a live, sortable, filterable "
        "table of runs, run pages, comparisons, each with a JSON twin under /api. "
        "Listens on 127.0.0.1 unless --host says otherwise.",
    )
    add_runs_dir(p, positional_alias=True)
    p.add_argument(
        "--port", type=int, default=8700, help="port (default: 8700; 0 picks a free one)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    p.add_argument(
        "--refresh-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="over a shared store (s3://...): look for its changes at most this often (default: 5)",
    )
    p.set_defaults(func=_ui)


def _ui(args: argparse.Namespace) -> int:
    from trainrun.web.server import serve

    try:
        # a shared store (s3://...): listed from the local index cache, refreshed
        # incrementally; a run's files are fetched when its page opens
        serve(
            runs_dir(args),
            host=args.host,
            port=args.port,
            open_browser=args.open,
            refresh_interval=args.refresh_interval,
        )
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a dashboard is meant to stop
    return 0
