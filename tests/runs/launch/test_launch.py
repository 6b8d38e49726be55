"""training_run with real child processes: outcomes, hostile flags, kills, Ctrl-C, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from trainrun.exceptions import FlagError
from trainrun.runs import record
from trainrun.runs.launch import stop_all_runs, training_run

TRAIN = """\
import json, sys
from trainrun import flags, log_metrics, write_evaluation, artifacts_dir
FLAGS = flags(dropout=0.2, layer1=256, note="", fail=False)
print("héllo ✓ starting", flush=True)
print("to stderr", file=sys.stderr, flush=True)
for step in range(3):
    log_metrics(step=step, loss=1.0 / (step + 1))
write_evaluation(accuracy=0.875)
(artifacts_dir() / "flags_seen.json").write_text(json.dumps(dict(FLAGS)), encoding="utf-8")
if FLAGS.fail:
    raise ValueError("boom: the model diverged")
print("done")
"""

LOOP = """\
import time
from trainrun import log_metrics
print("looping", flush=True)
for step in range(1200):
    log_metrics(step=step, loss=1.0)
    time.sleep(0.05)
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS", "TRAINRUN_FLAGS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


def test_completed_run_records_everything(tmp_path, capfd):
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, flags={"dropout": 0.5}, runs_dir=tmp_path / "runs", tags={"k": 1})
    folder = Path(run["run_dir"])
    assert folder.parent == tmp_path / "runs" and run["id"] == folder.name
    assert run["status"] == "completed" and run["exit_code"] == 0 and run["error"] is None
    assert run["flags"] == {"dropout": 0.5, "layer1": 256, "note": "", "fail": False}
    assert run["declared_flags"]["layer1"]["type"] == "integer"
    assert run["metrics"] == {"loss": pytest.approx(1 / 3)}
    assert run["evaluation"] == {"accuracy": 0.875}
    assert run["tags"] == {"k": "1"}
    assert run["command"][:3] == [sys.executable, str(script.resolve()), "--dropout=0.5"]
    assert run["pid"] == os.getpid() and run["host"] == record.HOST
    assert run["python"] == sys.version.split()[0]
    assert "trainrun" in run["packages"] and "numpy" in run["packages"]
    assert run["duration"] > 0 and run["start"] < run["end"]
    assert (folder / "source" / "train.py").read_text(encoding="utf-8") == script.read_text(
        encoding="utf-8"
    )
    log = (folder / "output.log").read_text(encoding="utf-8")
    assert "héllo ✓ starting" in log and "to stderr" in log and "done" in log
    assert "héllo ✓ starting" in capfd.readouterr().out  # echoed live


def test_echo_false_still_logs(tmp_path, capfd):
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert "done" not in capfd.readouterr().out
    assert "done" in (Path(run["run_dir"]) / "output.log").read_text(encoding="utf-8")


def test_failing_script(tmp_path):
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, flags={"fail": True}, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "failed" and run["exit_code"] == 1
    assert run["error"] == "ValueError: boom: the model diverged"
    assert run["traceback"].startswith("Traceback (most recent call last):")
    assert "train.py" in run["traceback"]
    assert run["metrics"]["loss"] == pytest.approx(1 / 3)  # written before the failure: kept
    assert "starting" in (Path(run["run_dir"]) / "output.log").read_text(encoding="utf-8")


def test_bad_flag_override_is_refused_before_any_folder_exists(tmp_path):
    script = write(tmp_path, "train.py", TRAIN)
    with pytest.raises(FlagError, match="Unknown flag 'dropuot'.*Did you mean 'dropout'"):
        training_run(script, flags={"dropuot": 0.1}, runs_dir=tmp_path / "runs", echo=False)
    assert not (tmp_path / "runs").exists()


def test_exit_code_130_is_interrupted(tmp_path):
    script = write(tmp_path, "quit.py", "import sys\nprint('caught Ctrl-C')\nsys.exit(130)\n")
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "interrupted" and run["exit_code"] == 130


