"""Listings answered in SQL (filters, latest_n, limit) and freshness from the change journal."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from trainrun.exceptions import FilterError
from trainrun.runs import record
from trainrun.runs.store import _pushdown, ls_runs
from trainrun.runs.store._filter import parse_filter
from trainrun.runs.store._index import INDEX_FILE


def t(minute: int) -> str:
    return f"2026-11-27T10:{minute:02d}:00.000000Z"


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal freshness rule from the first run on (it starts at 5,000 by default)."""
    monkeypatch.setattr(_pushdown, "JOURNAL_MIN_RUNS", 1)


def make_mixed(make_run) -> None:
    """Runs whose values exercise every rule: missing, NaN, bools, texts beside numbers."""
    make_run(
        "r1",
        start=t(1),
        flags={"dropout": 0.1, "units": 128, "act": "relu", "bn": True, "mixed": 3},
        evaluation={"accuracy": 0.81, "loss": float("nan")},
        tags={"team": "a"},
    )
    make_run(
        "r2",
        start=t(2),
        status="failed",
        flags={"dropout": 0.4, "units": 64, "act": "tanh", "bn": False, "mixed": "x"},
        metrics=[{"step": 0, "loss": 1.2}],
    )
    make_run(
        "r3",
        start=t(3),
        flags={"dropout": 0.2, "units": 256, "act": "", "bn": True, "mixed": 1},
        evaluation={"accuracy": 0.9, "loss": 0.3},
        tags={"team": "b"},
    )
    make_run(
        "r4",
        start=t(4),
        flags={"dropout": 0.3, "units": 0, "act": "relu", "bn": False, "mixed": True},
    )


FILTERS = [
    "eval_accuracy > 0.8",
    "eval_accuracy >= 0.81 and flag_dropout < 0.3",
    "0.85 < eval_accuracy",
    "eval_accuracy != 0.9",
    "eval_loss == null",
    "eval_loss != null",
    "eval_loss < 1",
    "not (eval_accuracy > 0.85)",
    "status == 'failed' or flag_dropout < 0.15",
    "status != 'completed'",
    "flag_act in ['relu', 'tanh']",
    "flag_act not in ['relu']",
    "flag_act in ['relu', null]",
    "flag_act not in ['relu', null]",
    "flag_bn",
    "not flag_bn",
    "flag_bn == true",
    "flag_bn == false",
    "flag_units",
    "flag_act",
    "flag_mixed > 1",
    "flag_mixed == 1",
    "flag_mixed != 1",
    "flag_mixed == 'x'",
    "flag_mixed < 'z'",
    "flag_mixed in [1, 'x']",
    "tag_team == 'a' or tag_team == null",
    "exit_code == 1",
    "duration > 1",
    "start > '2026-11-27T10:02:00'",
    "start <= '2026-11-27T10:02:00Z'",
    "script == 'train.py' and id != 'r3'",
]


@pytest.mark.parametrize("expr", FILTERS)
def test_every_pushed_filter_selects_what_the_dataframe_path_selects(
    runs_dir: Path, make_run, journal, expr: str
) -> None:
    make_mixed(make_run)
    assert _pushdown.to_sql(parse_filter(expr), {"x": "c1"} | _colmap(runs_dir)) is not None
    pushed = ls_runs(runs_dir, filter=expr)
    frame = ls_runs(runs_dir, filter=expr, refresh=True)  # refresh: the DataFrame path
    assert pushed["id"].tolist() == frame["id"].tolist()
    assert list(pushed.columns) == list(frame.columns)
    for col in ("eval_accuracy", "flag_dropout", "status"):
        pd.testing.assert_series_equal(pushed[col], frame[col], check_dtype=False)


def _colmap(runs_dir: Path) -> dict[str, str]:
    ls_runs(runs_dir)  # builds the index
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        return dict(db.execute("SELECT name, sqlcol FROM columns").fetchall())


@pytest.mark.parametrize(
    "expr", ["flag_dropout < eval_accuracy", "run_dir != null", "start > 5", "start"]
)
def test_filters_sql_does_not_cover_fall_back_to_the_same_answer(
    runs_dir: Path, make_run, journal, expr: str
) -> None:
    make_mixed(make_run)
    assert _pushdown.to_sql(parse_filter(expr), _colmap(runs_dir)) is None
    assert (
        ls_runs(runs_dir, filter=expr)["id"].tolist()
        == ls_runs(runs_dir, filter=expr, refresh=True)["id"].tolist()
    )


