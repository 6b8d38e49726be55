"""The table a process keeps between listings: reused only while the index is unchanged."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from trainrun.runs import record
from trainrun.runs.store import _index, ls_runs
from trainrun.runs.store._index import INDEX_FILE, RunRecordWarning


def settle(runs_dir: Path) -> None:
    """Folders changed in the last minute made a minute old, so that the index trusts
    their times (no 2 s racy window); older ones keep their times (they did not change)."""
    now = time.time()
    for folder in [runs_dir, *runs_dir.iterdir()]:
        if folder.stat().st_mtime > now - 30:
            os.utime(folder, (now - 60, now - 60))


def token(runs_dir: Path) -> str:
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()[0]


def make_two(make_run) -> None:
    make_run("r1", start="2026-11-27T10:01:00Z", flags={"lr": 0.1}, evaluation={"accuracy": 0.5})
    make_run("r2", start="2026-11-27T10:02:00Z", flags={"lr": 0.2}, evaluation={"accuracy": 0.7})


def test_an_unchanged_folder_lists_from_the_kept_table_without_writing(
    runs_dir: Path, make_run
) -> None:
    make_two(make_run)
    settle(runs_dir)
    ls_runs(runs_dir)
    settle(runs_dir)  # the index's own folder was just made inside the runs folder
    first = ls_runs(runs_dir)
    before = token(runs_dir)
    kept = _index._TABLES[os.path.abspath(runs_dir)][1]
    again = ls_runs(runs_dir)
    assert token(runs_dir) == before  # nothing was written
    assert _index._TABLES[os.path.abspath(runs_dir)][1] is kept  # and nothing rebuilt
    assert again.equals(first)
    # the caller's frame is its own: changing it does not change the next listing
    again.loc[0, "eval_accuracy"] = -1.0
    again["mine"] = 1
    third = ls_runs(runs_dir)
    assert third.equals(first)
    assert third.loc[0, "eval_accuracy"] == 0.7


def test_a_change_indexed_by_another_process_is_seen(runs_dir: Path, make_run, env) -> None:
    make_two(make_run)
    settle(runs_dir)
    ls_runs(runs_dir)
    settle(runs_dir)
    assert ls_runs(runs_dir).set_index("id").loc["r1", "eval_accuracy"] == 0.5
    record.write_json(runs_dir / "r1" / record.EVALUATION_FILE, {"accuracy": 0.9})
    settle(runs_dir)
    # another process lists first: the index row now matches the folder's new time, so
    # only the index's token can tell this process that its kept table is out of date
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from trainrun.runs.store import ls_runs; ls_runs({str(runs_dir)!r})",
        ],
        env=env,
        check=True,
        timeout=60,
    )
    assert ls_runs(runs_dir).set_index("id").loc["r1", "eval_accuracy"] == 0.9


def test_a_new_run_and_refresh_bypass_the_kept_table(runs_dir: Path, make_run) -> None:
    make_two(make_run)
    settle(runs_dir)
    ls_runs(runs_dir)
    settle(runs_dir)
    ls_runs(runs_dir)
    make_run("r3", start="2026-11-27T10:03:00Z", evaluation={"accuracy": 0.1})
    assert ls_runs(runs_dir)["id"].tolist() == ["r3", "r2", "r1"]
    settle(runs_dir)
    ls_runs(runs_dir)
    # an in-place edit keeps every time: only refresh=True sees it, and it is kept afterwards
    folder = runs_dir / "r2"
    before = folder.stat()
    with open(folder / record.EVALUATION_FILE, "w") as f:
        f.write('{"accuracy": 0.25}')
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ls_runs(runs_dir).set_index("id").loc["r2", "eval_accuracy"] == 0.7
    assert ls_runs(runs_dir, refresh=True).set_index("id").loc["r2", "eval_accuracy"] == 0.25
    assert ls_runs(runs_dir).set_index("id").loc["r2", "eval_accuracy"] == 0.25


def fetched_again(runs_dir: Path) -> pd.DataFrame:
    """The listing as a process with no kept table makes it (every row from SQLite)."""
    _index._TABLES.clear()
    return ls_runs(runs_dir)


def test_rows_fetched_again_for_a_few_changed_runs_equal_a_full_fetch(
    runs_dir: Path, make_run, sleeper, monkeypatch
) -> None:
    patches = []
    real = _index._Index._patch
    monkeypatch.setattr(_index._Index, "_patch", lambda *a: patches.append(real(*a)) or patches[-1])
    make_two(make_run)
    make_run(
        "r3-live",
        start="2026-11-27T10:03:00Z",
        status="running",
        pid=sleeper.pid,
        pid_start=record.process_start_time(sleeper.pid),
        metrics=[{"step": 0, "loss": 1.0}],
    )
    settle(runs_dir)
    ls_runs(runs_dir)
    settle(runs_dir)
    ls_runs(runs_dir)

    def check() -> pd.DataFrame:
        settle(runs_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunRecordWarning)
            listed = ls_runs(runs_dir)
            pd.testing.assert_frame_equal(listed, fetched_again(runs_dir))
            ls_runs(runs_dir)  # keep a table again for the next step
        return listed

    # a finished run's evaluation rewritten: one row fetched again
    record.write_json(runs_dir / "r1" / record.EVALUATION_FILE, {"accuracy": 0.95})
    assert check().set_index("id").loc["r1", "eval_accuracy"] == 0.95
    # the running run logs more: its metrics grow by an append
    record.append_jsonl(runs_dir / "r3-live" / record.METRICS_FILE, [{"step": 1, "loss": 0.25}])
    assert check().set_index("id").loc["r3-live", "metric_loss"] == 0.25
    # a start time changed: the order changes
    run = record.read_json(runs_dir / "r1" / record.RUN_FILE)
    run["start"] = "2026-11-27T11:00:00Z"
    record.write_json(runs_dir / "r1" / record.RUN_FILE, run)
    assert check()["id"].tolist() == ["r1", "r3-live", "r2"]
    # a corrupt run.json: the run leaves the table
    (runs_dir / "r2" / "new.json").write_text("{oops")  # replaced by a rename, as tools do
    os.replace(runs_dir / "r2" / "new.json", runs_dir / "r2" / record.RUN_FILE)
    assert check()["id"].tolist() == ["r1", "r3-live"]
    # the running run's process dies: a status-only update
    sleeper.kill()
    sleeper.wait()
    assert check().set_index("id").loc["r3-live", "status"] == "killed"
    # a run added, runs removed
    make_run("r4", start="2026-11-27T10:04:00Z", evaluation={"accuracy": 0.4})
    make_run("r5", start="2026-11-27T10:05:00Z", evaluation={"accuracy": 0.5})
    assert check()["id"].tolist() == ["r1", "r5", "r4", "r3-live"]
    shutil.rmtree(runs_dir / "r2")
    shutil.rmtree(runs_dir / "r5")
    assert check()["id"].tolist() == ["r1", "r4", "r3-live"]
    assert len([p for p in patches if p is not None]) >= 5  # the cheap way was taken
    # a new metric name adds a column: everything is fetched again
    record.write_json(runs_dir / "r4" / record.EVALUATION_FILE, {"accuracy": 0.4, "auc": 0.7})
    assert check().set_index("id").loc["r4", "eval_auc"] == 0.7
    assert patches[-1] is None


def test_a_write_by_another_process_in_between_means_a_full_fetch(
    runs_dir: Path, make_run, monkeypatch
) -> None:
    make_two(make_run)
    settle(runs_dir)
    ls_runs(runs_dir)
    settle(runs_dir)
    ls_runs(runs_dir)
    record.write_json(runs_dir / "r1" / record.EVALUATION_FILE, {"accuracy": 0.6})
    settle(runs_dir)
    real = _index._Index._read

    def read_while_another_process_writes(self, to_read):
        # between this listing's fetch and its write, another process stores r2 anew
        # (as it would after its own read of a change) and replaces the token
        with sqlite3.connect(runs_dir / INDEX_FILE) as db:
            db.execute("UPDATE runs SET status = 'interrupted' WHERE id = 'r2'")
            db.execute("UPDATE meta SET value = 'other' WHERE key = 'token'")
        return real(self, to_read)

    monkeypatch.setattr(_index._Index, "_read", read_while_another_process_writes)
    listed = ls_runs(runs_dir).set_index("id")
    assert listed.loc["r1", "eval_accuracy"] == 0.6
    assert listed.loc["r2", "status"] == "interrupted"  # not the row this process had
