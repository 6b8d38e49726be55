"""Fixtures for the tuning tests: small real training scripts, a runs folder."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# A trial script: sleeps, fails on request (or while a 'broken' file sits beside it
# and x == 3), and records an evaluation whose accuracy peaks at x == 2.
SCRIPT = """
import os, sys, time
from trainrun.runs.flags import flags
from trainrun.runs.active import log_metrics, write_evaluation

FLAGS = flags(x=1.0, fail=False, sleep=0.0, label="a")
print("started", FLAGS.x, "pid", os.getpid(), flush=True)
time.sleep(FLAGS.sleep)
if FLAGS.fail or (FLAGS.x == 3 and os.path.exists("broken")):
    raise RuntimeError(f"boom at x={FLAGS.x}")
log_metrics(step=1, loss=abs(FLAGS.x - 2))
write_evaluation(accuracy=1 - abs(FLAGS.x - 2) / 10)
print("finished", flush=True)
"""

# Lets a child Python process use the same stand-ins as the tests (see standin.py).
BOOT = textwrap.dedent(
    f"""
    import importlib.util
    _spec = importlib.util.spec_from_file_location("tuning_standin", {str(HERE / "standin.py")!r})
    _m = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_m); _m.install()
    """
)


def _load_standin():
    spec = importlib.util.spec_from_file_location("tuning_standin", HERE / "standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def launcher():
    """training_run and ls_runs: the real ones when they exist, else the stand-ins."""
    _load_standin().install()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "train.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def boot() -> str:
    """Python source that a child process runs first to get the same launcher as the tests."""
    return BOOT
