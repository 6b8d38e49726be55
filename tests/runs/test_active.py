"""The active run: writing into it, keeping values without it, never raising."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainrun.runs import active, record


@pytest.fixture(autouse=True)
def _no_run(monkeypatch):
    monkeypatch.delenv("TRAINRUN_RUN_DIR", raising=False)
    active.deactivate()
    # start each test with nothing pending
    active._pending.update(metrics=[], evaluation={}, flags=None, properties={})
    active._auto_step = -1
    yield
    active.deactivate()


def test_no_active_run_is_safe():
    assert active.run_dir() is None and not active.is_active()
    assert active.plots_dir() is None and active.artifacts_dir() is None
    assert active.model_dir() is None and active.tensorboard_dir() is None
    assert active.save_plot(object()) is None
    active.log_metrics(step=1, loss=0.5)
    active.write_evaluation({"accuracy": 0.9}, auc=0.8)
    active.write_run_metadata("properties", {"dataset": "churn"})


def test_values_kept_until_a_run_starts(tmp_path):
    active.log_metrics(loss=1.0)
    active.log_metrics(loss=0.5)
    active.write_evaluation(accuracy=0.7)
    active.write_run_metadata("flags", {"dropout": 0.1})
    active.write_run_metadata("properties", {"dataset": "churn"})
    folder = record.new_run_dir(tmp_path)
    record.write_json(folder / "run.json", {"status": "completed"})
    with active.activate(folder) as path:
        assert path == folder.resolve()
        active.log_metrics(loss=0.25)
    rows = record.read_metrics(folder)
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    run = record.read_run(folder)
    assert run["evaluation"] == {"accuracy": 0.7}
    assert run["flags"] == {"dropout": 0.1}
    assert run["properties"] == {"dataset": "churn"}
    assert run["status"] == "completed"  # properties merged, not replacing run.json


def test_env_var_run(tmp_path, monkeypatch):
    folder = record.new_run_dir(tmp_path)
    monkeypatch.setenv("TRAINRUN_RUN_DIR", str(folder))
    assert active.run_dir() == folder and active.is_active()
    assert active.model_dir() == folder / "model"
    assert active.tensorboard_dir() == folder / "tensorboard"
    assert active.artifacts_dir() == folder / "artifacts"
    active.log_metrics(step=5, loss=0.3, acc=0.8)
    active.log_metrics(loss=0.2)  # continues from the last step
    active.write_evaluation({"accuracy": 0.9})
    active.write_evaluation(auc=0.95)
    active.write_run_metadata("metrics", {"loss": [0.1, 0.05], "step": [10, 11]})
    active.write_run_metadata("evaluation", {"label/mean": 0.3})
    steps = [r["step"] for r in record.read_metrics(folder)]
    assert steps == [5, 6, 10, 11]
    assert record.read_json(folder / "evaluation.json") == {
        "accuracy": 0.9,
        "auc": 0.95,
        "label/mean": 0.3,
    }


def test_save_plot(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    folder = record.new_run_dir(tmp_path)
    monkeypatch.setenv("TRAINRUN_RUN_DIR", str(folder))
    fig = Figure()
    fig.add_subplot().plot([1, 2, 3])
    first = active.save_plot(fig)
    second = active.save_plot(fig)
    named = active.save_plot(fig, "../../escape")
    assert first.name == "plot.png" and second.name == "plot-2.png"
    assert named == folder / "plots" / "escape.png"  # kept inside plots/
    assert all(p.stat().st_size > 0 for p in (first, second, named))


def test_problems_warn_once_and_never_raise(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRAINRUN_RUN_DIR", str(tmp_path / "gone"))
    active.log_metrics(loss=1)
    active.log_metrics(loss=2)
    err = capsys.readouterr().err
    assert err.count("does not exist") == 1
    folder = record.new_run_dir(tmp_path)
    monkeypatch.setenv("TRAINRUN_RUN_DIR", str(folder))
    (folder / "metrics.jsonl").mkdir()  # appending now fails with an OSError
    active.log_metrics(loss=3)
    active.log_metrics(loss=4)
    active.write_run_metadata("no such kind!", {})
    active.write_run_metadata("metrics", 42)
    active.log_metrics(time=1.0, loss=5)
    active.save_plot("not a figure")
    err = capsys.readouterr().err
    assert err.count("could not write metrics") == 1
    assert "kind must be one of" in err and "ignores a metric named 'time'" in err
    assert "needs a matplotlib Figure" in err


def test_in_child_process_with_warnings_as_errors(tmp_path):
    """A script run with -W error still never sees an exception from a broken run folder."""
    code = (
        "from trainrun.runs import active\n"
        "active.log_metrics(loss=1)\n"
        "active.write_evaluation(acc=1)\n"
        "print('alive')\n"
    )
    env = {"TRAINRUN_RUN_DIR": str(tmp_path / "missing"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "alive"
    assert "trainrun: warning" in out.stderr


def test_one_bad_metric_does_not_cost_the_row(tmp_path, capsys):
    np = pytest.importorskip("numpy")
    folder = record.new_run_dir(tmp_path)
    record.write_json(folder / "run.json", {"status": "completed"})
    active.log_metrics(step=0, loss=np.float32(0.5), seen=np.array([3]))  # kept until the run
    with active.activate(folder):
        active.log_metrics(step=1, loss=np.float64(0.25), weights=np.array([1.0, 2.0]), n=2)
    rows = record.read_metrics(folder)
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 0.5), (1, 0.25)]
    assert rows[0]["seen"] == 3 and rows[1]["n"] == 2 and "weights" not in rows[1]
    err = capsys.readouterr().err
    assert "skipped the metric 'weights'" in err and "array([1., 2.])" in err


# ---------------------------------------------------------------- start_run: in-process runs


def test_start_run_records_a_complete_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with active.start_run(flags={"lr": 0.1, "units": 3}, tags={"who": "me"}) as run:
        print("inside the block", run.flags["lr"])
        active.log_metrics(step=0, loss=1.0)
        active.write_evaluation(accuracy=0.9)
        (tmp_path / "model.txt").write_text("weights")
    assert run.status == "completed" and "inside the block" in capsys.readouterr().out
    got = record.read_run(run.run_dir)
    assert got["status"] == "completed" and got["in_process"] is True
    assert got["flags"] == {"lr": 0.1, "units": 3}
    assert got["declared_flags"]["units"]["type"] == "integer"
    assert got["metrics"] == {"loss": 1.0} and got["evaluation"] == {"accuracy": 0.9}
    assert got["tags"] == {"who": "me"} and got["end"] and got["packages"]
    assert "inside the block 0.1" in (run.run_dir / "output.log").read_text()
    assert (run.run_dir / "source" / "test_active.py").is_file()  # the calling file
    assert (run.run_dir / "artifacts" / "model.txt").read_text() == "weights"
    assert got["artifacts"]["files"] == ["model.txt"]
    assert not active.is_active()  # the block's end deactivates it


def test_start_run_records_failed_and_interrupted_blocks(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError), active.start_run(runs_dir=runs, artifacts=False) as failed:
        raise ValueError("diverged")
    got = record.read_run(failed.run_dir)
    assert got["status"] == "failed" and got["error"] == "ValueError: diverged"
    assert "raise ValueError" in got["traceback"]
    with pytest.raises(KeyboardInterrupt), active.start_run(runs_dir=runs) as stopped:
        raise KeyboardInterrupt
    assert record.read_run(stopped.run_dir)["status"] == "interrupted"
    run = active.start_run(runs_dir=runs, capture_output=False)
    assert record.read_run(run.run_dir)["status"] == "running"  # this process is alive
    run.end()
    assert record.read_run(run.run_dir)["status"] == "completed"


def test_start_run_inside_a_run_is_refused(tmp_path):
    from trainrun.exceptions import FlagError

    with active.start_run(runs_dir=tmp_path / "runs", artifacts=False):
        with pytest.raises(FlagError, match="already recording"):
            active.start_run(runs_dir=tmp_path / "runs")


def test_open_figures_land_in_plots(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    with active.start_run(runs_dir=tmp_path / "runs", artifacts=False) as run:
        plt.figure()
        plt.plot([1, 2, 3])
    plt.close("all")
    assert [p.suffix for p in (run.run_dir / "plots").iterdir()] == [".png"]


# ---------------------------------------------------------------- python train.py

PLAIN = """\
import sys
from trainrun import flags, log_metrics
FLAGS = flags(lr=0.1)
log_metrics(step=0, loss=0.5)
print("trained", flush=True)
if "--fail" in sys.argv:
    sys.exit(3)
