"""The Ray backend, against a local Ray instance that this module starts (one, ~20 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from trainrun.runs import record
from trainrun.runs.tuning import tuning_run

# examples, servers and clusters: left out of `make test-fast`
pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_trials_run_as_ray_tasks_into_the_shared_runs_folder(local_ray, script, runs_dir):
    df = tuning_run(
        script,
        flags={"x": [1.0, 2.0, 3.0], "fail": [False]},
        trials=None,
        runs_dir=runs_dir,
        backend="ray",
        workers=2,
        resources_per_trial={"cpu": 1},
        metric="eval_accuracy",
        progress=False,
    )
    assert list(df["status"]) == ["completed"] * 3
    assert df.attrs["best"]["trial"] == 2
    recs = [record.read_run(d) for d in df["run_dir"]]
    assert {r["tags"]["trial"] for r in recs} == {"1", "2", "3"}
    # each run was launched inside a Ray worker process, not by this one
    assert all(r["pid"] != os.getpid() for r in recs)
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_a_failing_ray_trial_and_resume(local_ray, script, runs_dir):
    grid = {"x": [1.0, 3.0]}
    (script.parent / "broken").write_text("")
    first = tuning_run(
        script, flags=grid, runs_dir=runs_dir, backend="ray", workers=2, progress=False
    )
    assert list(first["status"]) == ["completed", "failed"]
    assert "boom at x=3.0" in first.loc[1, "error"]
    (script.parent / "broken").unlink()
    second = tuning_run(
        script, flags=grid, runs_dir=runs_dir, backend="ray", workers=2, progress=False
    )
    assert list(second["status"]) == ["completed", "completed"]
    assert second.loc[0, "run_dir"] == first.loc[0, "run_dir"]


def test_bad_resources_are_named_before_any_runs_folder_is_touched(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default runs_dir: ./runs
    with pytest.raises(ValueError, match="gpu=-1"):
        tuning_run(script, flags={"x": [1]}, backend="ray", resources_per_trial={"gpu": -1})
    assert not (tmp_path / "runs").exists()


def test_sigint_cancels_ray_trials_and_marks_them_interrupted(
    local_ray, script, runs_dir, wait_until
):
    address = ray.get_runtime_context().gcs_address
    code = textwrap.dedent(
        f"""
        from trainrun.runs.tuning import tuning_run
        tuning_run({str(script)!r}, flags={{"x": [1, 2, 3], "sleep": [120]}},
                   runs_dir={str(runs_dir)!r}, backend="ray", address={address!r},
                   workers=2, confirm=False)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:

        def two_started() -> bool:
            assert proc.poll() is None, proc.stdout.read()
            return len(_started(runs_dir)) >= 2

        wait_until(two_started, timeout=90, interval=0.2, message="two trials to start")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert "2 running trial(s) marked interrupted" in out
    runs = [record.read_run(f) for f in _started(runs_dir)]
    assert len(list(runs_dir.glob("*/run.json"))) == 2  # trial 3 never started
    assert [r["status"] for r in runs] == ["interrupted", "interrupted"], out


def _started(runs_dir):
    return sorted(
        f.parent
        for f in runs_dir.glob("*/output.log")
        if "started" in f.read_text(errors="replace")
    )
