"""Fixtures for the tuning tests: small real training scripts, a runs folder."""

from __future__ import annotations

from pathlib import Path

import pytest

# A trial script: sleeps, fails on request (or while a 'broken' file sits beside it
# and x == 3), and records an evaluation whose accuracy peaks at x == 2.
SCRIPT = """
import os, sys, time
from trainrun.runs.flags import flags
from trainrun.runs.active import log_metrics, write_evaluation

FLAGS = flags(x=1.0, fail=False, sleep=0.0, label="a")
print("started", FLAGS.x, "pid", os.getpid(), flush=True)
time.sleep(FLAGS.sleep)
broken = os.path.join(os.path.dirname(os.path.abspath(__file__)), "broken")
if FLAGS.fail or (FLAGS.x == 3 and os.path.exists(broken)):
    raise RuntimeError(f"boom at x={FLAGS.x}")
log_metrics(step=1, loss=abs(FLAGS.x - 2))
write_evaluation(accuracy=1 - abs(FLAGS.x - 2) / 10)
print("finished", flush=True)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "train.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
