"""The CLI tests reuse the tuning tests' trial script and runs folder."""

from tests.runs.tuning.conftest import runs_dir, script

__all__ = ["runs_dir", "script"]