def test_child_killed_by_signal_is_failed(tmp_path):
    script = write(tmp_path, "die.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "failed" and run["exit_code"] == -signal.SIGKILL
    assert run["error"].startswith("Killed by SIGKILL")


HOSTILE = {
    "note": "; rm -rf / ; echo pwned > pwned1",
    "layer1": 3,
    "dropout": 0.1,
}
HOSTILE_STRINGS = [
    "$(touch pwned2)",
    "`touch pwned3`",
    'it\'s "quoted" \\ back',
    "line one\nline two",
    "héllo ✓ 日本語 🚀",
    "--dropout=9",
    "&& touch pwned4 |",
    "",
]


@pytest.mark.parametrize("value", [HOSTILE["note"], *HOSTILE_STRINGS])
def test_hostile_flag_values_arrive_verbatim(tmp_path, value):
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, flags={"note": value}, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed", run["error"]
    seen = json.loads((Path(run["run_dir"]) / "artifacts" / "flags_seen.json").read_text("utf-8"))
    assert seen["note"] == value and seen["dropout"] == 0.2
    assert run["flags"]["note"] == value
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))


def test_args_reach_the_script(tmp_path):
    script = write(
        tmp_path,
        "args.py",
        """\
        import json, sys
        from trainrun import flags, artifacts_dir
        FLAGS = flags(lr=0.1)
        (artifacts_dir() / "a.json").write_text(json.dumps([sys.argv[1:], FLAGS.unparsed, FLAGS.lr]))
        """,
    )
    run = training_run(
        script, flags={"lr": 0.5}, runs_dir=tmp_path / "runs", args=["in.csv", "--", "$(x)"]
    )
    argv, rest, lr = json.loads((Path(run["run_dir"]) / "artifacts" / "a.json").read_text())
    assert argv == ["--lr=0.5", "in.csv", "--", "$(x)"]
    assert rest == ["in.csv", "--", "$(x)"] and lr == 0.5


def test_script_without_flags_refuses_overrides_unless_unchecked(tmp_path):
    script = write(tmp_path, "plain.py", "import sys\nprint(sys.argv[1:])\n")
    with pytest.raises(FlagError, match="plain.py declares no flags"):
        training_run(script, flags={"epochs": 3}, runs_dir=tmp_path / "runs", echo=False)
    assert not (tmp_path / "runs").exists()
    run = training_run(
        script, flags={"epochs": 3}, runs_dir=tmp_path / "runs", echo=False, check_flags=False
    )
    assert run["status"] == "completed" and run["flags"] == {"epochs": 3}
    assert "['--epochs=3']" in (Path(run["run_dir"]) / "output.log").read_text()
    # the caller's spelling reaches argv (for the script's own parser); the record is canonical
    run = training_run(
        script, flags={"learning-rate": 0.5}, runs_dir=tmp_path / "runs", check_flags=False
    )
    assert run["command"][-1] == "--learning-rate=0.5"
    assert run["flags"] == {"learning_rate": 0.5}


