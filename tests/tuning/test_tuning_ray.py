"""The Ray backend, against a local Ray instance that this module starts (one, ~20 s)."""

from __future__ import annotations

import pytest

from trainrun.runs import record
from trainrun.runs.tuning import tuning_run

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
    assert all(r["pid"] != __import__("os").getpid() for r in recs)
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


def test_bad_resources_are_named(script):
    with pytest.raises(ValueError, match="gpu=-1"):
        tuning_run(script, flags={"x": [1]}, backend="ray", resources_per_trial={"gpu": -1})