"""


def _python(tmp_path, *args, **env):
    script = tmp_path / "train.py"
    script.write_text(PLAIN)
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TRAINRUN_")}
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_plain_python_says_once_that_it_is_not_recording(tmp_path):
    proc = _python(tmp_path)
    assert proc.returncode == 0 and "trained" in proc.stdout
    assert proc.stderr.count("trainrun: not recording") == 1
    assert "TRAINRUN_RECORD=1" in proc.stderr and not (tmp_path / "runs").exists()
    assert _python(tmp_path, TRAINRUN_RECORD="0").stderr == ""


def test_trainrun_record_makes_a_plain_script_record_itself(tmp_path):
    proc = _python(tmp_path, "--lr", "0.2", TRAINRUN_RECORD="1")
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    got = record.read_run(folder)
    assert got["status"] == "completed" and got["flags"] == {"lr": 0.2}
    assert got["metrics"] == {"loss": 0.5} and "trained" in (folder / "output.log").read_text()
    proc = _python(tmp_path, "--", "--fail", TRAINRUN_RECORD="1", TRAINRUN_RUNS_DIR="other")
    assert proc.returncode == 3
    (folder,) = (tmp_path / "other").iterdir()
    got = record.read_run(folder)
    assert got["status"] == "failed" and got["exit_code"] == 3


def test_a_project_setting_asks_for_recording(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.trainrun]\nrecord = true\nruns_dir = "recorded"\n'
    )
    proc = _python(tmp_path)
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "recorded").iterdir()
    assert record.read_run(folder)["status"] == "completed"
    assert _python(tmp_path, TRAINRUN_RECORD="0").returncode == 0
    assert len(list((tmp_path / "recorded").iterdir())) == 1  # the variable wins


def test_notebook_cells_are_the_source_of_an_in_process_run(tmp_path, monkeypatch):
    from trainrun.runs.launch import _inprocess

    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": []}')

    class Shell:  # what IPython's get_ipython() gives: the cells typed so far
        user_ns = {"In": ["", "import trainrun", "x = 1\nprint(x)"], "__session__": str(notebook)}

    monkeypatch.setattr(_inprocess, "_ipython", lambda: Shell())
    with active.start_run(runs_dir=tmp_path / "runs", artifacts=False) as run:
        pass
    source = run.run_dir / "source"
    assert (source / "notebook.py").read_text() == (
        "# In[1]:\nimport trainrun\n\n# In[2]:\nx = 1\nprint(x)\n\n"
    )
    assert (source / "analysis.ipynb").read_text() == '{"cells": []}'
    assert record.read_run(run.run_dir)["script"] == "<notebook>"


def test_an_in_process_run_captures_output_at_the_file_descriptors(tmp_path):
    script = tmp_path / "block.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "import trainrun as tr\n"
        "with tr.start_run(runs_dir='runs', artifacts=False) as run:\n"
        "    print('python print', flush=True)\n"
        "    os.system('echo from a shell')\n"
        "    subprocess.run([sys.executable, '-c', 'import sys; sys.stderr.write(\"child\\\\n\")'])\n"
        "    os.write(1, b'raw fd write\\n')\n"
        "print('after the block')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("TRAINRUN_")}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "python print" in proc.stdout and "raw fd write" in proc.stdout  # still shown
    assert "child" in proc.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    log = (folder / "output.log").read_text()
    for line in ("python print", "from a shell", "child", "raw fd write"):
        assert line in log
    assert "after the block" not in log
