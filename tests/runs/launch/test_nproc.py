"""training_run(..., nproc=2) / trainrun run --nproc 2: one run, two ranks under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainrun.runs import record
from trainrun.runs.launch import training_run
from trainrun.runs.launch._multiprocess import _traceback_tail, multiprocess_command

SCRIPT = """\
import os, signal, sys, time
from pathlib import Path
from trainrun import flags, log_metrics, write_evaluation
FLAGS = flags(fail_rank=-1, how="raise", wait=False)
rank = int(os.environ["RANK"])
print(f"hello from rank {rank} of {os.environ['WORLD_SIZE']}", flush=True)
log_metrics(step=1, loss=float(rank))
write_evaluation(rank=rank)
pids = os.environ.get("PIDS")
if pids:
    Path(pids, f"rank-{rank}").write_text(str(os.getpid()))
if rank == FLAGS.fail_rank:
    deadline = time.monotonic() + 30  # fail once every rank is up (and has said so)
    while pids and len(os.listdir(pids)) < int(os.environ["WORLD_SIZE"]):
        if time.monotonic() > deadline:
            sys.exit("the other ranks never started")
        time.sleep(0.02)
    if FLAGS.how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError(f"rank {rank} broke on purpose")
if FLAGS.wait or FLAGS.fail_rank >= 0:
    while True:  # until stopped: by torchrun when the other rank fails, or by Ctrl-C
        time.sleep(0.1)
print("done", flush=True)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    return path


def one_run(runs: Path) -> dict:
    (folder,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return record.read_run(folder)


@pytest.mark.slow
def test_two_ranks_are_one_run_with_labelled_output_and_rank_0_records(
    script: Path, tmp_path: Path
) -> None:
    run = training_run(script, runs_dir=tmp_path / "runs", nproc=2, echo=False, view=False)
    assert run["status"] == "completed", run.get("error")
    assert "--nproc-per-node=2" in run["command"]
    folder = Path(run["run_dir"])
    output = (folder / "output.log").read_text()
    assert "[default0]:hello from rank 0 of 2" in output
    assert "[default1]:hello from rank 1 of 2" in output
    # rank 0 alone records: one metrics row, its own evaluation, one flags record
    assert [row["loss"] for row in record.read_metrics(folder)] == [0.0]
    assert record.read_json(folder / "evaluation.json") == {"rank": 0}
    assert run["flags"]["fail_rank"] == -1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("raise", "ValueError: rank 1 broke on purpose"),
        ("kill", "rank 1 of 2 was killed by SIGKILL"),
    ],
)
def test_a_failing_rank_fails_the_run_and_stops_the_others(
    script: Path, tmp_path: Path, how: str, error: str
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    run = training_run(
        script,
        {"fail_rank": 1, "how": how},
        runs_dir=tmp_path / "runs",
        nproc=2,
        echo=False,
        view=False,
        env={"PIDS": str(pids)},
    )
    assert run["status"] == "failed"
    assert error in run["error"]
    # rank 0 was waiting forever: torchrun stopped it
    survivor = int((pids / "rank-0").read_text())
    assert not record.process_alive(survivor)


@pytest.mark.slow
def test_interrupting_the_run_stops_every_rank(script: Path, tmp_path: Path, wait_until) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    runs = tmp_path / "runs"
    code = (
        "from trainrun.runs.launch import training_run\n"
        f"training_run({str(script)!r}, {{'wait': True}}, runs_dir={str(runs)!r}, nproc=2, "
        "echo=False, view=False)\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PIDS": str(pids)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        found = wait_until(
            lambda: len(list(pids.iterdir())) == 2 or launcher.poll() is not None,
            60,
            message="both ranks to start",
        )
        assert found and launcher.poll() is None, launcher.communicate()
        ranks = [int(p.read_text()) for p in sorted(pids.iterdir())]
        launcher.send_signal(signal.SIGINT)
        launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    run = one_run(runs)
    assert run["status"] == "interrupted", run
    wait_until(lambda: not any(record.process_alive(p) for p in ranks), 10, message="ranks to end")


def test_nproc_must_be_a_positive_number_and_nothing_is_created(
    script: Path, tmp_path: Path
) -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="nproc must be a positive whole number"):
            training_run(script, runs_dir=tmp_path / "runs", nproc=bad, echo=False)  # type: ignore[arg-type]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_command_runs_the_script_behind_torchrun() -> None:
    cmd = multiprocess_command([sys.executable, "train.py", "--lr=0.1"], 3)
    assert cmd[0] == sys.executable and cmd[1].endswith("_multiprocess.py")
    assert cmd[2:] == ["--nproc-per-node=3", "train.py", "--lr=0.1"]


def test_the_failing_rank_traceback_is_read_without_rank_prefixes() -> None:
    text = (
        "[rank1]: Traceback (most recent call last):\n"
        '[rank1]:   File "train.py", line 3, in <module>\n'
        "[rank1]: ValueError: bad\n"
    )
    assert _traceback_tail(text).splitlines() == [
        "Traceback (most recent call last):",
        '  File "train.py", line 3, in <module>',
        "ValueError: bad",
    ]
    assert _traceback_tail("no error here") == ""
    assert json.dumps(_traceback_tail("")) == '""'


def test_the_cli_refuses_a_bad_nproc_before_running(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", "--nproc", "0", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--nproc" in proc.stderr and "positive" in proc.stderr
    assert not (tmp_path / "runs").exists()
