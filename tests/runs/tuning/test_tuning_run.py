"""tuning_run end to end with real child processes: fail-soft, resume, workers, Optuna."""

from __future__ import annotations

import builtins
import sys

import pandas as pd
import pytest

from trainrun.exceptions import MissingExtraError, TuningError
from trainrun.runs import record
from trainrun.runs.tuning import optuna_search, tuning_run


def _records(df):
    return {int(r["trial"]): record.read_run(r["run_dir"]) for r in df.to_dict(orient="records")}


def test_a_failing_trial_does_not_stop_the_others(script, runs_dir, capsys):
    df = tuning_run(
        script,
        flags={"x": [1.0, 2.0], "fail": [False, True]},
        runs_dir=runs_dir,
        metric="eval_accuracy",
        confirm=False,
    )
    assert list(df["trial"]) == [1, 2, 3, 4]
    assert list(df["status"]) == ["completed", "failed", "completed", "failed"]
    assert "boom at x=1.0" in df.loc[1, "error"]
    assert pd.isna(df.loc[0, "error"])
    assert df.loc[2, "eval_accuracy"] == pytest.approx(1.0)
    assert set(df["tag_tuning_id"]) == {df.attrs["tuning_id"]}
    assert df.attrs["best"]["trial"] == 3
    assert df.attrs["best"]["run_dir"] == df.loc[2, "run_dir"]
    recs = _records(df)
    assert recs[2]["tags"] == {"tuning_id": df.attrs["tuning_id"], "trial": "2"}
    assert recs[4]["flags"]["fail"] is True
    out = capsys.readouterr().out
    assert "2 done, 2 failed" in out  # the progress line after the last trial
    assert "Trials that did not complete:" in out and "boom at x=2.0" in out
    assert "Best eval_accuracy = 1" in out


def test_resume_skips_completed_trials_and_reruns_failed_ones(script, runs_dir):
    (script.parent / "broken").write_text("")
    first = tuning_run(script, flags={"x": [1, 2, 3]}, runs_dir=runs_dir, progress=False)
    assert list(first["status"]) == ["completed", "completed", "failed"]
    (script.parent / "broken").unlink()
    second = tuning_run(script, flags={"x": [1, 2, 3]}, runs_dir=runs_dir, progress=False)
    assert second.attrs["tuning_id"] == first.attrs["tuning_id"]
    assert list(second["status"]) == ["completed"] * 3
    # trials 1 and 2 were not run again: the same run folders
    assert list(second["run_dir"][:2]) == list(first["run_dir"][:2])
    assert second.loc[2, "run_dir"] != first.loc[2, "run_dir"]
    assert len(list(runs_dir.iterdir())) >= 4
    # resume=False runs everything again
    third = tuning_run(
        script, flags={"x": [1, 2, 3]}, runs_dir=runs_dir, resume=False, progress=False
    )
    assert not set(third["run_dir"]) & set(second["run_dir"])


def test_workers_run_trials_at_the_same_time(script, runs_dir):
    df = tuning_run(
        script,
        flags={"x": [1, 2], "sleep": [1.5]},
        runs_dir=runs_dir,
        workers=2,
        progress=False,
    )
    assert list(df["status"]) == ["completed", "completed"]
    recs = list(_records(df).values())
    starts = sorted(r["start"] for r in recs)
    ends = sorted(r["end"] for r in recs)
    # ISO UTC strings sort in time order: the second trial began before the first ended
    assert starts[1] < ends[0]


