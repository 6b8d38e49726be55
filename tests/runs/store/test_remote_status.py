"""A remote run's status wherever one run is shown (show, run_info, view, the mirror): a
running run whose heartbeat stopped reads ``killed``, as in the listing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.runs.store.s3server import S3
from tests.runs.store.test_sync import SCRIPT, end, launch, listed

from trainrun.runs import record
from trainrun.runs.store import get_run_dir, mirror_runs, run_info
from trainrun.runs.store._sync import RunSync

pytestmark = pytest.mark.slow


def show(s3: S3, machine: Path, run: str = "0") -> dict:
    """``trainrun show RUN --json`` on another machine (its own cache)."""
    env = s3.child_env()
    env["TRAINRUN_CACHE_DIR"] = str(machine)
    out = subprocess.run(
        [sys.executable, "-m", "trainrun", "show", run, "--json", "--runs-dir", s3.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_show_of_a_run_whose_writer_was_killed_reads_killed(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    monkeypatch.setenv("TRAINRUN_HEARTBEAT_TIMEOUT", "2")
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = launch(s3, script, tmp_path / "machine-a", GO_FILE=str(tmp_path / "never"))
    try:
        wait_until(lambda: [r["status"] for r in listed(s3)] == ["running"], timeout=60)
        # machine B shows it while it runs: running (its copy is fetched now)
        assert show(s3, tmp_path / "machine-b")["status"] == "running"
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher, its sync and the script: gone at once
    finally:
        end(proc)
    # killed by the heartbeat rule (this host could also see the pid gone; another could not)
    wait_until(lambda: [r["status"] for r in listed(s3)] == ["killed"], timeout=60)
    info = show(s3, tmp_path / "machine-b")
    assert info["status"] == "killed"
    assert "No heartbeat" in info["error"] and "TRAINRUN_HEARTBEAT_TIMEOUT" in info["error"]
    assert info["metrics"]["loss"] == 1 / 3  # what it pushed before it died is all there


def test_a_run_of_another_host_reads_killed_everywhere_once_its_heartbeat_stops(
    s3: S3, tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    # only the heartbeat can tell: the pid of another host cannot be checked from here
    monkeypatch.setenv("TRAINRUN_HEARTBEAT_TIMEOUT", "3")
    folder = write_run(tmp_path / "gpu-box", "live", status="running")
    run = record.read_json(folder / record.RUN_FILE)
    record.write_json(folder / record.RUN_FILE, {**run, "host": "gpu-box-7", "pid": 4242})
    sync = RunSync(folder, s3.url)
    sync.push()  # one heartbeat, then none: its machine died
    assert run_info("live", s3.url)["status"] == "running"
    wait_until(lambda: run_info("live", s3.url)["status"] == "killed", timeout=20)
    assert "gpu-box-7" in run_info("live", s3.url)["error"]
    copy = get_run_dir("live", s3.url)
    assert record.read_run(copy)["status"] == "killed"  # the copy itself says so (view, compare)
    mirror = mirror_runs(s3.url)
    assert record.read_run(mirror / "live")["status"] == "killed"  # the dashboard's mirror too
    # a late heartbeat (the machine was only cut off): running again, everywhere
    sync.push()
    assert run_info("live", s3.url)["status"] == "running"
    assert record.read_run(mirror_runs(s3.url) / "live")["status"] == "running"
