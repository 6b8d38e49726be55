"""Fixtures for the runs-store tests: run folders written with record.py, as a launcher would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# the shared-store tests' S3 server (moto on 127.0.0.1) and a fresh bucket per test
from tests.runs.store.s3server import s3, s3_server  # noqa: F401

from trainrun.runs import record

SRC = str(Path(__file__).resolve().parents[3] / "src")


def write_run(
    runs_dir: Path,
    name: str,
    *,
    status: str = "completed",
    start: str = "2026-11-27T10:00:00.000000Z",
    flags: Mapping[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    pid: int | None = None,
    pid_start: int | None = None,
    script: str = "train.py",
) -> Path:
    """A run folder as training_run leaves it (files written through record.py)."""
    path = runs_dir / name
    path.mkdir(parents=True)
    for sub in record.SUBDIRS:
        (path / sub).mkdir()
    run = {
        "id": name,
        "script": script,
        "command": [sys.executable, script],
        "status": status,
        "start": start,
        "end": None if status == "running" else start,
        "duration": None if status == "running" else 1.5,
        "exit_code": None if status == "running" else (0 if status == "completed" else 1),
        "host": record.HOST,
        "pid": pid if pid is not None else os.getpid(),
        "pid_start": pid_start if pid is not None else record.process_start_time(os.getpid()),
        "tags": dict(tags or {}),
    }
    record.write_json(path / record.RUN_FILE, run)
    if flags is not None:
        record.write_json(path / record.FLAGS_FILE, {"values": dict(flags), "declared": {}})
    if metrics:
        record.append_jsonl(path / record.METRICS_FILE, metrics)
    if evaluation is not None:
        record.write_json(path / record.EVALUATION_FILE, dict(evaluation))
    return path


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def make_run(runs_dir: Path) -> Callable[..., Path]:
    def make(name: str, **kw: Any) -> Path:
        return write_run(runs_dir, name, **kw)

    return make


@pytest.fixture(name="write_run")
def write_run_fixture() -> Callable[..., Path]:
    return write_run


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live child process whose pid a 'running' record can name, killed by the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def env() -> dict[str, str]:
    """Environment for child processes: this checkout's trainrun, a wide terminal."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return env
