"""Many processes creating and finishing runs while others list: nothing lost, nothing corrupt."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from trainrun.runs.store import ls_runs

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
from trainrun.runs.store import ls_runs
deadline = time.time() + float(sys.argv[2])
n = 0
while time.time() < deadline:
    df = ls_runs(sys.argv[1])
    assert set(df["status"]) <= {"running", "completed"}, set(df["status"])
    n += 1
print(n)
"""


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
    # this process lists too, while the writers run
    seen = 0
    while any(w.poll() is None for w in writers):
        df = ls_runs(runs_dir)
        assert set(df["status"]) <= {"running", "completed"}
        seen = max(seen, len(df))
        time.sleep(0.05)
    assert [w.wait(timeout=120) for w in writers] == [0] * 8
    out, _ = lister.communicate(timeout=120)
    assert lister.returncode == 0 and int(out) >= 1
    df = ls_runs(runs_dir)
    assert len(df) == 8 * per_worker
    assert len(set(df["id"])) == 8 * per_worker
    assert set(df["status"]) == {"completed"}
    pairs = {(int(w), int(i)) for w, i in zip(df["flag_worker"], df["flag_i"], strict=True)}
    assert pairs == {(w, i) for w in range(8) for i in range(per_worker)}
    assert df["metric_loss"].eq(0.5).all()
    # the index agrees with the folders read one by one
    from trainrun.runs.store._index import load_table

    scanned = load_table(runs_dir, use_index=False).frame()
    assert sorted(scanned["id"]) == sorted(df["id"])