def test_latest_n_limit_and_order_through_sql(runs_dir: Path, make_run, journal) -> None:
    make_mixed(make_run)
    assert ls_runs(runs_dir, latest_n=2)["id"].tolist() == ["r4", "r3"]
    assert ls_runs(runs_dir, latest_n=2, decreasing=False)["id"].tolist() == ["r3", "r4"]
    assert ls_runs(runs_dir, latest_n=3, order="flag_dropout")["id"].tolist() == ["r2", "r4", "r3"]
    # limit: a top-N by a column, missing values last either way
    assert ls_runs(runs_dir, order="eval_accuracy", limit=3)["id"].tolist() == ["r3", "r1", "r4"]
    assert ls_runs(runs_dir, order="eval_accuracy", decreasing=False, limit=2)["id"].tolist() == [
        "r1",
        "r3",
    ]
    assert ls_runs(runs_dir, limit=2, decreasing=False)["id"].tolist() == ["r1", "r2"]
    top = ls_runs(runs_dir, filter="flag_units > 0", order=["flag_units"], limit=1)
    assert top["id"].tolist() == ["r3"]
    # the same as ordering the whole table and taking the head
    whole = ls_runs(runs_dir, order="flag_units", refresh=True).head(2)
    assert ls_runs(runs_dir, order="flag_units", limit=2)["id"].tolist() == whole["id"].tolist()
    # a column none of the kept rows holds is still a column of the listing
    df = ls_runs(runs_dir, latest_n=1, columns=["id", "eval_accuracy", "tag_team"])
    assert df["id"].tolist() == ["r4"] and math.isnan(df["eval_accuracy"].iloc[0])
    # numbers and texts in one column: ordered by the DataFrame path, as before
    assert (
        ls_runs(runs_dir, order="flag_mixed", limit=4)["id"].tolist()
        == ls_runs(runs_dir, order="flag_mixed", refresh=True)["id"].tolist()
    )


def test_errors_name_the_column_without_building_a_table(runs_dir: Path, make_run, journal) -> None:
    make_mixed(make_run)
    with pytest.raises(FilterError, match="Did you mean: flag_dropout"):
        ls_runs(runs_dir, filter="flag_dropuot > 1", latest_n=2)
    with pytest.raises(
        FilterError, match="Cannot order by 'eval_acc'.*Did you mean: eval_accuracy"
    ):
        ls_runs(runs_dir, order="eval_acc", limit=2)
    with pytest.raises(FilterError, match="Received: limit=0"):
        ls_runs(runs_dir, limit=0)


def test_the_journal_tells_a_listing_what_changed(runs_dir: Path, make_run, journal) -> None:
    make_mixed(make_run)
    old = time.time() - 60
    for folder in [*runs_dir.iterdir(), runs_dir]:
        os.utime(folder, (old, old))
    ls_runs(runs_dir)  # builds the index
    ls_runs(runs_dir)  # the index holds runs: starts the journal, checks every folder once
    journal_file = runs_dir / ".trainrun" / "changes"
    assert journal_file.exists()
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir, latest_n=1)  # the runs folder's time is now stored
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'dir_mtime'").fetchone()
    # a write through record.write_json: journaled, seen without any folder time changing
    record.write_json(runs_dir / "r2" / record.EVALUATION_FILE, {"accuracy": 0.99})
    os.utime(runs_dir / "r2", (old, old))
    assert journal_file.read_text().splitlines()[-1] == "r2"
    assert ls_runs(runs_dir, filter="eval_accuracy > 0.95")["id"].tolist() == ["r2"]
    assert ls_runs(runs_dir).set_index("id").loc["r2", "eval_accuracy"] == 0.99
    # an in-place edit by hand is not journaled: seen with refresh (as documented)
    (runs_dir / "r3" / record.EVALUATION_FILE).write_text('{"accuracy": 0.5}')
    os.utime(runs_dir / "r3", (old, old))
    assert ls_runs(runs_dir, latest_n=2).set_index("id").loc["r3", "eval_accuracy"] == 0.9
    assert ls_runs(runs_dir, refresh=True).set_index("id").loc["r3", "eval_accuracy"] == 0.5
    # folders added and removed by hand change the runs folder's time
    shutil.rmtree(runs_dir / "r1")
    shutil.copytree(runs_dir / "r4", runs_dir / "r9")
    assert sorted(ls_runs(runs_dir, filter="flag_dropout > 0")["id"]) == ["r2", "r3", "r4", "r9"]
    # a journal deleted (or replaced) means one full check, then the journal again
    journal_file.unlink()
    record.write_json(runs_dir / "r4" / record.EVALUATION_FILE, {"accuracy": 0.7})
    assert ls_runs(runs_dir, latest_n=5).set_index("id").loc["r4", "eval_accuracy"] == 0.7
    assert journal_file.exists()