def test_env_reaches_the_script(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRUN_TEST_DROP", "present")
    script = write(
        tmp_path,
        "env.py",
        "import os\nprint(os.environ.get('MY_VAR'), os.environ.get('TRAINRUN_TEST_DROP'))\n",
    )
    run = training_run(
        script,
        runs_dir=tmp_path / "runs",
        echo=False,
        env={"MY_VAR": "x y $(z)", "TRAINRUN_TEST_DROP": None},
    )
    assert "x y $(z) None" in (Path(run["run_dir"]) / "output.log").read_text()


def test_nested_run_does_not_inherit_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINRUN_FLAGS", json.dumps({"bogus": 1}))
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed", run["error"]


def test_working_folder_is_the_callers_or_the_scripts_on_request(tmp_path, monkeypatch):
    sub = tmp_path / "proj"
    sub.mkdir()
    write(sub, "flags.yml", "rate: 0.7\n")
    (sub / "data").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("caller's data\n")
    write(
        sub,
        "cwd.py",
        "import os\nfrom trainrun import flags\nprint(os.getcwd(), flags(rate=0.1).rate)\n"
        "print(open('data/train.csv').read() if os.path.exists('data/train.csv') else 'none')\n",
    )
    monkeypatch.chdir(tmp_path)
    run = training_run("proj/cwd.py", runs_dir="runs", echo=False)
    assert Path(run["run_dir"]).parent == tmp_path / "runs"  # relative to the caller
    assert run["script"] == "proj/cwd.py" and run["cwd"] == str(tmp_path)
    log = (Path(run["run_dir"]) / "output.log").read_text()
    # as `python proj/cwd.py`: the caller's folder, the flags.yml beside the script
    assert f"{tmp_path} 0.7" in log and "caller's data" in log
    run = training_run("proj/cwd.py", runs_dir="runs", echo=False, cwd=sub)
    log = (Path(run["run_dir"]) / "output.log").read_text()
    assert f"{sub} 0.7" in log and "none" in log and run["cwd"] == str(sub)


def test_source_snapshot_bounds(tmp_path):
    proj = tmp_path / "proj"
    (proj / "sub" / "deeper").mkdir(parents=True)
    for d in ("data", ".hidden", "runs", "__pycache__", "node_modules", "myenv"):
        (proj / d).mkdir()
        (proj / d / "x.py").write_text("x = 1\n")
    (proj / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (proj / "old_experiments" / ".trainrun").mkdir(parents=True)  # another runs folder
    (proj / "old_experiments" / "x.py").write_text("x = 1\n")
    # a run folder in a runs folder never listed (no index): skipped all the same
    (proj / "other_runs" / "2026-01-01T00-00-00Z" / "source").mkdir(parents=True)
    (proj / "other_runs" / "2026-01-01T00-00-00Z" / "run.json").write_text("{}\n")
    (proj / "other_runs" / "2026-01-01T00-00-00Z" / "source" / "x.py").write_text("x = 1\n")
    script = write(proj, "train.py", "print('ok')\n")
    write(proj, "helper.py", "y = 2\n")
    write(proj, "config.yaml", "a: 1\n")
    write(proj, "notes.md", "# notes\n")
    write(proj, "weights.bin", "binary")
    write(proj / "sub", "mod.py", "z = 3\n")
    write(proj / "sub" / "deeper", "deep.R", "x <- 1\n")
    (proj / "big.txt").write_text("x" * 1_200_000)
    run = training_run(script, runs_dir=proj / "runs", echo=False)
    source = Path(run["run_dir"]) / "source"
    copied = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert copied == [
        "config.yaml",
        "helper.py",
        "notes.md",
        "sub/deeper/deep.R",
        "sub/mod.py",
        "train.py",
    ]
    assert any("big.txt" in s for s in run["source"]["skipped"])
    assert run["source"]["files"] == 6


def test_bad_arguments(tmp_path):
    script = write(tmp_path, "train.py", TRAIN)
    with pytest.raises(FileNotFoundError, match="does not exist.*Received: script='nope.py'"):
        training_run("nope.py", runs_dir=tmp_path / "runs")
    with pytest.raises(FlagError, match="dict of flag names"):
        training_run(script, flags=[("a", 1)], runs_dir=tmp_path / "runs")
    with pytest.raises(FlagError, match="must be a number, a string"):
        training_run(script, flags={"a": [1, 2]}, runs_dir=tmp_path / "runs")
    with pytest.raises(FlagError, match="NUL"):
        training_run(script, flags={"a": "x\x00y"}, runs_dir=tmp_path / "runs")
    with pytest.raises(TypeError, match="list of strings"):
        training_run(script, runs_dir=tmp_path / "runs", args="--x 1")
    with pytest.raises(ValueError, match="NUL"):
        training_run(script, runs_dir=tmp_path / "runs", env={"X": "a\x00b"})
    with pytest.raises(TypeError, match="env must be a dict"):
        training_run(script, runs_dir=tmp_path / "runs", env=["X=1"])
    assert not (tmp_path / "runs").exists()  # nothing created for a bad call


def test_view_calls_the_report(tmp_path, monkeypatch):
    report = pytest.importorskip("trainrun.runs.report")
    seen = []
    monkeypatch.setattr(report, "view_run", lambda run, *a, **k: seen.append(Path(run)))
    script = write(tmp_path, "train.py", TRAIN)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False, view=True)
    assert seen == [Path(run["run_dir"])]
    training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert len(seen) == 1  # view=None in a script (not an interactive session): nothing opens
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)  # as at a Python prompt
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert seen[-1] == Path(run["run_dir"])  # view=None at a prompt: the page, as tfruns
    training_run(script, runs_dir=tmp_path / "runs", echo=False, view=False)
    assert len(seen) == 2


def test_stop_all_runs_interrupts_runs_in_threads(tmp_path, wait_for_metrics):
    script = write(tmp_path, "loop.py", LOOP)
    results = []
    worker = threading.Thread(
        target=lambda: results.append(training_run(script, runs_dir=tmp_path / "runs", echo=False))
    )
    worker.start()
    wait_for_metrics(tmp_path / "runs", 2)
    assert stop_all_runs() == 1
    worker.join(30)
    assert results and results[0]["status"] == "interrupted"
    assert results[0]["exit_code"] == -signal.SIGINT


