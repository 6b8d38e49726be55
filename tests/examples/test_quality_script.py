"""The quality script end to end on a tiny budget (its figures come from the full run)."""

import subprocess
import sys
from pathlib import Path

import pytest

# examples, servers and clusters: left out of `make test-fast`
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_churn_quality_script_writes_its_table(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "churn_quality.py"),
            "--epochs-linear",
            "1",
            "--epochs-dnn",
            "1",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 2 or a traceback: the script broke
    text = out.read_text()
    rows = [
        ln
        for ln in text.splitlines()
        if ln.startswith("| ") and "AUC" not in ln and "---" not in ln
    ]
    assert len(rows) == 3, text
    assert "LogisticRegression" in rows[0] and "+0.0000" in rows[0]
    aucs = [float(row.split("|")[4]) for row in rows]
    assert all(0.7 < auc <= 1.0 for auc in aucs), aucs
    # the exit status is the table's verdict: 0 when every estimator is within 0.01 of
    # LogisticRegression's AUC, else 1 (the table shows gaps rounded to 4 decimals)
    worst = min(float(row.split("|")[5]) for row in rows)
    if abs(worst + 0.01) > 1e-4:
        assert proc.returncode == (0 if worst >= -0.01 else 1), (worst, proc.stdout)


CAPPED = {"OMP_NUM_THREADS": "1", "TRAINRUN_MAX_STEPS": "15", "TRAINRUN_RECORD": "0"}


def _families_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "quality_sklearn.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=240, env={**os.environ, **CAPPED},
    )  # fmt: skip


def test_families_script_averages_repeated_splits_into_its_table(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    table = tmp_path / "families.md"
    proc = _families_script("--data", "wine", "--splits", "2", "--output", str(table), cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # 2 or a traceback: the script broke
    text = table.read_text()
    assert "mean over 2 repeated 75/25 splits" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| wine |")]
    assert [r.split("|")[3].strip() for r in rows] == [
        "Linear", "DNN", "BoostedTrees", "Estimator(model_fn)", "Baseline",
    ]  # fmt: skip
    for row in rows:
        cells = [c.strip() for c in row.split("|")]
        ours, theirs, diff = float(cells[4]), float(cells[6]), float(cells[7])
        assert 0.0 < ours <= 1.0 and 0.0 < theirs <= 1.0
        assert diff == pytest.approx(ours - theirs, abs=2e-4)  # a difference of the means
        low, high = (float(v) for v in cells[8].split(".."))
        assert low <= diff + 1e-3 and diff - 1e-3 <= high  # the mean lies within the splits'
        assert cells[9] == ("yes" if diff >= -0.01 else "**no**")
        # the engine called directly and tf's defaults: on the boosted trees' row only
        if cells[3] == "BoostedTrees":
            assert 0.0 < float(cells[10]) <= 1.0 and 0.0 < float(cells[11]) <= 1.0
        else:
            assert cells[10] == cells[11] == ""
    # each split is printed, both seeds, for every family
    for seed in (0, 1):
        assert proc.stdout.count(f"wine           split {seed} ") == 5, proc.stdout
    # the exit status is the table's verdict
    assert proc.returncode == (0 if all("| yes |" in r for r in rows) else 1)
    assert "- wine: " in text and "trees, depth" in text  # the boosted trees' budget
    assert "on validation data only" in text and "seeds 0..1" in text
    misses = [r.split("|")[3].strip() for r in rows if "| **no** |" in r]
    verdict = next(ln for ln in text.splitlines() if ln.startswith("**Verdict.**"))
    assert all(f"wine {family} " in verdict for family in misses), verdict
    assert ("Every family is within" in verdict) == (not misses)


def test_tree_budgets_are_tuned_on_validation_parts(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    proc = _families_script("--tune-trees", "--data", "wine", "--splits", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wine: 216 budgets x 1 validation parts" in proc.stdout
    assert "TREE_BUDGETS = {" in proc.stdout and "'wine': {'n_trees': " in proc.stdout
