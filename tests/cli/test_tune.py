"""`trainrun tune` end to end in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainrun.cli.tune import parse_grid, parse_resources, parse_space, parse_value


def _tune(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainrun", "tune", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_values_from_the_command_line_are_typed():
    assert parse_value("128") == 128 and isinstance(parse_value("128"), int)
    assert parse_value("0.1") == 0.1
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("relu") == "relu"
    assert parse_grid(["dropout=0.1,0.2", "act=relu"]) == {"dropout": [0.1, 0.2], "act": ["relu"]}
    assert parse_resources("cpu=2,gpu=0.5") == {"cpu": 2.0, "gpu": 0.5}
    for bad in (["dropout"], ["=1"], ["a=1", "a=2"], ["a="]):
        with pytest.raises(ValueError, match="Received"):
            parse_grid(bad)
    with pytest.raises(ValueError, match="--resources"):
        parse_resources("cpu")


def test_tune_prints_the_summary_and_exits_1_when_a_trial_failed(script, runs_dir):
    result = _tune(
        str(script),
        "--grid", "x=1,2",
        "--grid", "fail=false,true",
        "--runs-dir", str(runs_dir),
        "--metric", "eval_accuracy",
        "--workers", "2",
        "--yes",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "2 completed, 2 failed" in result.stdout
    assert "boom at x=2.0" in result.stdout
    assert "Best eval_accuracy = 1" in result.stdout


def test_tune_exits_0_when_all_complete_and_resumes(script, runs_dir):
    args = [str(script), "--grid", "x=1,2", "--runs-dir", str(runs_dir), "--yes"]
    first = _tune(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    again = _tune(*args)
    assert again.returncode == 0
    assert "2 already completed (skipped); running 0" in again.stdout


def test_tune_reports_bad_usage_with_exit_2(script, tmp_path):
    bad = _tune(str(script), "--grid", "x")
    assert bad.returncode == 2 and "--grid takes NAME=VALUE" in bad.stderr
    none = _tune(str(script))
    assert none.returncode == 2 and "--grid NAME=V1,V2" in none.stderr
    missing = _tune(str(tmp_path / "nope.py"), "--grid", "x=1")
    assert missing.returncode == 2 and "nope.py" in missing.stderr


def test_space_items_become_an_optuna_space():
    assert parse_space(["lr=float:0.0001:0.1:log", "layer1=int:16:256", "act=relu,tanh"]) == {
        "lr": ("float", 0.0001, 0.1, "log"),
        "layer1": ("int", 16, 256),
        "act": ["relu", "tanh"],
    }
    for bad in (["lr"], ["lr=float:1"], ["n=int:1:2.5"], ["lr=float:0:1:ln"]):
        with pytest.raises(ValueError, match="Received"):
            parse_space(bad)


def test_tune_with_space_runs_an_optuna_search(script, runs_dir):
    pytest.importorskip("optuna")
    result = _tune(
        str(script),
        "--space", "x=float:0:4",
        "--grid", "label=b",
        "--n-trials", "2",
        "--seed", "1",
        "--metric", "eval_accuracy",
        "--runs-dir", str(runs_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Optuna search" in result.stdout and "2 completed" in result.stdout
    assert "Best eval_accuracy" in result.stdout
    bad = _tune(str(script), "--space", "x=float:0:4", "--grid", "label=a,b")
    assert bad.returncode == 2 and "one value per flag" in bad.stderr


def test_tune_refuses_an_undeclared_grid_flag_before_any_trial(script, runs_dir):
    result = _tune(str(script), "--grid", "dropuot=0.1,0.2", "--runs-dir", str(runs_dir), "-y")
    assert result.returncode == 2, result.stderr
    assert "Unknown flag 'dropuot'" in result.stderr and "Traceback" not in result.stderr
    assert not runs_dir.exists()
