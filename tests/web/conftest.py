"""The dashboard tests serve run folders written as the report tests write them."""

from tests.runs.report.conftest import make_run, runs_dir

__all__ = ["make_run", "runs_dir"]
