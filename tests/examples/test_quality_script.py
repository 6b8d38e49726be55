"""The quality script end to end on a tiny budget (its figures come from the full run)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_tree_budgets_are_tuned_by_cross_validation(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    proc = _families_script(
        "--tune-trees", "--data", "wine", "--splits", "1", "--folds", "3", "--grid", "smoke",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wine: 16 budgets x 1 training parts x 3 folds" in proc.stdout, proc.stdout
    assert "TREE_BUDGETS = {" in proc.stdout and "'wine': {'n_trees': " in proc.stdout
    assert "'center_bias': " in proc.stdout and "'tree_complexity': " in proc.stdout
    # the reference scored on the same folds, beside the tuned budgets
    assert (
        "HistGradientBoosting (the table's reference) on the same folds: validation accuracy 0."
        in proc.stdout
    )


def _script_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "quality_sklearn", ROOT / "scripts" / "quality_sklearn.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tree_tuning_never_reads_the_test_parts(monkeypatch):
    """Every fold's scores are the same when the outer test parts are replaced by garbage."""
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    q = _script_module()
    task = ("wine", 0, 1, 3, q.SMOKE_TREE_GRID)
    honest = q._fold_scores(task)
    split = q.split

    def poisoned(X, y, kind, seed, test_size=0.25):
        Xtr, Xte, ytr, yte = split(X, y, kind, seed, test_size)
        return Xtr, np.full_like(Xte, np.nan), ytr, np.full_like(yte, -1)

    monkeypatch.setattr(q, "split", poisoned)
    assert q._fold_scores(task) == honest
    # 16 budgets and the reference: (metric, loss) each, on a fold of 133 / 3 rows
    assert len(honest) == 17 and ("reference",) in honest
    assert all(0.5 < acc <= 1.0 and loss > 0 for acc, loss in honest.values())


def test_tree_grid_holds_tf_arguments_only():
    import inspect

    pytest.importorskip("sklearn")
    import trainrun

    q = _script_module()
    tf_args = set(inspect.signature(trainrun.BoostedTreesClassifier).parameters)
    for grid in q.GRIDS.values():
        assert set(grid) <= tf_args, set(grid) - tf_args
    for budget in q.TREE_BUDGETS.values():
        assert set(budget) <= tf_args and budget["n_trees"] > 0
