"""The runs verbs of the `trainrun` command, end to end in real child processes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
from trainrun.runs.flags import flags
from trainrun.runs.active import log_metrics, write_evaluation
import sys
FLAGS = flags(dropout=0.2, layer1=64, fail=False)
for step in range(3):
    log_metrics(step=step, loss=1.0 / (step + 1))
write_evaluation({"accuracy": 0.5 + FLAGS.dropout, "label/mean": 0.25})
print("script args:", sys.argv[1:])
if FLAGS.fail:
    raise RuntimeError("asked to fail")
"""


def trainrun(
    *args: str, cwd: Path, env: dict[str, str], check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs made by `trainrun run`: one completed, one failed."""
    import os

    folder = tmp_path_factory.mktemp("project")
    (folder / "train.py").write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    env["COLUMNS"] = "200"
    # after '--': the script's own command line (here read by its flags())
    ok = trainrun(
        "run", "train.py", "--flag", "dropout=0.3", "--", "--layer1", "32", cwd=folder, env=env
    )
    assert "script args:" in ok.stdout and "'--layer1', '32'" in ok.stdout
    assert "completed" in ok.stderr
    bad = trainrun(
        "run", "--flag", "fail=true", "train.py", "--no-echo", cwd=folder, env=env, check=1
    )
    assert "asked to fail" not in bad.stdout  # --no-echo
    assert "failed" in bad.stderr
    return folder


@pytest.fixture
def env(project: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    env["COLUMNS"] = "200"
    return env


def test_ls_table_csv_json(project: Path, env: dict[str, str]) -> None:
    table = trainrun("ls", cwd=project, env=env).stdout.splitlines()
    header = table[0].split()
    # what differs between the two runs comes first: the flags, then the metrics
    assert header[:2] == ["id", "status"]
    assert set(header[2:5]) == {"flag_dropout", "flag_layer1", "flag_fail"}
    assert header[5] == "eval_accuracy" and "duration" in header[6:]
    assert table[1].split()[1] == "failed" and table[2].split()[1] == "completed"
    rows = list(
        csv.DictReader(io.StringIO(trainrun("ls", "--format", "csv", cwd=project, env=env).stdout))
    )
    assert [r["status"] for r in rows] == ["failed", "completed"]
    assert rows[1]["flag_dropout"] == "0.3" and rows[1]["eval_label_mean"] == "0.25"
    data = json.loads(
        trainrun(
            "ls", "--format", "json", "--filter", "eval_accuracy > 0.75", cwd=project, env=env
        ).stdout
    )
    assert len(data) == 1 and data[0]["eval_accuracy"] == pytest.approx(0.8)
    assert (
        data[0]["start"].endswith("Z")
        or "+00:00" in data[0]["start"]
        or data[0]["start"][-1].isdigit()
    )
    only = trainrun(
        "ls",
        "--columns",
        "id,status",
        "--order",
        "status",
        "--asc",
        "--latest",
        "5",
        cwd=project,
        env=env,
    )
    lines = only.stdout.splitlines()
    assert lines[0].split() == ["id", "status"] and lines[1].split()[1] == "completed"


def test_ls_narrow_terminal_hides_columns(project: Path, env: dict[str, str]) -> None:
    out = trainrun("ls", cwd=project, env={**env, "COLUMNS": "60"}).stdout
    assert all(len(line) <= 60 for line in out.splitlines()[:-1])
    assert "more column(s) hidden" in out.splitlines()[-1]


def test_show(project: Path, env: dict[str, str]) -> None:
    out = trainrun("show", cwd=project, env=env).stdout
    assert "[failed]" in out.splitlines()[0]
    assert "RuntimeError: asked to fail" in out
    latest_completed = trainrun("show", "1", cwd=project, env=env).stdout
    assert (
        "[completed]" in latest_completed
        and "dropout" in latest_completed
        and "accuracy" in latest_completed
    )
    record = json.loads(trainrun("show", "1", "--json", cwd=project, env=env).stdout)
    assert record["flags"]["dropout"] == 0.3 and record["status"] == "completed"
    assert record["flags"]["layer1"] == 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ls", "--filter", "eval_accuracy >"), "Expected a column or a value"),
        (("ls", "--order", "eval_acc"), "Did you mean: eval_accuracy"),
        (("ls", "--latest", "0"), "positive whole number"),
        (("show", "nope"), "No run 'nope'"),
        (("run", "missing.py"), "does not exist"),
        (("run", "train.py", "--dropout", "0.1"), "after '--'"),
        (("run", "train.py", "--flag", "dropout"), "NAME=VALUE"),
        (("purge", "0"), "needs confirmation"),
        (("copy", "nope", "x"), "No run 'nope'"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    project: Path, env: dict[str, str], args, message: str
) -> None:
    proc = trainrun(*args, cwd=project, env=env, check=2)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_clean_restore_copy_purge(project: Path, env: dict[str, str], tmp_path: Path) -> None:
    runs = project / "runs"
    ids = sorted(p.name for p in runs.iterdir() if not p.name.startswith("."))
    out = trainrun("copy", "0", str(tmp_path / "shared"), cwd=project, env=env).stdout
    assert "Copied to" in out and (tmp_path / "shared" / ids[-1] / "run.json").exists()
    trainrun("clean", "--filter", "status == 'failed'", cwd=project, env=env)
    assert (runs / "archive" / ids[-1]).is_dir()
    listed = trainrun(
        "ls", "--format", "csv", "--columns", "id", cwd=project, env=env
    ).stdout.split()
    assert listed == ["id", ids[0]]
    trainrun("restore", cwd=project, env=env)
    assert (runs / ids[-1]).is_dir()
    trainrun("clean", ids[-1], cwd=project, env=env)
    out = trainrun("purge", "--yes", cwd=project, env=env).stdout
    assert "Deleted 1 run(s)" in out and not (runs / "archive" / ids[-1]).exists()
    trainrun("restore", cwd=project, env=env)  # nothing left to restore: fine


def test_help_is_fast_and_never_imports_torch(tmp_path: Path, env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from trainrun.cli import main\n"
        "for argv in (['--help'], ['ls', '--help'], ['run', '--help'], ['ls', '--runs-dir', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert "ls" in proc.stdout and "clean" in proc.stdout and "purge" in proc.stdout


def test_ctrl_c_exits_130_and_records_interrupted(
    tmp_path: Path, env: dict[str, str], wait_until
) -> None:
    import signal

    from trainrun.runs import record

    (tmp_path / "slow.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "run", "slow.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "started"

        def recorded_running() -> bool:  # the launcher has written the script's pid
            folders = list((tmp_path / "runs").glob("*/run.json"))
            run = record.read_json(folders[0], default={}) if folders else {}
            return run.get("status") == "running" and bool(run.get("child_pid"))

        wait_until(recorded_running, 30, 0.02, message="the run to be recorded as running")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    shown = json.loads(trainrun("show", "--json", cwd=tmp_path, env=env).stdout)
    assert shown["status"] == "interrupted"