def test_a_running_run_is_followed_and_read_as_killed(
    runs_dir: Path, make_run, journal, sleeper
) -> None:
    make_mixed(make_run)
    folder = make_run(
        "live",
        start=t(9),
        status="running",
        pid=sleeper.pid,
        pid_start=record.process_start_time(sleeper.pid),
        metrics=[{"step": 0, "loss": 1.0}],
    )
    old = time.time() - 60
    os.utime(folder, (old, old))
    ls_runs(runs_dir)
    assert ls_runs(runs_dir, latest_n=1)["status"].tolist() == ["running"]
    record.append_jsonl(folder / record.METRICS_FILE, [{"step": 1, "loss": 0.25}])
    assert ls_runs(runs_dir, latest_n=1)["metric_loss"].tolist() == [0.25]
    sleeper.kill()
    sleeper.wait()
    assert ls_runs(runs_dir, filter="status == 'killed'")["id"].tolist() == ["live"]


def test_small_stores_keep_checking_every_folder(runs_dir: Path, make_run) -> None:
    make_mixed(make_run)
    ls_runs(runs_dir, latest_n=1)
    assert not (runs_dir / ".trainrun" / "changes").exists()  # no journal below the threshold
    (runs_dir / "r3" / "notes.txt").write_text("x")  # a hand edit changes the folder's time
    (runs_dir / "r3" / record.EVALUATION_FILE).write_text('{"accuracy": 0.5}')
    assert ls_runs(runs_dir, latest_n=2).set_index("id").loc["r3", "eval_accuracy"] == 0.5


WRITER = """
import os, sys
from trainrun.runs import record
runs_dir, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
done = []
for i in range(n):
    path = record.new_run_dir(runs_dir)
    run = {"id": path.name, "script": "w.py", "status": "running", "start": record.utc_now(),
           "host": record.HOST, "pid": os.getpid(), "pid_start": record.process_start_time(os.getpid()),
           "tags": {"worker": str(worker)}}
    record.write_json(path / "run.json", run)
    record.write_json(path / "flags.json", {"values": {"worker": worker, "i": i}, "declared": {}})
    record.append_jsonl(path / "metrics.jsonl", [{"step": 0, "loss": 1.0}])
    run.update(status="completed", end=record.utc_now(), exit_code=0, duration=0.0)
    record.write_json(path / "run.json", run)
    done.append(path)
    # a finished run changed afterwards (a late evaluation): only the journal tells
    record.write_json(done[i // 2] / "evaluation.json", {"accuracy": worker + i / 100})
"""

LISTER = """
import sys, time
from trainrun.runs.store import ls_runs
deadline = time.time() + float(sys.argv[2])
n = 0
while time.time() < deadline:
    ls_runs(sys.argv[1], filter="flag_i >= 0", latest_n=5)
    ls_runs(sys.argv[1])
    n += 1
print(n)
"""


def test_writers_and_listers_at_once_through_the_journal(
    runs_dir: Path, env: dict[str, str], journal
) -> None:
    env = {**env, "TRAINRUN_JOURNAL_MIN_RUNS": "1"}
    per_worker = 10
    (runs_dir / "data").mkdir()  # a folder that is no run: the index holds a row, so the
    ls_runs(runs_dir)  # journal starts before any writer does
    ls_runs(runs_dir)
    lister = subprocess.Popen(
        [sys.executable, "-c", LISTER, str(runs_dir), "5"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(runs_dir), str(w), str(per_worker)], env=env
        )
        for w in range(4)
    ]
    while any(w.poll() is None for w in writers):
        ls_runs(runs_dir, filter="status == 'completed'", latest_n=3)
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    out, _ = lister.communicate(timeout=120)
    assert lister.returncode == 0 and int(out) >= 1
    assert (runs_dir / ".trainrun" / "changes").stat().st_size > 0
    listed = ls_runs(runs_dir).sort_values("id").reset_index(drop=True)
    truth = ls_runs(runs_dir, refresh=True).sort_values("id").reset_index(drop=True)
    assert len(listed) == 4 * per_worker
    assert set(listed["status"]) == {"completed"}
    pd.testing.assert_frame_equal(listed, truth)
    # done[k] got its last evaluation at i = 2k + 1
    expected = sorted(w + (2 * k + 1) / 100 for w in range(4) for k in range(per_worker // 2))
    assert sorted(listed["eval_accuracy"].dropna()) == pytest.approx(expected)
