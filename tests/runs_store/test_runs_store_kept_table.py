"""The table a process keeps between listings: reused only while the index is unchanged."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from trainrun.runs import _index, record
from trainrun.runs._index import INDEX_FILE
from trainrun.runs.store import ls_runs


def settle(runs_dir: Path) -> None:
    """Every folder a minute old, so that the index trusts the times (no 2 s racy window)."""
    old = time.time() - 60
    for folder in [runs_dir, *runs_dir.iterdir()]:
        os.utime(folder, (old, old))


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
