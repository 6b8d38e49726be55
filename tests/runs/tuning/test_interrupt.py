"""Ctrl-C: SIGINT to a process running a tuning stops it; unfinished trials read interrupted."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from trainrun.runs import record


def _run_folders(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    return sorted(f for f in runs_dir.iterdir() if (f / record.RUN_FILE).is_file())


def _started_pids(runs_dir: Path) -> list[int]:
    pids = []
    for folder in _run_folders(runs_dir):
        log = folder / record.OUTPUT_FILE
        if log.exists():
            found = re.search(r"started \S+ pid (\d+)", log.read_text(errors="replace"))
            if found:
                pids.append(int(found.group(1)))
    return pids


def test_sigint_stops_the_tuning_and_marks_running_trials_interrupted(script, runs_dir, wait_until):
    # through the CLI, which turns the KeyboardInterrupt that tuning_run raises into exit 130
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "tune", str(script), "--grid", "x=1,2,3,4",
         "--grid", "sleep=120", "--workers", "2", "--runs-dir", str(runs_dir), "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def two_started() -> bool:
            assert proc.poll() is None, proc.stdout.read()
            return len(_started_pids(runs_dir)) >= 2

        wait_until(two_started, timeout=60, interval=0.1, message="two trials to start")
        children = _started_pids(runs_dir)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "2 running trial(s) marked interrupted" in out
    runs = [record.read_run(folder) for folder in _run_folders(runs_dir)]
    assert len(runs) == 2  # no trial started after Ctrl-C
    assert [r["status"] for r in runs] == ["interrupted", "interrupted"]
    assert sorted(r["tags"]["trial"] for r in runs) == ["1", "2"]
    for r in runs:
        assert "started" in (Path(r["run_dir"]) / record.OUTPUT_FILE).read_text()
    for pid in children:
        assert not record.process_alive(pid), f"trial process {pid} was left running"
