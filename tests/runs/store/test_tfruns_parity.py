"""tfruns habits that work here: ls_runs output passed on, its columns, its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

import trainrun as tr
from trainrun.exceptions import FilterError, RunNotFoundError
from trainrun.runs import active, record

SCRIPT = """\
from trainrun import artifacts_dir, flags, write_evaluation, write_run_metadata
F = flags(x=1.0)
write_evaluation(acc=F.x / 10)
write_run_metadata("properties", {"dataset": "churn", "optimizer": "adam", "epochs": 3})
(artifacts_dir() / "weights.txt").write_text(f"x={F.x}")
if F.x > 9:
    raise ValueError("diverged")
"""


@pytest.fixture
def runs(tmp_path, monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT)
    for x in (1.0, 5.0, 9.5):
        tr.training_run("train.py", flags={"x": x}, echo=False, artifacts=False)
    return tmp_path / "runs"


def test_functions_that_take_a_run_take_what_ls_runs_returns(runs, tmp_path):
    best = tr.ls_runs(filter="eval_acc >= 0.5 and completed")
    assert len(best) == 1
    assert tr.get_run_dir(best) == Path(best["run_dir"][0])  # a one-row table
    assert tr.get_run_dir(best.iloc[0]) == Path(best["run_dir"][0])  # a row
    both = tr.ls_runs(filter="eval_acc >= 0.1 and completed")
    infos = tr.run_info(both)
    assert [i["flags"]["x"] for i in infos] == [5.0, 1.0]
    assert [i["id"] for i in tr.run_info(list(both["id"]))] == list(both["id"])
    copies = tr.copy_run(both, to=tmp_path / "best-runs")
    assert sorted(p.name for p in copies) == sorted(both["id"])
    assert all((p / "run.json").is_file() for p in copies)
    with pytest.raises(RunNotFoundError, match="takes one run, but was given 2"):
        tr.get_run_dir(both)
    with pytest.raises(RunNotFoundError, match="an empty table"):
        tr.get_run_dir(tr.ls_runs(filter="eval_acc > 5"))
    page = tr.view_run(best, viewer=False)
    assert page.is_file()


def test_properties_and_errors_are_columns(runs):
    df = tr.ls_runs(order="flag_x", decreasing=False)
    assert list(df["prop_dataset"]) == ["churn"] * 3 and list(df["prop_epochs"]) == [3, 3, 3]
    assert df["error_message"].isna().tolist() == [True, True, False]
    assert df["error_message"].iloc[2] == "ValueError: diverged"
    assert "raise ValueError" in df["error_traceback"].iloc[2]
    assert len(tr.ls_runs(filter="prop_optimizer == 'adam' and not completed")) == 1
    assert len(tr.ls_runs(filter="completed")) == 2
    assert len(tr.ls_runs(filter="completed == TRUE")) == 2
    assert len(tr.ls_runs(filter="completed == FALSE")) == 1
    assert list(tr.ls_runs(filter="completed", refresh=True)["status"]) == ["completed"] * 2


def test_a_filter_given_as_the_first_argument_is_not_a_silent_empty_list(runs):
    with pytest.raises(FilterError, match="pass it as filter="):
        tr.ls_runs("eval_acc > 0.5")
    assert len(tr.ls_runs("runs")) == 3


def test_copy_run_files_copies_what_the_run_produced(runs, tmp_path):
    latest = tr.copy_run_files(0, tmp_path / "deploy")
    assert (latest / "weights.txt").read_text() == "x=9.5"
    assert not (latest / "run.json").exists()
    out = tr.copy_run_files(tr.ls_runs(filter="completed"), tmp_path / "all")
    assert sorted((p / "weights.txt").read_text() for p in out) == ["x=1.0", "x=5.0"]


def test_unique_run_dir_and_training_run_into_it(runs, tmp_path):
    folder = tr.unique_run_dir("runs")
    assert folder.is_dir() and folder.parent == runs.resolve()
    run = tr.training_run("train.py", flags={"x": 2.0}, run_dir=folder, echo=False)
    assert Path(run["run_dir"]) == folder and run["status"] == "completed"
    with pytest.raises(tr.FlagError, match="needs a new or empty folder"):
        tr.training_run("train.py", run_dir=folder, echo=False)


def test_training_run_takes_a_flags_file_and_view_save(runs, tmp_path):
    (tmp_path / "best.yml").write_text("x: 7.5\n")
    run = tr.training_run("train.py", flags="best.yml", view="save", echo=False)
    assert run["flags"]["x"] == 7.5
    assert (Path(run["run_dir"]) / "report.html").is_file()
    with pytest.raises(ValueError, match="view must be True, False, None"):
        tr.training_run("train.py", view="browser")


def test_write_run_metadata_to_a_given_run_and_custom_kinds(tmp_path):
    folder = tr.unique_run_dir(tmp_path / "runs")
    active.write_run_metadata("properties", {"note": "by hand"}, run_dir=folder)
    active.write_run_metadata("metrics", {"loss": [0.5, 0.25]}, run_dir=folder)
    active.write_run_metadata("confusion", {"tp": 3, "fp": 1}, run_dir=folder)

    def writer(where: Path) -> None:
        (where / "table.csv").write_text("a,b\n1,2\n")

    active.write_run_metadata("tables", writer, run_dir=folder)
    assert record.read_json(folder / "run.json")["properties"] == {"note": "by hand"}
    assert [r["loss"] for r in record.read_metrics(folder)] == [0.5, 0.25]
    assert record.read_json(folder / "metadata" / "confusion.json") == {"tp": 3, "fp": 1}
    assert (folder / "metadata" / "tables" / "table.csv").read_text() == "a,b\n1,2\n"


def test_view_run_refuses_a_viewer_it_does_not_know(runs):
    with pytest.raises(ValueError, match="viewer must be None"):
        tr.view_run(0, viewer="browser")


def test_viewing_a_running_run_points_to_the_live_page(tmp_path, capsys):
    folder = tr.start_run(runs_dir=tmp_path / "runs", artifacts=False, capture_output=False)
    try:
        tr.view_run(folder.id, runs_dir=tmp_path / "runs", viewer=False)
    finally:
        folder.end()
    out = capsys.readouterr().out
    assert f"shows it live at http://127.0.0.1:8700/runs/{folder.id}" in out
