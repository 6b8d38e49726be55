"""The run folder's low-level reader and writer (trainrun.runs.record)."""

import json
import math
import os
import subprocess
import sys
import time

from trainrun.runs import record


def test_new_run_dirs_are_unique_and_laid_out(tmp_path):
    dirs = {record.new_run_dir(tmp_path) for _ in range(5)}
    assert len(dirs) == 5
    for d in dirs:
        assert sorted(p.name for p in d.iterdir()) == sorted(record.SUBDIRS)


def test_write_json_is_atomic_and_keeps_nan_and_infinities(tmp_path):
    path = tmp_path / "x.json"
    record.write_json(path, {"a": float("nan"), "b": [1.5, float("inf"), -float("inf")]})
    back = record.read_json(path)
    assert math.isnan(back["a"]) and back["b"] == [1.5, math.inf, -math.inf]
    assert json.loads(path.read_text())["b"][1] == math.inf  # what Python's json reads
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary left behind


def test_truncated_metrics_line_is_skipped(tmp_path):
    record.append_jsonl(tmp_path / record.METRICS_FILE, [{"step": 1, "loss": 0.5}])
    with open(tmp_path / record.METRICS_FILE, "a") as f:
        f.write('{"step": 2, "loss": 0.')  # what a kill mid-write leaves
    assert record.read_metrics(tmp_path) == [{"step": 1, "loss": 0.5}]
    assert record.last_metrics(record.read_metrics(tmp_path)) == {"loss": 0.5}


def test_running_record_of_a_dead_process_reads_as_killed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_dir = record.new_run_dir(tmp_path)
    run = {"status": "running", "pid": proc.pid, "host": record.HOST}
    record.write_json(run_dir / record.RUN_FILE, run)
    assert record.read_run(run_dir)["status"] == "killed"
    run["pid"], run["pid_start"] = os.getpid(), record.process_start_time(os.getpid())
    record.write_json(run_dir / record.RUN_FILE, run)
    assert record.read_run(run_dir)["status"] == "running"
    run["pid_start"] = (run["pid_start"] or 0) + 1  # same pid, another process: recycled
    record.write_json(run_dir / record.RUN_FILE, run)
    assert record.read_run(run_dir)["status"] == "killed"


def test_folder_without_run_json_is_starting_then_killed(tmp_path):
    run_dir = record.new_run_dir(tmp_path)
    rec = record.read_run(run_dir)
    assert rec["status"] == "running" and rec["problems"] == []
    old = time.time() - 2 * record.STARTING_GRACE_S
    os.utime(run_dir, (old, old))
    rec = record.read_run(run_dir)
    assert rec["status"] == "killed"
    assert rec["problems"] == ["run.json is missing"]


def test_corrupt_side_file_is_reported_not_raised(tmp_path):
    run_dir = record.new_run_dir(tmp_path)
    record.write_json(run_dir / record.RUN_FILE, {"status": "completed"})
    (run_dir / record.EVALUATION_FILE).write_text("{not json")
    rec = record.read_run(run_dir)
    assert rec["status"] == "completed"
    assert rec["evaluation"] == {}
    assert "not valid JSON" in rec["problems"][0]
