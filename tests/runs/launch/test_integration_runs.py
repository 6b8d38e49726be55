"""In-process runs the integrations start through start_run when no run is active."""

import subprocess
import sys
import textwrap

import pytest

from trainrun.runs import active, record
from trainrun.runs.launch import _inprocess


@pytest.fixture(autouse=True)
def _no_run_left_active():
    active.deactivate()
    yield
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None


def _script(tmp_path, body):
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nfrom trainrun.runs.launch import _inprocess\nimport trainrun as tr\n"
        + textwrap.dedent(body)
    )
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if (p / "run.json").is_file()]
    return out, run_dir


@pytest.mark.parametrize(
    ("raise_", "status", "error"),
    [
        ("raise ValueError('bad data')", "failed", "ValueError: bad data"),
        ("raise KeyboardInterrupt", "interrupted", "KeyboardInterrupt"),
        ("pass", "completed", None),
    ],
)
def test_a_run_left_open_ends_with_the_process_outcome(tmp_path, raise_, status, error):
    out, run_dir = _script(
        tmp_path,
        f"""
        tr.log_metrics(step=1, loss=0.9)       # before the run: kept, then written into it
        _inprocess.ensure_run(object(), integration="test")
        tr.log_metrics(step=2, loss=0.5)
        {raise_}
        """,
    )
    run = record.read_run(run_dir)
    assert run["status"] == status, out.stderr
    assert [r["loss"] for r in record.read_metrics(run_dir)] == [0.9, 0.5]
    assert run["script"].endswith("train.py")
    assert (run_dir / "source" / "train.py").is_file()
    if error is None:
        assert run["error"] is None and run["exit_code"] == 0
    else:
        assert error in run["error"]
        assert "train.py" in run["traceback"]


def test_starting_a_run_does_not_first_tell_the_script_it_is_not_recorded(tmp_path):
    out, run_dir = _script(
        tmp_path,
        """
        _inprocess.ensure_run(object(), integration="test")
        tr.log_metrics(step=1, loss=0.5)
        """,
    )
    assert record.read_run(run_dir)["status"] == "completed", out.stderr
    assert "not recording" not in out.stderr


def test_the_same_owner_continues_and_another_one_starts_a_new_run(tmp_path):
    a, b = object(), object()
    first = _inprocess.ensure_run(a, runs_dir=tmp_path, integration="test")
    first.end()
    assert _inprocess.ensure_run(a, runs_dir=tmp_path, integration="test") is first
    assert record.read_json(first.run_dir / record.RUN_FILE)["status"] == "running"
    second = _inprocess.ensure_run(b, runs_dir=tmp_path, integration="test")
    assert second.run_dir != first.run_dir
    assert record.read_json(first.run_dir / record.RUN_FILE)["status"] == "completed"
    assert active.run_dir() == second.run_dir


def test_an_outside_run_is_used_and_nothing_is_started(tmp_path):
    outer = record.new_run_dir(tmp_path)
    with active.activate(outer):
        assert _inprocess.ensure_run(object(), runs_dir=tmp_path, integration="test") is None
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == [outer]


def test_a_finished_run_is_written_whole_and_never_becomes_active(tmp_path):
    folder = _inprocess.write_finished_run(
        tmp_path,
        integration="test",
        flags={"C": 0.1},
        evaluation={"mean_test_score": 0.8},
        metrics=[{"step": 0, "test_score": 0.7}, {"step": 1, "test_score": 0.9}],
        tags={"search": "abc"},
        duration=1.5,
    )
    run = record.read_run(folder)
    assert run["status"] == "completed" and run["flags"] == {"C": 0.1}
    assert run["tags"] == {"integration": "test", "in_process": "true", "search": "abc"}
    assert [r["test_score"] for r in record.read_metrics(folder)] == [0.7, 0.9]
    assert not active.is_active()


def test_an_unwritable_runs_folder_warns_and_training_goes_on(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _inprocess.ensure_run(object(), runs_dir=blocker / "runs", integration="test") is None
    assert "this training is not recorded" in capfd.readouterr().err
    assert not active.is_active()


def test_the_run_records_the_git_state_of_the_working_folder(tmp_path, monkeypatch):
    import shutil
    import subprocess as sp

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    sp.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("print(1)\n")
    sp.run([*git, "add", "train.py"], check=True)
    sp.run([*git, "commit", "-qm", "first"], check=True)
    head = sp.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    run = _inprocess.ensure_run(object(), runs_dir=repo / "runs", integration="test")
    run.end()
    state = record.read_json(run.run_dir / record.RUN_FILE)["git"]
    assert state["commit"] == head
    assert state["dirty"] is False  # the runs folder inside the repository does not count


def test_an_integration_run_captures_the_output_of_the_script(tmp_path):
    out, run_dir = _script(
        tmp_path,
        """
        _inprocess.ensure_run(object(), integration="test")
        print("epoch 1/1 - loss: 0.5", flush=True)
        """,
    )
    assert "epoch 1/1 - loss: 0.5" in out.stdout
    assert "epoch 1/1 - loss: 0.5" in (run_dir / "output.log").read_text()


def test_a_kept_run_stays_current_after_its_block_and_can_be_reopened(tmp_path):
    from trainrun import start_run

    script = tmp_path / "user_script.py"
    script.write_text("print(1)\n")
    with start_run(runs_dir=tmp_path / "runs", source=script, keep_current=True) as run:
        active.log_metrics(step=1, loss=0.5)
    assert run.status == "completed" and active.run_dir() == run.run_dir
    active.write_evaluation(loss=0.4)  # an evaluate() after fit(): lands in the ended run
    info = record.read_run(run.run_dir)
    assert info["status"] == "completed" and info["evaluation"] == {"loss": 0.4}
    assert info["script"] == str(script) and (run.run_dir / "source" / "user_script.py").is_file()
    run.reopen()
    assert record.read_run(run.run_dir)["status"] == "running"
    run.end()
    assert record.read_run(run.run_dir)["status"] == "completed"
