"""Every example end to end on tiny data: as a plain script and as a training run.

MNIST-format files are written here (a few hundred random images); the
regression runs on its real 50,000 points and must land within 0.01 of the
chapter's coefficients.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# examples, servers and clusters: left out of `make test-fast`
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# One torch thread per child: on a busy 2-core machine torch's thread pool makes these
# small models many times slower, and the thread count changes no result checked here.
THREADS = {"OMP_NUM_THREADS": "1"}


def run_script(name: str, *args: str, cwd: Path, env: dict | None = None, check: bool = True):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **THREADS, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def training_run(name: str, runs_dir: Path, **kw):
    from trainrun.runs.launch import training_run as launch

    kw["env"] = {**THREADS, **kw.get("env", {})}
    return launch(EXAMPLES / name, runs_dir=runs_dir, echo=False, **kw)


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory) -> Path:
    """Four gzip IDX files in the standard layout: 256 training and 64 test images."""
    folder = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for kind, n in (("train", 256), ("t10k", 64)):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        # images that carry their label (a bright column), so a little training helps
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        images[np.arange(n), :, labels * 2 + 4] = 255
        with gzip.open(folder / f"{kind}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{kind}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return folder


def event_tags(folder: Path) -> dict[str, set[str]]:
    """{'scalars'|'histograms'|'images'|'graph': tags} read back with TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    return {
        "scalars": set(tags["scalars"]),
        "histograms": set(tags["histograms"]),
        "images": set(tags["images"]),
        "graph": {"graph"} if tags["graph"] else set(),
    }


# ------------------------------------------------------------------ torch-only examples


def test_tensors_plain_and_as_a_run(tmp_path):
    out = run_script("tensors.py", cwd=tmp_path).stdout
    assert "var1: rank 0, shape (), dtype torch.float32" in out
    assert "var4: rank 1, shape (5,)" in out and "var5: rank 2, shape (3, 3)" in out
    assert re.search(r"dy/dw = 1\.0000 \(by hand 1\.0000\)", out)

    run = training_run("tensors.py", tmp_path / "runs", flags={"length": 3})
    assert run["status"] == "completed", run.get("error")
    assert run["flags"]["length"] == 3
    assert run["evaluation"]["var3"] == pytest.approx(2.4, abs=1e-6)
    assert "grad_w" in run["metrics"]


def test_regression_finds_the_chapters_coefficients(tmp_path):
    out = run_script("regression.py", cwd=tmp_path).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("Step ")]
    assert [int(ln.split(":")[0].split()[1]) for ln in lines] == list(range(0, 81, 10))
    beta0, beta1 = map(float, re.findall(r"beta\d=(-?[\d.]+)", lines[-1]))
    # the chapter: Step 80: beta0=0.8006, beta1=1.2983
    assert abs(beta0 - 0.80) < 0.01 and abs(beta1 - 1.30) < 0.01

    run = training_run("regression.py", tmp_path / "runs")
    assert run["status"] == "completed", run.get("error")
    assert abs(run["evaluation"]["beta0"] - 0.80) < 0.01
    assert abs(run["evaluation"]["beta1"] - 1.30) < 0.01
    from trainrun.runs.record import read_metrics

    history = read_metrics(run["run_dir"])
    assert [r["step"] for r in history] == list(range(0, 81, 10))
    assert history[-1]["loss"] < history[0]["loss"]


def test_regression_honours_the_step_cap(tmp_path):
    out = run_script("regression.py", "--n", "1000", cwd=tmp_path, env={"TRAINRUN_MAX_STEPS": "3"})
    assert out.stdout.splitlines()[-1].startswith("Step 3:")


