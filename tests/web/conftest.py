"""The dashboard tests serve run folders written as the report tests write them."""

from tests.runs.report.conftest import make_run, runs_dir

# the dashboard over a shared store: the S3 server (moto on 127.0.0.1) and a bucket per test
from tests.runs.store.s3server import s3, s3_server  # noqa: F401

__all__ = ["make_run", "runs_dir"]
