"""The estimator-family examples, end to end on small budgets (the scikit-learn quality
script: tests/examples/test_quality_script.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CAPPED = {"OMP_NUM_THREADS": "1", "TRAINRUN_MAX_STEPS": "15", "TRAINRUN_RECORD": "0"}


def run(path: Path, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(path), *args], cwd=cwd, capture_output=True, text=True,
        timeout=240, env={**os.environ, **CAPPED},
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"{path.name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


@pytest.mark.parametrize("name", ["custom_model.py", "sequence_gru.py"])
def test_family_examples_train_and_evaluate(name, tmp_path):
    out = run(ROOT / "examples" / name, cwd=tmp_path)
    for key in ("accuracy", "auc", "global_step"):
        assert re.search(rf"^{key} = ", out, re.M), key
    assert "global_step = 15" in out
