"""The estimator-family examples and the scikit-learn quality script, end to end on small budgets."""

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


def test_quality_script_writes_its_table(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    table = tmp_path / "families.md"
    run(
        ROOT / "scripts" / "quality_sklearn.py",
        "--data",
        "wine",
        "--output",
        str(table),
        cwd=tmp_path,
    )
    text = table.read_text()
    for family in ("Linear", "DNN", "BoostedTrees", "Estimator(model_fn)", "Baseline"):
        assert re.search(
            rf"^\| wine \| accuracy \| {re.escape(family)} \| 0\.\d{{4}} \|", text, re.M
        )
