"""train_and_evaluate, early stopping on evaluation metrics, exporters, on small real models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun
from trainrun.training.exporters import export_folders

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=True)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    noisy = 1.5 * x + np.where(k == "a", 1.0, 0.0) + rng.normal(scale=1.0, size=n)
    return pd.DataFrame({"x": x, "k": k, "y": (noisy > 0).astype(int)})


COLS = [
    trainrun.numeric_column("x"),
    trainrun.indicator_column(trainrun.categorical_column_with_vocabulary_list("k", list("abc"))),
]


def classifier(model_dir, **kw):
    return trainrun.DNNClassifier(
        hidden_units=[8], feature_columns=COLS, model_dir=model_dir, config=QUIET, **kw
    )


def specs(max_steps=60, every=20, hooks=(), exporters=(), epochs=None):
    train = trainrun.input_fn(frame(), response="y", batch_size=32, epochs=epochs, seed=1)
    test = trainrun.input_fn(frame(200, seed=5), response="y", shuffle=False)
    return (
        trainrun.TrainSpec(train, max_steps=max_steps, hooks=list(hooks)),
        trainrun.EvalSpec(test, every_n_steps=every, exporters=list(exporters)),
    )


def test_evaluations_alternate_with_training_and_are_kept(tmp_path):
    est = classifier(tmp_path)
    best = trainrun.BestExporter(metric="auc", exports_to_keep=2)
    latest = trainrun.LatestExporter(exports_to_keep=2)
    final = trainrun.FinalExporter()
    result = trainrun.train_and_evaluate(est, *specs(exporters=[best, latest, final]))
    steps = [e["global_step"] for e in result.evaluations]
    assert steps == [20, 40, 60]
    eval_result, exports = result  # tf's (eval_result, export_results)
    assert eval_result is result.evaluations[-1] and eval_result["global_step"] == 60
    # each evaluation ran on that step's checkpoint: re-evaluating it gives the same numbers
    ckpt20 = tmp_path / "ckpt-20.json"
    again = est.evaluate(
        trainrun.input_fn(frame(200, seed=5), response="y", shuffle=False), checkpoint_path=ckpt20
    )
    assert again["auc"] == pytest.approx(result.evaluations[0]["auc"])
    assert again["global_step"] == 20
    # the latest exporter kept the newest two; the final one exported once, at the end
    assert [p.name for p in export_folders(tmp_path / "export" / "latest_exporter")] == ["40", "60"]
    assert [p.name for p in export_folders(tmp_path / "export" / "final_exporter")] == ["60"]
    # the best exporter kept the exports of the two best AUCs, each recording its evaluation
    kept = export_folders(tmp_path / "export" / "best_exporter")
    aucs = sorted((e["auc"] for e in result.evaluations), reverse=True)
    stored = [json.loads((p / "spec.json").read_text())["eval_result"]["auc"] for p in kept]
    assert 1 <= len(kept) <= 2 and set(stored) <= set(aucs[:2])
    assert any(p.parent.name == "final_exporter" for p in exports)
    # the evaluation history is in the model directory's TensorBoard eval events
    assert list((tmp_path / "eval").glob("events.out.tfevents.*"))
    frame_ = result.to_frame()
    assert list(frame_["global_step"]) == [20, 40, 60]
    fig = result.plot("auc")
    assert len(fig.axes) == 2


def test_stop_if_no_increase_hook_stops_on_an_evaluation_metric(tmp_path):
    est = classifier(tmp_path, optimizer=lambda p: torch.optim.SGD(p, lr=0.0))  # never improves
    hook = trainrun.stop_if_no_increase_hook(est, "auc", max_steps_without_increase=20)
    result = trainrun.train_and_evaluate(est, *specs(max_steps=500, every=10, hooks=[hook]))
    # best at step 10; no increase by step 30 (20 steps later): stopped there
    assert hook.stopped_at == 30 and est.global_step_ == 30
    assert [e["global_step"] for e in result.evaluations] == [10, 20, 30]


def test_stop_if_no_decrease_hook_waits_for_min_steps(tmp_path):
    est = classifier(tmp_path, optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    hook = trainrun.stop_if_no_decrease_hook(est, "loss", 10, min_steps=40)
    trainrun.train_and_evaluate(est, *specs(max_steps=500, every=10, hooks=[hook]))
    assert hook.stopped_at == 40


def test_early_stopping_can_watch_an_evaluation_metric(tmp_path):
    est = classifier(tmp_path, optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    stop = trainrun.EarlyStopping(monitor="val_auc", patience=2)
    assert stop.mode == "max"
    trainrun.train_and_evaluate(est, *specs(max_steps=500, every=10, hooks=[stop]))
    # first evaluation sets the best, the next two do not beat it
    assert stop.stopped_at == 30
    with pytest.raises(trainrun.InputError, match="'nope', which evaluate"):
        stop2 = trainrun.EarlyStopping(monitor="val_nope")
        trainrun.train_and_evaluate(classifier(tmp_path / "b"), *specs(hooks=[stop2]))


def test_evaluations_inside_a_run_are_logged_as_val_metrics(tmp_path):
    from trainrun.runs import active, record

    folder = record.new_run_dir(tmp_path / "runs")
    with active.activate(folder):
        est = classifier(None)
        trainrun.train_and_evaluate(est, *specs(max_steps=40, every=20))
    rows = [r for r in record.read_metrics(folder) if "val_auc" in r]
    assert [r["step"] for r in rows] == [20, 40]
    assert {"val_loss", "val_accuracy", "val_label_mean"} <= set(rows[0])


def test_specs_check_their_arguments():
    with pytest.raises(ValueError, match="max_steps to be a positive int"):
        trainrun.TrainSpec(lambda: None, max_steps=0)
    with pytest.raises(ValueError, match="throttle_secs to be a number of seconds"):
        trainrun.EvalSpec(lambda: None, throttle_secs=-1)
    with pytest.raises(ValueError, match="BestExporter / LatestExporter"):
        trainrun.EvalSpec(lambda: None, exporters=["best"])
    with pytest.raises(ValueError, match="distinct names"):
        trainrun.EvalSpec(lambda: None, exporters=[trainrun.LatestExporter()] * 2)
    with pytest.raises(ValueError, match="exports_to_keep"):
        trainrun.BestExporter(exports_to_keep=0)


@pytest.mark.slow
def test_the_churn_example_stops_early_and_scores_its_best_export(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "churn_train_and_evaluate.py"
    done = subprocess.run(
        [sys.executable, str(script), "--eval_every", "50", "--patience_steps", "100",
         "--max_steps", "600", "--model_dir", str(tmp_path / "model")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "wa_churn: 4,226 training, 1,408 validation, 1,409 test rows" in out
    assert "best validation auc" in out and "test auc = 0." in out
    assert (tmp_path / "train_and_evaluate.png").stat().st_size > 10_000
    kept = export_folders(tmp_path / "model" / "export" / "best_exporter")
    assert len(kept) == 1
