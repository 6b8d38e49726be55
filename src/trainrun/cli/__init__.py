"""The ``trainrun`` command: one small function per verb over the public Python API."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from trainrun.cli._main import run

    return run(sys.argv[1:] if argv is None else argv)
