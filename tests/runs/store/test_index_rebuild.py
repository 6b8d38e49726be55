"""A rebuild of the index read by worker processes stores what one process reads, checks kept."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from tests.runs.store.conftest import SRC, write_run

from trainrun.runs import record
from trainrun.runs.store import _index, ls_runs
from trainrun.runs.store._index import INDEX_FILE, RunRecordWarning


def t(minute: int) -> str:
    return f"2026-11-27T10:{minute:02d}:00.000000Z"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """Twelve runs, among them every kind of damage a rebuild must tolerate."""
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(8):
        write_run(
            folder,
            f"r{i}",
            start=t(i),
            flags={"dropout": i / 10, "bn": i % 2 == 0, "mixed": i if i % 3 else "x"},
            metrics=[{"step": 0, "loss": 1.0}, {"step": 1, "loss": 1 / (i + 1)}],
            evaluation={"accuracy": 0.5 + i / 20, "loss": math.nan if i == 3 else 0.1},
            tags={"team": "a" if i < 4 else "b"},
        )
    (folder / "r1" / record.RUN_FILE).write_text("{not json")  # skipped, named
    (folder / "r2" / record.EVALUATION_FILE).write_text("[1, 2]")  # listed without it
    outside = folder.parent / "secret.json"
    outside.write_text('{"accuracy": 1.0}')
    os.unlink(folder / "r4" / record.EVALUATION_FILE)
    os.symlink(outside, folder / "r4" / record.EVALUATION_FILE)  # a link: never followed
    os.unlink(folder / "r5" / record.METRICS_FILE)
    os.mkfifo(folder / "r5" / record.METRICS_FILE)  # a FIFO: refused, never waited on
    (folder / "data").mkdir()  # not a run
    write_run(folder, "r8", start=t(8), flags={"dropout": 2**70})  # past 64 bits
    write_run(folder, "r9", start=t(9), status="failed", evaluation={"accuracy": True})
    old = time.time() - 3600
    for name in os.listdir(folder):
        os.utime(folder / name, (old, old))  # outside the racy window: stored as read
    return folder


def index_content(runs_dir: Path) -> tuple[list, list]:
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        columns = db.execute("SELECT name, sqlcol, kind FROM columns ORDER BY sqlcol").fetchall()
        rows = db.execute("SELECT * FROM runs ORDER BY id").fetchall()
    return columns, rows


def rebuilt(runs_dir: Path) -> tuple[list, list, list[str], list[str]]:
    """Rebuild the index from nothing: (its columns, its rows, the listing, the warnings)."""
    shutil.rmtree(runs_dir / ".trainrun", ignore_errors=True)
    _index._TABLES.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = ls_runs(runs_dir)
    shown = [str(w.message) for w in caught if issubclass(w.category, RunRecordWarning)]
    return (*index_content(runs_dir), df.to_csv().splitlines(), shown)


# Run in a fresh process: workers are started only from a single-threaded process, and
# earlier tests in this one may have left threads (a parked streamed reading, a server).
_READ_BOTH_WAYS = """
import os, sys, time
from trainrun.runs.store import _index
runs_dir = sys.argv[1]
names = sorted(os.listdir(runs_dir))
to_read = [(n, os.stat(os.path.join(runs_dir, n)).st_mtime_ns) for n in names]
now = time.time_ns()
alone = _index._read_runs(runs_dir, to_read, now)
_index._CHUNK_RUNS = 3  # four chunks over two workers, returned in order
spread = _index._read_in_workers(runs_dir, to_read, now, workers=2)
assert spread is not None, "worker processes could not be started here"
assert spread == alone, (spread, alone)
by_id = {row["id"]: row for row in spread}
assert by_id["r1"]["corrupt"] == 1 and "not valid JSON" in by_id["r1"]["problem"]
assert "not a regular file" in by_id["r4"]["problem"]  # the link was refused
assert "eval_accuracy" not in by_id["r4"]["extra"]
assert "FIFO" in by_id["r5"]["problem"] and "metric_loss" not in by_id["r5"]["extra"]
assert by_id["data"].get("not_run")
print("read", len(spread), "runs both ways")
"""


def test_worker_processes_read_what_one_process_reads(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", _READ_BOTH_WAYS, str(runs_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "read 11 runs both ways" in done.stdout  # 10 runs and the folder data


def test_a_rebuild_in_workers_stores_the_same_index(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = rebuilt(runs_dir)
    monkeypatch.setattr(_index, "PARALLEL_MIN_RUNS", 1)
    monkeypatch.setattr(_index, "_CHUNK_RUNS", 2)
    monkeypatch.setattr(_index, "_cores", lambda: 2)  # even on a machine with one core
    spread = rebuilt(runs_dir)
    assert spread == alone
    columns, rows, listing, shown = spread
    assert any(c[0] == "eval_loss" and c[2] == "nan" for c in columns)
    assert any(c[0] == "flag_bn" and c[2] == "bool" for c in columns)
    assert len(rows) == 11 and len(listing) == 1 + 9  # header, 9 listable runs
    assert len(shown) == 1 and all(f"r{i}:" in shown[0] for i in (1, 2, 4, 5))


def test_kinds_of_columns_do_not_depend_on_the_order_of_runs(runs_dir: Path) -> None:
    # a bool flag that turns into a number in a later run is "other"; NaN makes "nan"
    write_run(runs_dir, "r10", start=t(10), flags={"bn": 3}, evaluation={"accuracy": math.nan})
    columns, *_ = rebuilt(runs_dir)
    kinds = {name: kind for name, _, kind in columns}
    assert kinds["flag_bn"] == "other" and kinds["eval_accuracy"] == "nan"
    assert kinds["tag_team"] == "other" and kinds["flag_dropout"] == "other"


def test_a_new_process_lists_from_the_index_without_rebuilding(runs_dir: Path) -> None:
    rebuilt(runs_dir)
    code = (
        "import sys, time\n"
        "from trainrun.runs.store import _index, ls_runs\n"
        "read = []\n"
        "real = _index._read_runs\n"
        "_index._read_runs = lambda d, names, now: read.extend(names) or real(d, names, now)\n"
        "ls_runs(sys.argv[1], latest_n=5)\n"
        "print(len(read))\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", code, str(runs_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "0"  # no run folder read again: the index on disk was trusted


def test_a_bulk_write_skips_the_disk_sync_and_restores_it(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_index, "BULK_ROWS", 3)
    names = sorted(os.listdir(runs_dir))
    rows = _index._read_runs(str(runs_dir), [(n, 1) for n in names], time.time_ns())
    index = _index._Index(str(runs_dir))
    try:
        index._write(rows, [], [], None)
        assert index.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again
        stored = index.db.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        index.close()
    assert stored == len(names)
