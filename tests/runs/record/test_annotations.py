"""Tags, notes and names added to a run after the fact: stored in run.json, listed as columns."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from tests.runs.store.conftest import write_run

import trainrun
from trainrun.exceptions import RunNotFoundError, RunRecordError, UsageError
from trainrun.runs import record
from trainrun.runs.record._annotations import NAME_LIMIT, annotate
from trainrun.runs.record._lock import update_run
from trainrun.runs.store import ls_runs, name_run, note_run, run_info, tag_run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    write_run(folder, "r1", start="2026-11-27T10:01:00.000000Z", flags={"lr": 0.1})
    write_run(folder, "r2", start="2026-11-27T10:02:00.000000Z", flags={"lr": 0.2}, tags={"k": "v"})
    return folder


def test_tags_notes_and_names_are_stored_in_run_json_and_listed(runs: Path) -> None:
    assert tag_run(0, add=["best", "dataset=v2"], runs_dir=runs)["tags"] == {
        "k": "v",
        "best": True,
        "dataset": "v2",
    }
    note_run("r1", "lr too high\nafter epoch 3", runs_dir=runs)
    name_run("r2", "baseline", runs_dir=runs)
    stored = json.loads((runs / "r2" / "run.json").read_text())
    assert stored["tags"] == {"k": "v", "best": True, "dataset": "v2"}
    assert stored["name"] == "baseline" and stored["status"] == "completed"  # rest kept
    df = ls_runs(runs)
    assert df["id"].tolist() == ["r2", "r1"]
    assert list(df.columns[:3]) == ["id", "status", "run_name"]
    assert df["run_name"].tolist()[0] == "baseline"
    assert df["run_note"].tolist()[1] == "lr too high\nafter epoch 3"
    assert df["tag_best"].tolist()[0] is True or df["tag_best"].tolist()[0] == True  # noqa: E712
    assert ls_runs(runs, filter="tag_dataset == 'v2'")["id"].tolist() == ["r2"]
    assert ls_runs(runs, filter="run_name == 'baseline'")["id"].tolist() == ["r2"]
    info = run_info("r2", runs)
    assert info["name"] == "baseline" and info["tags"]["best"] is True


def test_removing_tags_and_clearing_note_and_name(runs: Path) -> None:
    tag_run("r2", add="x", runs_dir=runs)
    note_run("r2", "text", runs_dir=runs)
    name_run("r2", "named", runs_dir=runs)
    after = tag_run("r2", remove=["x", "k", "absent"], runs_dir=runs)
    assert after["tags"] == {}
    assert note_run("r2", "", runs_dir=runs)["note"] is None
    assert name_run("r2", None, runs_dir=runs)["name"] is None
    stored = json.loads((runs / "r2" / "run.json").read_text())
    assert "note" not in stored and "name" not in stored
    df = ls_runs(runs)
    assert "run_name" not in df.columns and "tag_x" not in df.columns


def test_public_functions_are_exported() -> None:
    for name in ("tag_run", "note_run", "name_run"):
        assert name in trainrun.__all__ and getattr(trainrun, name).__name__ == name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x" * (NAME_LIMIT + 1)}, "at most"),
        ({"name": "two\nlines"}, "line break"),
        ({"note": 3}, "is text"),
        ({"add_tags": ["=v"]}, "KEY=VALUE"),
        ({"add_tags": ["a\nb"]}, "one line"),
    ],
)
def test_bad_annotations_are_refused_before_anything_is_written(
    runs: Path, kwargs: dict, message: str
) -> None:
    before = (runs / "r1" / "run.json").read_bytes()
    with pytest.raises(UsageError, match=message):
        annotate(runs / "r1", **kwargs)
    assert (runs / "r1" / "run.json").read_bytes() == before


def test_a_corrupt_or_missing_run_json_is_never_replaced(runs: Path) -> None:
    (runs / "r1" / "run.json").write_text("{not json")
    with pytest.raises(RunRecordError):
        note_run(runs / "r1", "hello")
    assert (runs / "r1" / "run.json").read_text() == "{not json"
    (runs / "r3").mkdir()
    (runs / "r3" / "output.log").write_text("")
    with pytest.raises(RunRecordError, match="missing"):
        annotate(runs / "r3", note="x")
    assert not (runs / "r3" / "run.json").exists()


def test_a_run_folder_that_is_a_link_is_not_written_through(runs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_run(tmp_path, "outside")
    before = (outside / "run.json").read_bytes()
    os.symlink(outside, runs / "linked")
    with pytest.raises(RunRecordError, match="link"):
        annotate(runs / "linked", add_tags=["x"])
    assert (outside / "run.json").read_bytes() == before


def test_annotations_and_the_launchers_updates_do_not_lose_each_other(runs: Path) -> None:
    # the launcher's final write (update_run) and tags from another process, interleaved
    n = 40
    errors: list[BaseException] = []

    def launcher() -> None:
        try:
            for i in range(n):
                update_run(runs / "r1", {"properties": {f"p{i}": i}}, durable=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=launcher)
    thread.start()
    for i in range(n):
        annotate(runs / "r1", add_tags=[f"t{i}"])
    thread.join()
    assert not errors
    stored = record.read_json(runs / "r1" / "run.json")
    assert set(stored["tags"]) == {f"t{i}" for i in range(n)}
    assert set(stored["properties"]) == {f"p{i}" for i in range(n)}


def test_a_name_is_a_run_reference_after_the_ids(runs: Path) -> None:
    name_run("r1", 'café "v1"', runs_dir=runs)
    assert run_info('café "v1"', runs)["id"] == "r1"
    name_run("r2", "r1", runs_dir=runs)  # a name that is another run's id: the id wins
    assert run_info("r1", runs)["id"] == "r1"
    name_run("r2", 'café "v1"', runs_dir=runs)
    with pytest.raises(RunNotFoundError, match="given to 2 runs"):
        run_info('café "v1"', runs)
    with pytest.raises(RunNotFoundError):
        run_info("nobody", runs)
