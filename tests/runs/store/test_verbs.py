"""get_run_dir, run_info, latest_run, clean/restore/purge/copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainrun.exceptions import RunNotFoundError, RunRecordError, TrainrunError
from trainrun.runs import record
from trainrun.runs.store import (
    clean_runs,
    copy_run,
    get_run_dir,
    latest_run,
    ls_runs,
    purge_runs,
    restore_runs,
    run_info,
)


@pytest.fixture
def three(runs_dir: Path, make_run) -> Path:
    make_run("2026-11-27T10-01-00Z", start="2026-11-27T10:01:00Z", evaluation={"accuracy": 0.7})
    make_run("2026-11-27T10-02-00Z", start="2026-11-27T10:02:00Z", status="failed")
    make_run("2026-11-27T11-03-00Z", start="2026-11-27T11:03:00Z", flags={"dropout": 0.3})
    return runs_dir


def test_get_run_dir_by_id_prefix_index_path_and_row(three: Path) -> None:
    newest = (three / "2026-11-27T11-03-00Z").resolve()
    assert get_run_dir("2026-11-27T11-03-00Z", three) == newest
    assert get_run_dir("2026-11-27T11", three) == newest  # a unique prefix
    assert get_run_dir(0, three) == newest
    assert get_run_dir(2, three).name == "2026-11-27T10-01-00Z"
    assert get_run_dir(str(newest), "elsewhere") == newest
    assert get_run_dir(newest, three) == newest
    assert get_run_dir({"run_dir": str(newest)}, three) == newest
    row = ls_runs(three).iloc[1]
    assert get_run_dir(row, three).name == "2026-11-27T10-02-00Z"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("2026-11-27T10", "2 runs in .* start with '2026-11-27T10'"),
        ("2026-11-27T10-0l-00Z", "Did you mean: .*2026-11-27T10-01-00Z"),
        ("..", "not a run id"),
        (".trainrun", "not a run id"),
        ("archive", "not a run id"),
        (3, "no run number 3"),
        (-1, "counts from the latest"),
        ("/no/such/folder", "does not exist"),
        (2.5, "A run is named by"),
    ],
)
def test_get_run_dir_errors(three: Path, ref, message: str) -> None:
    with pytest.raises(RunNotFoundError, match=message) as info:
        get_run_dir(ref, three)
    assert isinstance(info.value, FileNotFoundError)


def test_run_info_and_latest_run(three: Path) -> None:
    info = run_info("2026-11-27T10-01", three)
    assert info["evaluation"] == {"accuracy": 0.7}
    assert info["status"] == "completed"
    latest = latest_run(three)
    assert latest["id"] == "2026-11-27T11-03-00Z" and latest["flags"] == {"dropout": 0.3}


def test_latest_run_of_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="no runs in"):
        latest_run(tmp_path)


def test_run_info_of_a_corrupt_run(three: Path) -> None:
    (three / "2026-11-27T10-02-00Z" / "run.json").write_text("{")
    with pytest.raises(RunRecordError, match="not valid JSON"):
        run_info("2026-11-27T10-02-00Z", three)


def test_clean_and_restore_are_reversible(three: Path) -> None:
    failed = ls_runs(three, filter="status == 'failed'")
    moved = clean_runs(failed, three)
    assert [p.name for p in moved] == ["2026-11-27T10-02-00Z"]
    assert moved[0].parent == (three / "archive").resolve()
    assert ls_runs(three)["id"].tolist() == ["2026-11-27T11-03-00Z", "2026-11-27T10-01-00Z"]
    assert ls_runs(three / "archive")["id"].tolist() == ["2026-11-27T10-02-00Z"]
    restored = restore_runs(runs_dir=three)
    assert [p.name for p in restored] == ["2026-11-27T10-02-00Z"]
    assert len(ls_runs(three)) == 3
    # everything, then one back by id
    assert len(clean_runs(runs_dir=three)) == 3
    assert len(ls_runs(three)) == 0
    restore_runs("2026-11-27T11-03-00Z", three)
    assert ls_runs(three)["id"].tolist() == ["2026-11-27T11-03-00Z"]


def test_clean_leaves_running_runs_in_place(runs_dir: Path, make_run, sleeper) -> None:
    make_run("done")
    make_run(
        "live", status="running", pid=sleeper.pid, pid_start=record.process_start_time(sleeper.pid)
    )
    with pytest.warns(UserWarning, match="Not archiving 1 run.*live"):
        moved = clean_runs(runs_dir=runs_dir)
    assert [p.name for p in moved] == ["done"]
    assert (runs_dir / "live").is_dir()


def test_clean_same_name_twice_keeps_both(runs_dir: Path, make_run) -> None:
    make_run("a")
    clean_runs("a", runs_dir)
    make_run("a")
    second = clean_runs("a", runs_dir)
    assert second[0].name == "a-2"
    assert sorted(p.name for p in (runs_dir / "archive").iterdir()) == ["a", "a-2"]


def test_purge_deletes_the_archive(three: Path) -> None:
    clean_runs("2026-11-27T10-02-00Z", three)
    with pytest.raises(TrainrunError, match="needs confirmation"):
        purge_runs(runs_dir=three)  # no terminal under pytest, and confirm defaults to True
    assert purge_runs(runs_dir=three, confirm=False) == ["2026-11-27T10-02-00Z"]
    assert not any((three / "archive").iterdir())
    assert len(ls_runs(three)) == 2
    # given runs: looked up in the archive first, then in the runs folder
    assert purge_runs("2026-11-27T10-01", three, confirm=False) == ["2026-11-27T10-01-00Z"]
    assert ls_runs(three)["id"].tolist() == ["2026-11-27T11-03-00Z"]


def test_purge_by_exact_id_does_not_take_an_archived_prefix_match(runs_dir: Path, make_run) -> None:
    make_run("r-2")
    clean_runs("r-2", runs_dir)  # only "r-2" in the archive: a prefix match for "r"
    make_run("r")  # a live run with the exact id
    assert purge_runs("r", runs_dir, confirm=False) == ["r"]
    assert sorted(p.name for p in (runs_dir / "archive").iterdir()) == ["r-2"]
    assert not (runs_dir / "r").exists()


def test_copy_run(three: Path, tmp_path: Path) -> None:
    target = copy_run(0, tmp_path / "shared", runs_dir=three)
    assert target == tmp_path / "shared" / "2026-11-27T11-03-00Z"
    assert record.read_run(target)["flags"] == {"dropout": 0.3}
    with pytest.raises(FileExistsError, match="already exists"):
        copy_run(0, tmp_path / "shared", runs_dir=three)
    renamed = copy_run(0, tmp_path / "shared", runs_dir=three, rename="best")
    assert renamed.name == "best"
    assert [p.name for p in (tmp_path / "shared").iterdir() if p.name.startswith(".")] == []
    # the copies are runs of their new folder
    assert sorted(ls_runs(tmp_path / "shared")["id"]) == ["2026-11-27T11-03-00Z", "best"]
    with pytest.raises(RunRecordError, match="plain folder name"):
        copy_run(0, tmp_path, runs_dir=three, rename="../x")


def test_run_id_cannot_reach_outside_the_runs_folder(three: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    # a bare name is only ever looked up inside runs_dir
    with pytest.raises(RunNotFoundError):
        get_run_dir("secret", three)
    assert os.path.isdir(three / ".." / "secret")
