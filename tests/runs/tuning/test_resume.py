"""Resume and runs left 'running': a live launcher's trial is not started twice."""

from __future__ import annotations

import os
import subprocess
import sys

from trainrun.runs import record
from trainrun.runs.tuning import tuning_run


def _left_running(runs_dir, tuning_id: str, trial: int, x: float, pid: int) -> str:
    """A trial record as a launcher leaves it while its script runs (or after a SIGKILL)."""
    folder = record.new_run_dir(runs_dir)
    record.write_json(folder / record.FLAGS_FILE, {"values": {"x": x}, "declared": {}})
    record.write_json(
        folder / record.RUN_FILE,
        {
            "id": folder.name,
            "script": "train.py",
            "status": "running",
            "start": record.utc_now(),
            "host": record.HOST,
            "pid": pid,
            "pid_start": record.process_start_time(pid),
            "tags": {"tuning_id": tuning_id, "trial": str(trial)},
        },
    )
    return str(folder)


def test_resume_leaves_live_trials_alone_and_reruns_killed_ones(script, runs_dir, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: its record reads as killed
    live = _left_running(runs_dir, "t-live", 1, 1.0, os.getpid())  # this process: alive
    killed = _left_running(runs_dir, "t-live", 2, 2.0, dead.pid)
    df = tuning_run(script, flags={"x": [1.0, 2.0]}, runs_dir=runs_dir, tuning_id="t-live")
    assert list(df["status"]) == ["running", "completed"]
    assert df.loc[0, "run_dir"] == live  # not started again
    assert df.loc[1, "run_dir"] != killed  # run again
    assert record.read_run(killed)["status"] == "killed"
    out = capsys.readouterr().out
    assert "1 running in another process (not started again)" in out
    assert "still running in another process" in out


def test_an_undeclared_grid_flag_is_refused_before_any_trial(script, runs_dir):
    import pytest

    from trainrun.exceptions import FlagError

    with pytest.raises(FlagError, match="Unknown flag 'dropout'"):
        tuning_run(script, flags={"x": [1.0], "dropout": [0.1, 0.2]}, runs_dir=runs_dir)
    with pytest.raises(FlagError, match="'x' expects a number"):
        tuning_run(script, flags={"x": [1.0, "big"]}, runs_dir=runs_dir)
    assert not runs_dir.exists()


def test_an_edited_script_reruns_its_trials_unless_asked(script, runs_dir, capsys):
    first = tuning_run(script, flags={"x": [1.0, 2.0]}, runs_dir=runs_dir)
    script.write_text(script.read_text() + "# tuned the loss\n")
    capsys.readouterr()
    second = tuning_run(script, flags={"x": [1.0, 2.0]}, runs_dir=runs_dir)
    out = capsys.readouterr().out
    assert "The script changed since 2 earlier trial(s)" in out and "resume='any'" in out
    assert set(second["run_dir"]).isdisjoint(first["run_dir"])
    third = tuning_run(script, flags={"x": [1.0, 2.0]}, runs_dir=runs_dir, resume="any")
    assert list(third["status"]) == ["completed", "completed"]
    assert len(list(runs_dir.glob("20*"))) == 4  # reused, none started


def test_an_undeclared_search_space_name_is_refused_before_any_trial(script, runs_dir):
    import pytest

    from trainrun.exceptions import FlagError
    from trainrun.runs.tuning import optuna_search

    pytest.importorskip("optuna")
    with pytest.raises(FlagError, match="Unknown flag 'xx'.*Did you mean 'x'"):
        optuna_search(script, {"xx": ("float", 0.0, 4.0)}, n_trials=1, runs_dir=runs_dir)
    with pytest.raises(FlagError, match="'sleep' expects a number"):
        optuna_search(
            script, {"x": ("float", 0.0, 4.0)}, n_trials=1, runs_dir=runs_dir, flags={"sleep": "z"}
        )
    assert not runs_dir.exists()
