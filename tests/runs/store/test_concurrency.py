"""Many processes creating and finishing runs while others list: nothing lost, nothing corrupt."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainrun.runs import record
from trainrun.runs.store import _pushdown, ls_runs
from trainrun.runs.store._index import load_table

WRITER = """
import os, sys, time
from trainrun.runs import record
runs_dir, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    path = record.new_run_dir(runs_dir)   # the launcher's first step: mkdir, atomically
    run = {"id": path.name, "script": "w.py", "status": "running", "start": record.utc_now(),
           "host": record.HOST, "pid": os.getpid(), "pid_start": record.process_start_time(os.getpid()),
           "tags": {"worker": str(worker), "i": str(i)}}
    record.write_json(path / "run.json", run)
    record.write_json(path / "flags.json", {"values": {"worker": worker, "i": i}, "declared": {}})
    record.append_jsonl(path / "metrics.jsonl", [{"step": 0, "loss": 1.0}])
    record.append_jsonl(path / "metrics.jsonl", [{"step": 1, "loss": 0.5}])
    record.write_json(path / "evaluation.json", {"accuracy": worker + i / 100})
    run.update(status="completed", end=record.utc_now(), exit_code=0, duration=0.0)
    record.write_json(path / "run.json", run)
"""

LISTER = """
import sys, time
import pytest

from trainrun.runs import record
from trainrun.runs.store import _pushdown, ls_runs
from trainrun.runs.store._index import load_table
deadline = time.time() + float(sys.argv[2])
n = 0
while time.time() < deadline:
    df = ls_runs(sys.argv[1])
    assert set(df["status"]) <= {"running", "completed"}, set(df["status"])
    n += 1
print(n)
"""


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    """Children a failed assertion left running: killed and reaped, not left to the next test."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_eight_writers_and_two_listers(runs_dir: Path, env: dict[str, str]) -> None:
    per_worker = 12
    lister = subprocess.Popen(
        [sys.executable, "-c", LISTER, str(runs_dir), "6"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(runs_dir), str(w), str(per_worker)], env=env
        )
        for w in range(8)
    ]
    try:
        # this process lists too, while the writers run
        while any(w.poll() is None for w in writers):
            df = ls_runs(runs_dir)
            assert set(df["status"]) <= {"running", "completed"}
            time.sleep(0.05)
        assert [w.wait(timeout=120) for w in writers] == [0] * 8
        out, _ = lister.communicate(timeout=120)
        assert lister.returncode == 0 and int(out) >= 1
    finally:
        _stop([lister, *writers])
    df = ls_runs(runs_dir)
    assert len(df) == 8 * per_worker
    assert len(set(df["id"])) == 8 * per_worker
    assert set(df["status"]) == {"completed"}
    pairs = {(int(w), int(i)) for w, i in zip(df["flag_worker"], df["flag_i"], strict=True)}
    assert pairs == {(w, i) for w in range(8) for i in range(per_worker)}
    assert df["metric_loss"].eq(0.5).all()
    # the index agrees with the folders read one by one
    scanned = load_table(runs_dir, use_index=False).frame()
    assert sorted(scanned["id"]) == sorted(df["id"])


# The race the test above found once in CI: a reader takes run.json while it says
# 'running', the owner then writes its end and exits, and the reader's liveness check
# finds the process gone. The record says 'completed'; the listing must not say
# 'killed'. The owner's last write and exit are put exactly between the two steps.


def _finish_when_checked(
    monkeypatch: pytest.MonkeyPatch, path: Path, proc: subprocess.Popen[bytes]
) -> list[int]:
    """The next liveness check of ``proc`` first completes ``path``'s record and ends ``proc``."""
    calls: list[int] = []
    alive = record.process_alive

    def check(pid: int | None, pid_start: int | None = None) -> bool:
        if pid == proc.pid and not calls:
            run = record.read_json(path / record.RUN_FILE)
            run.update(status="completed", end=record.utc_now(), exit_code=0)
            record.write_json(path / record.RUN_FILE, run)
            proc.kill()
            proc.wait()
            calls.append(pid)
        return alive(pid, pid_start)

    monkeypatch.setattr(record, "process_alive", check)
    return calls


def _running(runs_dir: Path, proc: subprocess.Popen[bytes]) -> Path:
    path = record.new_run_dir(runs_dir)
    run = {
        "id": path.name,
        "script": "w.py",
        "status": "running",
        "start": record.utc_now(),
        "host": record.HOST,
        "pid": proc.pid,
        "pid_start": record.process_start_time(proc.pid),
    }
    record.write_json(path / record.RUN_FILE, run)
    return path


@pytest.mark.parametrize("use_index", [True, False], ids=["index", "scan"])
def test_a_run_that_ends_while_it_is_read_is_not_called_killed(
    runs_dir: Path,
    sleeper: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    use_index: bool,
) -> None:
    path = _running(runs_dir, sleeper)
    calls = _finish_when_checked(monkeypatch, path, sleeper)
    df = ls_runs(runs_dir) if use_index else load_table(runs_dir, use_index=False).frame()
    assert calls == [sleeper.pid]  # the check ran, after the read
    assert list(df["status"]) == ["completed"]
    assert list(df["exit_code"]) == [0]


@pytest.mark.parametrize("journal", [False, True], ids=["stat", "journal"])
def test_a_run_that_ends_between_two_listings_is_not_called_killed(
    runs_dir: Path,
    sleeper: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
    journal: bool,
) -> None:
    # the index holds the run as running; the next listing checks the stored pid
    # (a large store finds its running runs through the journal's path instead)
    if journal:
        monkeypatch.setattr(_pushdown, "JOURNAL_MIN_RUNS", 1)
    path = _running(runs_dir, sleeper)
    past = time.time() - 60  # out of the racy window, so the stored row is trusted
    for p in (path / record.RUN_FILE, path, runs_dir):
        os.utime(p, (past, past))
    for _ in range(2):  # the first listing of a journaled store starts the journal
        assert list(ls_runs(runs_dir)["status"]) == ["running"]
    calls = _finish_when_checked(monkeypatch, path, sleeper)
    df = ls_runs(runs_dir)
    assert calls == [sleeper.pid]
    assert list(df["status"]) == ["completed"]


def test_read_run_of_a_run_that_ends_while_it_is_read(
    runs_dir: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _running(runs_dir, sleeper)
    calls = _finish_when_checked(monkeypatch, path, sleeper)
    run = record.read_run(path)
    assert calls == [sleeper.pid]
    assert run["status"] == "completed" and run["exit_code"] == 0


def test_a_run_whose_owner_died_without_its_end_still_reads_killed(
    runs_dir: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # the re-read is no excuse: a record left 'running' by a dead process is killed
    path = _running(runs_dir, sleeper)
    sleeper.kill()
    sleeper.wait()
    assert list(ls_runs(runs_dir)["status"]) == ["killed"]
    assert record.read_run(path)["status"] == "killed"
