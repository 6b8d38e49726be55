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
    active.write_run_metadata("nonsense", {})
    active.write_run_metadata("metrics", 42)
    active.log_metrics(time=1.0, loss=5)
    active.save_plot("not a figure")
    err = capsys.readouterr().err
    assert err.count("could not write metrics") == 1
    assert "unknown kind" in err and "ignores a metric named 'time'" in err
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
