"""SIGTERM sent to a launcher (the `trainrun` command or training_run) stops the run as Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trainrun.runs import record
from trainrun.runs.launch import training_run
from trainrun.runs.launch._signals import SigtermInterrupt, Terminated, sigterm_as_interrupt

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# the script cleans up on KeyboardInterrupt: the SIGINT it gets must reach its finally
LOOP = """\
import time
from pathlib import Path
from trainrun import artifacts_dir, log_metrics
print("looping", flush=True)
try:
    for step in range(1200):
        log_metrics(step=step, loss=1.0)
        time.sleep(0.05)
finally:
    (artifacts_dir() / "cleaned_up").write_text("yes")
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS", "TRAINRUN_FLAGS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def wait_for_metrics(wait_until):
    """``wait_for_metrics(runs, n)``: the first run folder in ``runs`` with ``n`` metric rows."""

    def wait(runs: Path, n: int, timeout: float = 30.0) -> Path:
        def logged() -> Path | None:
            for folder in runs.glob("*"):
                if (folder / "run.json").exists() and len(record.read_metrics(folder)) >= n:
                    return folder
            return None

        return wait_until(logged, timeout, 0.05, message=f"a run in {runs} to log {n} rows")

    return wait


def _check_interrupted(folder: Path) -> None:
    run = record.read_run(folder)
    assert run["status"] == "interrupted" and run["end"] is not None, run
    assert run["error"] == "Interrupted (SIGTERM)"
    assert run["exit_code"] == -signal.SIGINT  # stopped by the SIGINT the launcher sent
    assert len(record.read_metrics(folder)) >= 3
    assert (folder / "artifacts" / "cleaned_up").read_text() == "yes"
    assert not record.process_alive(run["child_pid"])


def _sigterm_and_wait(proc: subprocess.Popen, folder: Path) -> str:
    child = record.read_json(folder / "run.json")["child_pid"]
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if record.process_alive(child):
            os.kill(child, signal.SIGKILL)
    return err.decode("utf-8", "replace")


def test_sigterm_to_the_cli_marks_interrupted_and_stops_the_script(tmp_path, wait_for_metrics):
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "trainrun", "run", str(script), "--no-echo"]
    proc = subprocess.Popen(
        [*cmd, "--runs-dir", str(runs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    folder = wait_for_metrics(runs, 3)
    err = _sigterm_and_wait(proc, folder)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    _check_interrupted(folder)


def test_sigterm_to_a_training_run_caller_raises_keyboard_interrupt(tmp_path, wait_for_metrics):
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    runs = tmp_path / "runs"
    code = (
        "import signal, sys\n"
        "from trainrun.runs.launch import training_run\n"
        "try:\n"
        "    training_run(sys.argv[1], runs_dir=sys.argv[2], echo=False)\n"
        "except KeyboardInterrupt as exc:\n"
        "    handler = signal.getsignal(signal.SIGTERM)\n"
        "    print('caught', type(exc).__name__, handler is signal.SIG_DFL, file=sys.stderr)\n"
        "    sys.exit(7)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(script), str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    folder = wait_for_metrics(runs, 3)
    err = _sigterm_and_wait(proc, folder)
    # a KeyboardInterrupt (subclass Terminated), and the default handler is back afterwards
    assert proc.returncode == 7 and "caught Terminated True" in err, err
    _check_interrupted(folder)


def test_a_programs_own_sigterm_handler_is_kept(tmp_path):
    script = tmp_path / "quick.py"
    script.write_text("print('hi')\n")

    def own(signum, frame):  # pragma: no cover - never called
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with sigterm_as_interrupt() as handler:
            assert handler is None and signal.getsignal(signal.SIGTERM) is own
        run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
        assert run["status"] == "completed"
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_handler_is_installed_over_the_default_and_restored(tmp_path):
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with sigterm_as_interrupt() as outer:
            assert isinstance(outer, SigtermInterrupt)
            with sigterm_as_interrupt() as inner:  # the command's handler, then the launcher's
                assert isinstance(inner, SigtermInterrupt) and inner is not outer
                with pytest.raises(Terminated):
                    inner(signal.SIGTERM, None)
                inner.deferred = True
                inner(signal.SIGTERM, None)  # while the record is written: only noted
                assert inner.received
            assert signal.getsignal(signal.SIGTERM) is outer
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_no_handler_outside_the_main_thread():
    import threading

    seen = []
    thread = threading.Thread(target=lambda: seen.append(sigterm_as_interrupt().__enter__()))
    thread.start()
    thread.join()
    assert seen == [None]


def test_a_launcher_that_ignores_sigint_stops_its_script_with_sigterm(tmp_path, wait_for_metrics):
    """A background job of a non-interactive shell ignores SIGINT, and so does its script."""
    marker = tmp_path / "got_sigint"
    script = tmp_path / "stubborn.py"
    script.write_text(
        "import signal, time\n"
        "from trainrun import log_metrics\n"
        f"signal.signal(signal.SIGINT, lambda *a: open({str(marker)!r}, 'w').close())\n"
        "for step in range(1200):\n"
        "    log_metrics(step=step, loss=1.0)\n"
        "    time.sleep(0.05)\n"
    )
    runs = tmp_path / "runs"
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "from trainrun.runs.launch import training_run\n"
        "training_run(sys.argv[1], runs_dir=sys.argv[2], echo=False)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(script), str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    folder = wait_for_metrics(runs, 3)
    _sigterm_and_wait(proc, folder)
    run = record.read_run(folder)
    assert run["status"] == "interrupted" and run["error"] == "Interrupted (SIGTERM)"
    assert run["exit_code"] == -signal.SIGTERM
    assert not marker.exists()  # no SIGINT first: it would only have waited out its grace