# ---------------------------------------------------------------- launcher as a process


@pytest.fixture
def wait_for_metrics(wait_until):
    """``wait_for_metrics(runs, n)``: the first run folder in ``runs`` with ``n`` metric rows."""

    def wait(runs: Path, n: int, timeout: float = 30.0) -> Path:
        def logged() -> Path | None:
            for folder in runs.glob("*"):
                if len(record.read_metrics(folder)) >= n:
                    return folder
            return None

        return wait_until(logged, timeout, 0.05, message=f"a run in {runs} to log {n} rows")

    return wait


def start_launcher(script: Path, runs: Path) -> subprocess.Popen:
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from trainrun.runs.launch import training_run\n"
        "training_run(sys.argv[1], runs_dir=sys.argv[2], echo=False)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(script), str(runs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_of_the_launcher_reads_as_killed(tmp_path, wait_for_metrics, wait_until):
    script = write(tmp_path, "loop.py", LOOP)
    launcher = start_launcher(script, tmp_path / "runs")
    folder = wait_for_metrics(tmp_path / "runs", 3)
    child = record.read_json(folder / "run.json").get("child_pid")
    try:
        launcher.kill()
        launcher.communicate(timeout=10)
        run = record.read_run(folder)
        assert record.read_json(folder / "run.json")["status"] == "running"  # as left
        assert run["status"] == "killed"
        assert len(record.read_metrics(folder)) >= 3  # what was written is kept
        assert "looping" in (folder / "output.log").read_text()
        if sys.platform.startswith("linux"):
            # the script does not train on as an orphan (PR_SET_PDEATHSIG): gone in seconds
            wait_until(
                lambda: not record.process_alive(child),
                10,
                message="the script to end with its killed launcher",
            )
    finally:
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_ctrl_c_marks_interrupted_and_stops_the_child(tmp_path, wait_for_metrics):
    script = write(tmp_path, "loop.py", LOOP)
    launcher = start_launcher(script, tmp_path / "runs")
    folder = wait_for_metrics(tmp_path / "runs", 3)
    child = record.read_json(folder / "run.json")["child_pid"]
    launcher.send_signal(signal.SIGINT)
    _, err = launcher.communicate(timeout=30)
    assert launcher.returncode != 0 and b"KeyboardInterrupt" in err
    run = record.read_run(folder)
    assert run["status"] == "interrupted" and run["end"] is not None
    assert run["error"] == "Interrupted (KeyboardInterrupt)"
    assert len(record.read_metrics(folder)) >= 3
    assert not record.process_alive(child)


def test_eight_runs_at_once(tmp_path):
    script = write(tmp_path, "train.py", TRAIN)
    runs = tmp_path / "runs"
    launchers = [start_launcher(script, runs) for _ in range(8)]
    for p in launchers:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    folders = sorted(runs.iterdir())
    assert len(folders) == 8 and len({f.name for f in folders}) == 8
    for folder in folders:
        run = record.read_run(folder)
        assert run["status"] == "completed" and run["id"] == folder.name
        assert run["evaluation"] == {"accuracy": 0.875}
        assert len(record.read_metrics(folder)) == 3


