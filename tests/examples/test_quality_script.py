"""The quality script end to end on a tiny budget (its figures come from the full run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# examples, servers and clusters: left out of `make test-fast`
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_churn_quality_script_writes_its_table(tmp_path):
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "churn_quality.py"),
            "--epochs-linear", "1", "--epochs-dnn", "1",
            "--tree-grid", "smoke", "--repeats", "1", "--output", str(out),
        ],
        capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 2 or a traceback: the script broke
    text = out.read_text()
    rows = [
        ln
        for ln in text.splitlines()
        if ln.startswith("| ") and "AUC" not in ln and "---" not in ln
    ]
    assert len(rows) == 3 + 4 + 4, text  # reference, 2 networks, 2 engines x 2 budgets; again
    assert "LogisticRegression" in rows[0] and "+0.0000" in rows[0]
    aucs = [float(row.split("|")[4]) for row in rows[:7]]
    assert all(0.7 < auc <= 1.0 for auc in aucs), aucs
    # the boosted trees: each engine at tf's defaults and at its budget tuned on the
    # training rows (the smoke grid: 5 or 10 trees, depth 2)
    trees = [[c.strip() for c in row.split("|")] for row in rows[7:]]
    assert [(r[1], r[3]) for r in trees] == [
        ("XGBoost", "tf defaults"), ("XGBoost", "tuned"),
        ("LightGBM", "tf defaults"), ("LightGBM", "tuned"),
    ]  # fmt: skip
    assert trees[0][2] == "100 trees, depth 6, lr 0.1" and "depth 2, lr 0.3" in trees[1][2]
    for r in trees:
        cv, auc, alone = r[4], float(r[5]), float(r[6])
        assert (cv == "") == (r[3] == "tf defaults") and 0.7 < auc <= 1.0
        assert 0.7 < alone <= 1.0 and float(r[8]) > 0 and float(r[9]) > 0
    # the exit status is the table's verdict: 0 when every estimator is within 0.01 of
    # LogisticRegression's AUC, else 1 (the table shows gaps rounded to 4 decimals); the
    # boosted trees are informational
    worst = min(float(row.split("|")[5]) for row in rows[:3])
    if abs(worst + 0.01) > 1e-4:
        assert proc.returncode == (0 if worst >= -0.01 else 1), (worst, proc.stdout)


CAPPED = {"OMP_NUM_THREADS": "1", "TRAINRUN_MAX_STEPS": "15", "TRAINRUN_RECORD": "0"}


def _families_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "quality_sklearn.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=240, env={**os.environ, **CAPPED},
    )  # fmt: skip


def _tune_smoke(budgets: Path, cwd: Path, *engines: str) -> subprocess.CompletedProcess:
    """Nested tuning of wine's first two splits on the smoke grid (3 folds each)."""
    return _families_script(
        "--tune-trees", "--data", "wine", "--splits", "2", "--folds", "3", "--grid", "smoke",
        "--engines", *engines, "--budgets", str(budgets), cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def smoke_budgets(tmp_path_factory):
    """(budgets file, the tuning's process): both engines tuned once for this module."""
    pytest.importorskip("sklearn")
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    cwd = tmp_path_factory.mktemp("tune")
    budgets = cwd / "budgets.json"
    proc = _tune_smoke(budgets, cwd, "xgboost", "lightgbm")
    assert proc.returncode == 0, proc.stderr
    return budgets, proc


def test_families_script_averages_repeated_splits_into_its_table(tmp_path, smoke_budgets):
    budgets, _ = smoke_budgets
    table = tmp_path / "families.md"
    proc = _families_script(
        "--data", "wine", "--splits", "2", "--budgets", str(budgets), "--output", str(table),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 2 or a traceback: the script broke
    text = table.read_text()
    assert "mean over 2 repeated 75/25 splits" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| wine |")]
    assert [r.split("|")[3].strip() for r in rows] == [
        "Linear", "DNN", "BoostedTrees (XGBoost)", "BoostedTrees (LightGBM)",
        "Estimator(model_fn)", "Baseline",
    ]  # fmt: skip
    for row in rows:
        cells = [c.strip() for c in row.split("|")]
        ours, theirs, diff = float(cells[4]), float(cells[6]), float(cells[7])
        assert 0.0 < ours <= 1.0 and 0.0 < theirs <= 1.0
        assert diff == pytest.approx(ours - theirs, abs=2e-4)  # a difference of the means
        low, high = (float(v) for v in cells[8].split(".."))
        assert low <= diff + 1e-3 and diff - 1e-3 <= high  # the mean lies within the splits'
        assert cells[9] == ("yes" if diff >= -0.01 else "**no**")
        # the engine called directly and tf's defaults: on the boosted trees' rows only
        if cells[3].startswith("BoostedTrees"):
            assert 0.0 < float(cells[10]) <= 1.0 and 0.0 < float(cells[11]) <= 1.0
        else:
            assert cells[10] == cells[11] == ""
    # each split is printed, both seeds, for every family
    for seed in (0, 1):
        assert proc.stdout.count(f"wine           split {seed} ") == 6, proc.stdout
    # the exit status is the table's verdict
    assert proc.returncode == (0 if all("| yes |" in r for r in rows) else 1)
    # each engine's budgets, as the nested tuning chose them per split
    for engine in ("XGBoost", "LightGBM"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"- wine, {engine} (grid"))
        assert "`smoke`, 16 budgets" in line and "trees, depth 2" in line
        # the budget most splits chose, or every split's own
        assert " of 2 splits**)" in line or "a budget per split; split 0: " in line
        assert "split 1: " in line or "**2 of 2 splits**" in line
        assert f"- **BoostedTrees ({engine})**: within target on " in text
    assert "on validation data only, nested" in text and "seeds 0..1" in text
    misses = [r.split("|")[3].strip() for r in rows if "| **no** |" in r]
    verdict = next(ln for ln in text.splitlines() if ln.startswith("**Verdict.**"))
    assert all(f"wine {family} " in verdict for family in misses), verdict
    assert ("Every family is within" in verdict) == (not misses)


def test_families_script_names_the_fix_for_a_split_without_a_budget(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("lightgbm")
    budgets = tmp_path / "budgets.json"
    budget = {"n_trees": 20, "max_depth": 2, "learning_rate": 0.3}
    held = {str(s): {"budget": budget} for s in (0, 1)}
    budgets.write_text(json.dumps({"engines": {"lightgbm": {"wine": {"splits": held}}}}))
    proc = _families_script(
        "--data", "wine", "--splits", "3", "--engines", "lightgbm", "--budgets", str(budgets),
        "--output", str(tmp_path / "t.md"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"{budgets} has no lightgbm budget for wine split 2 (it holds splits [0, 1])" in (
        proc.stderr
    )
    assert "--tune-trees --engines lightgbm --data wine --splits 3" in proc.stderr
    assert not (tmp_path / "t.md").exists()


def test_tree_budgets_are_tuned_per_split_by_nested_cross_validation(smoke_budgets):
    budgets, proc = smoke_budgets
    for engine in ("xgboost", "lightgbm"):
        assert f"wine ({engine}): 16 budgets x 3 folds of each of 2 training parts" in (proc.stdout)
    # the reference scored on the same folds, beside each split's budget
    assert proc.stdout.count("HistGradientBoosting on the same folds 0.") == 4
    book = json.loads(budgets.read_text())
    q = _script_module()
    for engine in ("xgboost", "lightgbm"):
        entry = book["engines"][engine]["wine"]
        assert entry["grid"] == "smoke" and entry["folds"] == 3 and set(entry["splits"]) == {
            "0", "1",
        }  # fmt: skip
        for seed in (1,):  # (split 0 the same way: one split keeps the test quick)
            # each split's budget is the best over its own training part's folds only
            own = [
                q._fold_scores(("wine", engine, seed, f, 3, q.SMOKE_TREE_GRID)) for f in range(3)
            ]
            key, best, _ = q.choose(own)
            chosen = entry["splits"][str(seed)]
            assert tuple(chosen["budget"].values()) == key
            assert chosen["validation"] == pytest.approx(best[0], abs=1e-6)
            assert set(chosen["budget"]) == set(q.SMOKE_TREE_GRID)


def test_choose_keeps_each_splits_own_best_and_drops_failed_budgets():
    q = _script_module()
    a, b, c = (20, 2), (40, 2), (20, 3)
    split0 = [{a: (0.9, 0.3), b: (0.8, 0.2), c: (0.95, 0.1)}, {a: (0.9, 0.3), b: (0.8, 0.2)}]
    # c failed on one fold of split 0: no candidate there, though its one score is the best
    assert q.choose(split0)[0] == a
    split1 = [{a: (0.7, 0.3), b: (0.8, 0.2)}, {a: (0.7, 0.3), b: (0.8, 0.2)}]
    assert q.choose(split1)[0] == b  # another split, its own choice
    # ties: the lower loss, then fewer trees
    tie = [{a: (0.9, 0.3), b: (0.9, 0.2)}]
    assert q.choose(tie)[0] == b
    assert q.choose([{a: (0.9, 0.2), b: (0.9, 0.2)}])[0] == a


def _script_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "quality_sklearn", ROOT / "scripts" / "quality_sklearn.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("engine", ["xgboost", "lightgbm"])
def test_tree_tuning_never_reads_the_test_parts(monkeypatch, engine):
    """Every fold's scores are the same when the outer test parts are replaced by garbage."""
    pytest.importorskip("sklearn")
    pytest.importorskip(engine)
    q = _script_module()
    task = ("wine", engine, 0, 1, 3, q.SMOKE_TREE_GRID)
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
    # every budget in the committed budgets file: tf's arguments, for every split
    book = q.read_budgets(q.BUDGETS_FILE)
    for engine in q.ENGINES:
        for name in q.DATA:
            splits = book["engines"][engine][name]["splits"]
            assert set(splits) >= {str(s) for s in range(q.SEED, q.SEED + q.SPLITS)}
            for chosen in splits.values():
                assert set(chosen["budget"]) <= tf_args and chosen["budget"]["n_trees"] > 0
