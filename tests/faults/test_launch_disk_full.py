"""Disk full (ENOSPC) around a training run, on a real small tmpfs (root) or by injection.

The launcher keeps the record truthful: starting on a full disk is a clear error
with no folder left behind; a script that fills the disk gets a final record
that says what happened, written from the space the launcher reserved; never a
traceback from the launcher.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from trainrun.exceptions import RunRecordError
from trainrun.runs import record
from trainrun.runs.launch import training_run

FILL = """\
import sys
from pathlib import Path
chunk = b"x" * 65536
with open(Path(sys.argv[1]) / "filler.bin", "wb") as f:
    try:
        while True:
            f.write(chunk)
            f.flush()
    except OSError as exc:
        print("the disk is full:", exc.errno, flush=True)
        if "--crash" in sys.argv:
            raise
print("finished anyway", flush=True)
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs of our own (needs root); skipped elsewhere (see the injection tests)."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS", "TRAINRUN_FLAGS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


def _fill(folder: Path) -> None:
    with open(folder / "ballast.bin", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _run_folders(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]


def test_starting_on_a_full_disk_is_a_clear_error_and_leaves_no_folder(tmp_path, small_disk):
    script = tmp_path / "train.py"
    script.write_text("print('never')\n")
    (small_disk / "runs").mkdir()
    _fill(small_disk)
    with pytest.raises(RunRecordError, match="the disk is full. No run was started"):
        training_run(script, runs_dir=small_disk / "runs", echo=False)
    assert _run_folders(small_disk / "runs") == []


def test_a_script_that_fills_the_disk_gets_a_truthful_final_record(tmp_path, small_disk):
    script = tmp_path / "fill.py"
    script.write_text(FILL)
    runs = small_disk / "runs"
    run = training_run(script, runs_dir=runs, args=[str(small_disk), "--crash"], echo=False)
    assert run["status"] == "failed" and run["exit_code"] == 1
    assert run["error"].startswith("disk full: OSError: [Errno 28]"), run["error"]
    assert run["end"] and run["packages"] is not None
    assert not (Path(run["run_dir"]) / ".trainrun-reserve").exists()
    # it still finishes cleanly when the script handles the error itself
    (small_disk / "filler.bin").unlink()
    run = training_run(script, runs_dir=runs, args=[str(small_disk)], echo=False)
    assert run["status"] == "completed" and run["exit_code"] == 0
    # output.log could not take the output: run.json keeps its tail, and says why
    assert "No space left on device" in run["output_error"]
    assert "the disk is full: 28" in run["output_tail"] and "finished anyway" in run["output_tail"]


def test_the_trainrun_command_on_a_full_disk_prints_one_line_not_a_traceback(tmp_path, small_disk):
    script = tmp_path / "fill.py"
    script.write_text(FILL)
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", str(script), "--runs-dir",
         str(small_disk / "runs"), "--no-echo", "--", str(small_disk), "--crash"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (folder,) = _run_folders(small_disk / "runs")
    assert record.read_run(folder)["error"].startswith("disk full")
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", str(script), "--runs-dir",
         str(small_disk / "runs"), "--no-echo"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the disk is full" in proc.stderr
    assert len(_run_folders(small_disk / "runs")) == 1


# ---------------------------------------------------------------- by injection (any user)


def test_final_record_on_a_full_disk_uses_the_reserve(tmp_path, monkeypatch):
    """ENOSPC injected at the write layer for the final run.json: the reserve frees room."""
    import trainrun.runs.launch as launch

    script = tmp_path / "ok.py"
    script.write_text("print('ok')\n")
    real = launch.update_run
    calls = {"n": 0}

    def update_run(run_dir, fields, **kw):
        if fields.get("end") and (Path(run_dir) / launch.RESERVE_FILE).exists():
            calls["n"] += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(run_dir, fields, **kw)

    monkeypatch.setattr(launch, "update_run", update_run)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert calls["n"] == 1 and run["status"] == "completed"
    assert run["record_error"].startswith("disk full")


def test_a_final_record_that_cannot_be_written_keeps_the_last_good_one(
    tmp_path, monkeypatch, capfd
):
    import trainrun.runs.launch as launch

    script = tmp_path / "ok.py"
    script.write_text("print('ok')\n")
    real = launch.update_run

    def update_run(run_dir, fields, **kw):
        if fields.get("end"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(run_dir, fields, **kw)

    monkeypatch.setattr(launch, "update_run", update_run)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    err = capfd.readouterr().err
    assert "could not write the final record" in err and "The script completed" in err
    assert "Traceback" not in err
    # the first record stays intact and readable on disk; the caller gets the truth
    assert record.read_json(Path(run["run_dir"]) / "run.json")["status"] == "running"
    assert run["status"] == "completed" and run["exit_code"] == 0
    assert run["record_error"].startswith("the final record could not be written")


def test_a_first_record_that_cannot_be_written_stops_the_script_and_leaves_nothing(
    tmp_path, monkeypatch, wait_until
):
    """ENOSPC injected at the first run.json write, after the script has started."""
    import trainrun.runs.launch as launch

    pid_file = tmp_path / "pid"
    script = tmp_path / "slow.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    real = launch.update_run

    def update_run(run_dir, fields, **kw):
        if fields.get("status") == "running":
            wait_until(pid_file.exists, message="the script started")  # it is running now
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(run_dir, fields, **kw)

    monkeypatch.setattr(launch, "update_run", update_run)
    with pytest.raises(RunRecordError, match="the disk is full. No run was started"):
        training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert _run_folders(tmp_path / "runs") == []
    pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_until(gone, timeout=20, message="the script stopped")  # not left to run unrecorded