def test_a_table_of_trials_and_a_sample(script, runs_dir):
    table = pd.DataFrame({"x": [1.0, 2.0, 5.0], "label": ["a", "b", "c"]})
    df = tuning_run(script, trials=table, runs_dir=runs_dir, sample=2, seed=3, progress=False)
    assert len(df) == 2
    assert set(df["status"]) == {"completed"}
    assert df["flag_label"].isin(["a", "b", "c"]).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"script": "missing.py"}, FileNotFoundError, "missing.py"),
        ({"workers": 0}, ValueError, "workers=0"),
        ({"backend": "spark"}, ValueError, "Could not interpret backend identifier: 'spark'"),
        ({"mode": "up"}, ValueError, "mode='up'"),
        ({"flags": {"x": 1}}, ValueError, r"x=\[1\]"),
        ({"runs_dir": "notes.txt"}, ValueError, "'notes.txt' is a file"),
        ({"runs_dir": 3}, ValueError, "runs_dir=3"),
        ({"resources_per_trial": {"gpu": -1}}, ValueError, "gpu=-1"),
        ({"resources_per_trial": [("cpu", 1)]}, ValueError, "must be a mapping"),
        ({"address": "ray://head:10001"}, ValueError, "used with backend='ray'"),
        ({"confirm": "yes"}, ValueError, "confirm='yes'"),
        ({"echo": 1}, ValueError, "echo=1"),
        ({"progress": None}, ValueError, "progress=None"),
        ({"tuning_id": ""}, ValueError, "tuning_id=''"),
    ],
)
def test_bad_arguments_are_named_before_any_runs_folder_is_touched(
    script, tmp_path, monkeypatch, kwargs, error, fragment
):
    # from a fresh folder, with the default runs_dir: a check made after the runs folder
    # was opened would leave runs/ (and its index) behind in the current directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a folder")
    args = {"script": script, "flags": {"x": [1]}, **kwargs}
    with pytest.raises(error, match=fragment):
        tuning_run(**args)
    assert not (tmp_path / "runs").exists()


def test_declining_the_confirmation_starts_nothing(script, runs_dir, monkeypatch):
    monkeypatch.setattr(builtins, "input", lambda prompt: "n")
    with pytest.raises(TuningError, match="cancelled"):
        tuning_run(script, flags={"x": [1, 2]}, runs_dir=runs_dir, confirm=True)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_missing_extras_name_the_extra(script, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"trainrun\[ray\]"):
        tuning_run(script, flags={"x": [1]}, backend="ray", progress=False)
    with pytest.raises(MissingExtraError, match=r"trainrun\[optuna\]"):
        optuna_search(script, {"x": ("float", 0.0, 4.0)}, n_trials=1)
    assert not (tmp_path / "runs").exists()


def test_optuna_search_records_each_trial_and_resumes(script, runs_dir):
    space = {"x": ("float", 0.0, 4.0), "label": ["a", "b"]}
    kw = dict(metric="eval_accuracy", seed=0, runs_dir=runs_dir, flags={"fail": False})
    df = optuna_search(script, space, n_trials=3, progress=False, **kw)
    assert len(df) == 3 and set(df["status"]) == {"completed"}
    best = df.attrs["best"]
    assert best["value"] == pytest.approx(df["eval_accuracy"].max())
    assert set(best["flags"]) == {"x", "label", "fail"}
    assert df["flag_x"].between(0.0, 4.0).all() and set(df["flag_label"]) <= {"a", "b"}
    more = optuna_search(script, space, n_trials=4, progress=False, **kw)
    assert more.attrs["tuning_id"] == df.attrs["tuning_id"]
    assert len(more) == 4
    # the three earlier runs were fed back, not run again
    assert set(df["run_dir"]) <= set(more["run_dir"])


def test_optuna_space_errors(script, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)  # the default runs_dir, ./runs, must stay untouched
    with pytest.raises(ValueError, match="Could not interpret the search space of 'x'"):
        optuna_search(script, {"x": ("normal", 0, 1)}, n_trials=1)
    with pytest.raises(ValueError, match="low <= high"):
        optuna_search(script, {"x": ("float", 2.0, 1.0)}, n_trials=1)
    with pytest.raises(ValueError, match="n_trials=0"):
        optuna_search(script, {"x": ["a"]}, n_trials=0)
    assert not (tmp_path / "runs").exists()


def test_optuna_fixed_flags_are_checked(script, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)  # the default runs_dir, ./runs, must stay untouched
    with pytest.raises(ValueError, match="both searched and fixed: x"):
        optuna_search(script, {"x": ("float", 0.0, 1.0)}, flags={"x": 1.0})
    with pytest.raises(ValueError, match="Flag values must be strings"):
        optuna_search(script, {"x": ("float", 0.0, 1.0)}, flags={"sleep": [1]})
    assert not (tmp_path / "runs").exists()