def test_mnist_cnn_plain_and_as_a_run(tmp_path, tiny_mnist):
    args = ["--data-dir", str(tiny_mnist), "--epochs", "2", "--log-every", "1"]
    out = run_script("mnist_cnn.py", *args, cwd=tmp_path).stdout
    assert "Epoch 1, step 0: training accuracy=" in out and "Epoch 2, step 1:" in out
    assert re.search(r"Test accuracy=0\.\d{4}", out)
    assert event_tags(tmp_path / "logs" / "mnist_cnn")["scalars"] >= {
        "train/loss",
        "test/accuracy",
    }

    run = training_run(
        "mnist_cnn.py",
        tmp_path / "runs",
        flags={"data_dir": str(tiny_mnist), "epochs": 5},
        env={"TRAINRUN_MAX_STEPS": "3"},
    )
    assert run["status"] == "completed", run.get("error")
    assert run["evaluation"]["global_step"] == 3  # the cap stopped training
    assert 0.0 <= run["evaluation"]["accuracy"] <= 1.0
    # TensorBoard events went to the run's own tensorboard/ folder
    tags = event_tags(Path(run["run_dir"]) / "tensorboard")
    assert "test/accuracy" in tags["scalars"]


def test_mnist_cnn_names_the_missing_files(tmp_path):
    proc = run_script("mnist_cnn.py", "--data-dir", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "train-images-idx3-ubyte[.gz]" in proc.stderr
    assert "train-labels-idx1-ubyte[.gz]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_mnist_tensorboard_plain_and_as_a_run(tmp_path, tiny_mnist):
    args = ["--data-dir", str(tiny_mnist), "--epochs", "2", "--batch-size", "64"]
    out = run_script("mnist_tensorboard.py", *args, cwd=tmp_path).stdout
    assert re.search(r"Epoch 2/2: loss=[\d.]+ accuracy=[\d.]+ val_loss=[\d.]+ val_accuracy=", out)
    assert re.search(r"TensorBoard events: [\d.]+ KiB", out)
    tags = event_tags(tmp_path / "logs" / "mnist_tensorboard")
    assert tags["scalars"] >= {"loss/train", "loss/validation", "accuracy/train"}
    assert "0.weight" in tags["histograms"] and tags["graph"]
    assert not tags["images"]  # weight images are off by default

    run = training_run(
        "mnist_tensorboard.py",
        tmp_path / "runs",
        flags={"data_dir": str(tiny_mnist), "epochs": 2, "write_images": True},
        env={"TRAINRUN_MAX_STEPS": "2"},
    )
    assert run["status"] == "completed", run.get("error")
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run["metrics"])
    tags = event_tags(Path(run["run_dir"]) / "tensorboard")
    assert "accuracy/validation" in tags["scalars"] and "0.weight" in tags["images"]
    # the event folder stays small: a few hundred KiB for 2 epochs with images
    assert run["evaluation"]["event_bytes"] < 5_000_000


# ------------------------------------------------------------------ estimator examples


def test_churn_estimator_plain(tmp_path):
    proc = run_script(
        "churn_estimator.py", "--layer4", "0", cwd=tmp_path, env={"TRAINRUN_MAX_STEPS": "15"}
    )
    out = proc.stdout
    assert "wa_churn: 5,634 training rows, 1,409 test rows" in out
    for key in ("accuracy", "accuracy_baseline", "auc", "label/mean", "global_step"):
        assert re.search(rf"^{re.escape(key)} = ", out, re.M), key


def test_hyperparams_three_runs_table_and_reports(tmp_path):
    proc = run_script(
        "hyperparams.py",
        "--runs-dir", str(tmp_path / "runs"),
        "--reports-dir", str(tmp_path / "reports"),
        "--epochs", "1",
        cwd=tmp_path,
        env={"TRAINRUN_MAX_STEPS": "10", "CI": "1"},
    )  # fmt: skip
    out = proc.stdout
    assert out.count("completed in") == 3
    assert "ls_runs(order='eval_accuracy'): 3 runs" in out
    table = out.split("ls_runs(order='eval_accuracy'): 3 runs\n", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[1:]
    accuracies = [float(r.split()[1]) for r in rows]
    assert len(rows) == 3 and accuracies == sorted(accuracies, reverse=True)
    view = re.search(r"Best run \(.+\): (.+\.html)", out).group(1)
    comparison = re.search(r"Best two compared: (.+\.html)", out).group(1)
    assert Path(view).is_file() and Path(comparison).is_file()

    from trainrun.runs.store import ls_runs

    runs = ls_runs(tmp_path / "runs")
    assert set(runs["flag_activation"]) == {"relu", "tanh"}
    assert runs["eval_auc"].notna().all()
    # the history plot went into each run's plots/ folder
    assert all((Path(d) / "plots" / "history.png").is_file() for d in runs["run_dir"])
