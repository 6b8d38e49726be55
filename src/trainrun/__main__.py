"""``python -m trainrun`` is the ``trainrun`` command."""

from trainrun.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
