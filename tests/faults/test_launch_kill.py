"""SIGSTOP then SIGKILL of a launcher: no output still in the pipe is lost, no script survives.

A launcher stopped with SIGSTOP stops reading the script's output; the script
fills the pipe and blocks. When the launcher is then SIGKILLed, the bootstrap's
watcher (which holds the pipe's read end) copies what was in the pipe to
output.log, and a script that was itself stopped gets SIGCONT with its death
signal, so it ends instead of waiting forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainrun.runs import record

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds: Linux")

# prints numbered lines; after each print returns, notes the number in a side file
NOISY = """\
import os, sys
side = sys.argv[1]
for i in range(1_000_000):
    print(f"line {i:07d} " + "x" * 90, flush=True)
    with open(side + ".tmp", "w") as f:
        f.write(str(i))
    os.replace(side + ".tmp", side)  # readers never see it half-written
"""

LAUNCH = """\
import sys
from trainrun.runs.launch import training_run
training_run(sys.argv[1], runs_dir=sys.argv[2], args=sys.argv[3:], echo=False)
"""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def _alive(pid: int) -> bool:
    return _state(pid) not in ("Z", "gone")


@pytest.fixture(autouse=True)
def _no_leftovers():
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # a failed test must not leave its launcher stopped or running
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(tmp_path: Path, script_text: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    script = tmp_path / "noisy.py"
    script.write_text(textwrap.dedent(script_text))
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCH)
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINRUN_")}
    proc = subprocess.Popen([sys.executable, str(launcher), str(script), str(runs), *args], env=env)
    return proc, runs


def _run_of(runs: Path, wait_until) -> dict:
    folder = wait_until(lambda: next(runs.glob("20*"), None), message="the run folder")
    return wait_until(
        lambda: (
            (folder / "run.json").exists()
            and record.read_run(folder).get("child_pid")
            and record.read_run(folder)
        ),
        message="run.json with the child's pid",
    )


def test_output_in_the_pipe_survives_sigstop_then_sigkill_of_the_launcher(
    tmp_path, wait_until, _no_leftovers
):
    side = tmp_path / "printed"
    proc, runs = _start(tmp_path, NOISY, str(side))
    _no_leftovers.append(proc)
    run = _run_of(runs, wait_until)
    wait_until(lambda: side.exists() and int(side.read_text() or 0) > 100, message="output")
    os.kill(proc.pid, signal.SIGSTOP)
    # the script fills the pipe, then blocks: its counter stops moving
    wait_until(lambda: _stalled(side), timeout=30, message="the script blocked on the full pipe")
    last = int(side.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    child = run["child_pid"]
    wait_until(lambda: not _alive(child), timeout=20, message="the script to end")
    log = Path(run["run_dir"]) / "output.log"
    lines = wait_until(
        lambda: (
            [ln for ln in log.read_text().splitlines() if ln.startswith("line ")]
            if f"line {last:07d}" in log.read_text()
            else None
        ),
        timeout=20,
        message=f"line {last} in output.log",
    )
    numbers = [int(ln.split()[1]) for ln in lines]
    assert numbers[: last + 1] == list(range(last + 1))  # nothing lost, nothing repeated
    assert record.read_run(run["run_dir"])["status"] == "killed"


def _stalled(side: Path) -> bool:
    import time

    first = side.read_text()
    time.sleep(0.3)  # the counter is read twice, apart, to see that it stopped
    return first == side.read_text()


def test_a_stopped_script_is_continued_and_ended_when_its_launcher_is_killed(
    tmp_path, wait_until, _no_leftovers
):
    side = tmp_path / "printed"
    proc, runs = _start(tmp_path, NOISY.replace('"x" * 90', '"x"'), str(side))
    _no_leftovers.append(proc)
    run = _run_of(runs, wait_until)
    child = run["child_pid"]
    wait_until(side.exists, message="the script running")  # its watcher is up by then
    os.kill(child, signal.SIGSTOP)
    wait_until(lambda: _state(child) == "T", message="the script stopped")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_until(lambda: not _alive(child), timeout=20, message="the stopped script to end")
    assert record.read_run(run["run_dir"])["status"] == "killed"
