"""`trainrun run`: a program calling main() gets the exit code back; the command flushes its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trainrun.cli import main
from trainrun.runs import record


def test_main_called_in_process_returns_instead_of_exiting(tmp_path, monkeypatch, capsys):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    script = tmp_path / "ok.py"
    script.write_text("print('ok')\n")
    code = main(["run", str(script), "--no-echo", "--runs-dir", str(tmp_path / "runs")])
    assert code == 0  # still here: main() returns the code to a program that calls it
    assert "completed" in capsys.readouterr().err


def test_the_command_flushes_its_output_before_ending(tmp_path):
    script = tmp_path / "noisy.py"
    script.write_text("import sys\nprint('x' * 100_000)\nsys.exit(3)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", str(script), "--runs-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "x" * 100_000 + "\n"
    assert proc.stderr.strip().endswith(")") and " failed (" in proc.stderr
    (folder,) = Path(tmp_path / "r").iterdir()
    run = record.read_run(folder)
    assert run["status"] == "failed" and run["exit_code"] == 3


def test_wait_without_a_pidfd_falls_back_to_polling(tmp_path, monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS"):
        monkeypatch.delenv(var, raising=False)
    from trainrun.runs.launch import training_run

    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    script = tmp_path / "sleepy.py"
    script.write_text("import time\ntime.sleep(0.3)\nprint('woke')\n")
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed" and run["duration"] >= 0.3


def test_json_writes_from_many_threads_stay_whole_and_leave_no_temporary_files(tmp_path):
    import threading

    path = tmp_path / "run.json"

    def writer(n: int) -> None:
        for i in range(30):
            record.write_json(path, {"writer": n, "i": i, "pad": "x" * 2000}, durable=i % 2 == 0)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = record.read_json(path)
    assert final["i"] == 29 and len(final["pad"]) == 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def _trainrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINRUN_")}
    return subprocess.run(
        [sys.executable, "-m", "trainrun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_mistyped_flag_is_refused_with_no_run_folder(tmp_path):
    (tmp_path / "train.py").write_text("from trainrun import flags\nflags(learning_rate=0.1)\n")
    proc = _trainrun("run", "train.py", "--flag", "learning_rat=0.5", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Unknown flag 'learning_rat'" in proc.stderr and "'learning_rate'" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_default_script_and_the_scripts_folder_on_request(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "only.py").write_text("import os\nprint('cwd', os.getcwd())\n")
    proc = _trainrun("run", "--no-echo", cwd=src)  # the folder's only script
    assert proc.returncode == 0, proc.stderr
    (folder,) = (src / "runs").iterdir()
    assert record.read_run(folder)["script"].endswith("only.py")
    proc = _trainrun("run", "src/only.py", "--in-script-dir", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"cwd {src}" in proc.stdout
    proc = _trainrun("run", "src/only.py", cwd=tmp_path)
    assert f"cwd {tmp_path}" in proc.stdout


def test_output_scalars_from_the_command_line(tmp_path):
    (tmp_path / "fit.py").write_text("for i in range(2):\n    print(f'loss={0.5 / (i + 1)}')\n")
    proc = _trainrun("run", "fit.py", "--output-scalars", "--no-echo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert [r["loss"] for r in record.read_metrics(folder)] == [0.5, 0.25]