def test_launch_path_imports_neither_pandas_nor_torch(tmp_path):
    script = write(
        tmp_path,
        "light.py",
        """\
        import sys
        from trainrun import flags, log_metrics
        flags(lr=0.1)
        log_metrics(loss=1.0)
        print("child heavy:", "pandas" in sys.modules, "torch" in sys.modules)
        """,
    )
    code = (
        "import sys\n"
        "from trainrun.runs.launch import training_run\n"
        "run = training_run(sys.argv[1], runs_dir=sys.argv[2], echo=False)\n"
        "print(run['status'], 'pandas' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(script), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "completed False False", out.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert "child heavy: False False" in (folder / "output.log").read_text()


def test_interrupt_without_a_signal_reaches_the_wait(tmp_path, wait_for_metrics):
    """Ray cancels a task with interrupt_main(), which cannot break a blocking waitpid()."""
    import _thread

    script = write(tmp_path, "loop.py", LOOP)
    runs = tmp_path / "runs"

    def interrupt_when_running():
        wait_for_metrics(runs, 2)
        _thread.interrupt_main()

    helper = threading.Thread(target=interrupt_when_running)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        training_run(script, runs_dir=runs, echo=False)
    helper.join()
    (folder,) = runs.iterdir()
    run = record.read_run(folder)
    assert run["status"] == "interrupted" and run["exit_code"] == -signal.SIGINT


def test_child_does_not_inherit_a_blocked_sigint(tmp_path, wait_for_metrics):
    """Hosts such as Ray block SIGINT in their threads; the script must still stop on it."""
    script = write(tmp_path, "loop.py", LOOP)
    runs = tmp_path / "runs"
    helper = threading.Thread(target=lambda: (wait_for_metrics(runs, 2), stop_all_runs()))
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        helper.start()
        run = training_run(script, runs_dir=runs, echo=False)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        helper.join()
    assert run["status"] == "interrupted" and run["exit_code"] == -signal.SIGINT


def test_terminal_ctrl_c_reaches_launcher_and_script_together(tmp_path, wait_for_metrics):
    """A terminal's Ctrl-C signals the whole foreground process group at once."""
    script = write(tmp_path, "loop.py", LOOP)
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from trainrun.runs.launch import training_run\n"
        "training_run(sys.argv[1], runs_dir=sys.argv[2], echo=False)\n"
    )
    launcher = subprocess.Popen(
        [sys.executable, "-c", code, str(script), str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    folder = wait_for_metrics(tmp_path / "runs", 3)
    os.killpg(launcher.pid, signal.SIGINT)
    launcher.communicate(timeout=30)
    run = record.read_run(folder)
    # -SIGINT, not -SIGTERM or -SIGKILL: the script stopped on the Ctrl-C itself
    assert run["status"] == "interrupted" and run["exit_code"] == -signal.SIGINT


def test_error_from_output():
    from trainrun.runs.launch._output import TRACEBACK_LINES, error_from_output

    assert error_from_output("") == (None, None)
    assert error_from_output("step 1\ntrain.py: error: Unknown flag\n\n") == (
        "train.py: error: Unknown flag",
        None,
    )
    chained = (
        "epoch 1\n"
        "Traceback (most recent call last):\n"
        '  File "t.py", line 4, in <module>\n'
        "KeyError: 'x'\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "t.py", line 6, in <module>\n'
        '    raise RuntimeError("no data")\n'
        "RuntimeError: no data\n"
    )
    error, tb = error_from_output(chained)
    assert error == "RuntimeError: no data"
    assert tb.startswith("Traceback") and "line 6" in tb and "KeyError" not in tb
    deep = "Traceback (most recent call last):\n" + '  File "x.py", line 1, in f\n' * 500
    error, tb = error_from_output(deep + "RecursionError: too deep\n")
    assert error == "RecursionError: too deep"
    assert len(tb.splitlines()) == TRACEBACK_LINES and tb.splitlines()[-1] == error


def test_script_that_cannot_start_is_recorded_as_failed(tmp_path, monkeypatch):
    script = write(tmp_path, "train.py", TRAIN)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "failed" and run["exit_code"] is None
    assert run["error"].startswith("Could not start the script: FileNotFoundError")


BEHAVES_AS_PLAIN = {
    "err.py": "import sys, pickle\nclass Foo: pass\n"
    "print(sys.argv[1:], sys.path[0], __name__, __file__, __spec__)\n"
    "print(pickle.loads(pickle.dumps(Foo())).__class__)\n"
    "print(sorted(vars()), type(__loader__).__name__)\n"
    "def f():\n    raise ValueError('boom')\nf()\n",
    "syntax.py": "x = 1\ndef (:\n",
    "exits.py": "import sys\nsys.exit('bad thing')\n",
    "ctrl_c.py": "import atexit\natexit.register(lambda: print('atexit ran'))\n"
    "raise KeyboardInterrupt\n",
}


@pytest.mark.parametrize("name", sorted(BEHAVES_AS_PLAIN))
def test_script_behaves_as_under_plain_python(tmp_path, name):
    # the Linux bootstrap (trainrun.runs.launch._child) must not show: same output, traceback, exit
    script = write(tmp_path, name, BEHAVES_AS_PLAIN[name])
    plain = subprocess.run(
        [sys.executable, str(script), "a", "--b=1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    run = training_run(script, args=["a", "--b=1"], runs_dir=tmp_path / "runs", echo=False)
    assert run["exit_code"] == plain.returncode
    assert (Path(run["run_dir"]) / "output.log").read_bytes() == plain.stdout
    assert b"_child" not in (Path(run["run_dir"]) / "output.log").read_bytes()
