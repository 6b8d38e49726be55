"""The boosted trees benches run end to end on their --quick settings (their figures come
from full runs, on a quiet machine: nothing here asserts a time or a ratio)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightgbm")

# benches, like examples: left out of `make test-fast`
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(name: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "TRAINRUN_RECORD": "0"},
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_speed_bench_times_both_engines_through_trainrun_and_directly(tmp_path):
    out = run_bench("boosted_trees.py", "--quick", cwd=tmp_path)
    timed = dict(re.findall(r"^  (\S+) +wall +([\d.]+) s +cpu +[\d.]+ s", out, flags=re.MULTILINE))
    assert set(timed) == {
        "trainrun(xgboost)",
        "trainrun(lightgbm)",
        "xgboost",
        "xgboost+encoding",
        "lightgbm",
        "lightgbm+encoding",
    }, out
    auc = dict(re.findall(r"^  (\S+) .* test AUC ([\d.]+)$", out, flags=re.MULTILINE))
    assert all(0.7 < float(v) <= 1.0 for v in auc.values()), auc
    # the direct calls use the parameters trainrun gives each engine: the same trees
    assert auc["trainrun(lightgbm)"] == auc["lightgbm"], out
    assert auc["trainrun(xgboost)"] == auc["xgboost"], out
    for ours, ref in [
        ("trainrun(xgboost)", "xgboost"),
        ("trainrun(lightgbm)", "lightgbm"),
        ("trainrun(lightgbm)", "lightgbm+encoding"),
    ]:
        assert re.search(
            rf"{re.escape(ours)} / {re.escape(ref)} speed ratio: wall [\d.]+x, cpu [\d.]+x "
            r"\(target >= 0.9 on CPU time: (met|NOT met)\)",
            out,
        ), out
    side = re.findall(r"^    (xgboost|lightgbm) +wall .* test AUC ([\d.]+)$", out, re.MULTILINE)
    assert dict(side) == {"xgboost": auc["trainrun(xgboost)"], "lightgbm": auc["lightgbm"]}
    assert "LightGBM / XGBoost time through trainrun" in out


def test_memory_bench_measures_streamed_in_memory_and_floor_in_own_processes(tmp_path):
    out = run_bench("boosted_trees_memory.py", "--quick", "--engine", "lightgbm", cwd=tmp_path)
    rows = re.findall(
        r"^ +lightgbm +(streamed|in memory|floor) +([\d,]+) .*  ([\d,]+)$", out, re.MULTILINE
    )
    assert [r[0] for r in rows] == ["streamed", "in memory", "floor"], out
    peaks = {mode: int(peak.replace(",", "")) for mode, peak, _ in rows}
    assert all(100 < p < 10_000 for p in peaks.values()), peaks  # MiB: a real process's
    # the anonymous part of the streamed peak (sampled from /proc on Linux) is below it
    anon = re.search(r"^ +lightgbm +streamed +[\d,]+ +-?[\d,]+ +([\d,]+) ", out, re.MULTILINE)
    assert anon and 50 < int(anon[1].replace(",", "")) <= peaks["streamed"], out
    assert re.search(r"^lightgbm: streamed / in-memory peak RSS [\d.]+x, over the floor", out, re.M)
    assert not re.search(r"^ +xgboost ", out, re.MULTILINE), out  # --engine lightgbm only
