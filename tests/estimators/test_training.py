"""The loop and its callbacks, checkpoints on disk, TensorBoard events, and the run seam."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

import trainrun
import trainrun.feature_columns as fc
from trainrun.model_dir.checkpoints import list_checkpoints, load_checkpoint, save_checkpoint
from trainrun.training.callbacks import Callback, History, ProgressLogger
from trainrun.training.loop import TrainState, train_loop

X = fc.numeric_column("x")
K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])


def _run_loop(callbacks, n=25, max_steps=None, sync_every=4):
    state = TrainState(global_step=10, start_step=10, max_steps=max_steps)
    batches = (torch.full((3,), float(i)) for i in range(n))
    return train_loop(
        lambda b: b.mean(), batches, callbacks, state, batch_size=len, sync_every=sync_every
    )


def test_loop_history_and_stop():
    history = History()
    state = _run_loop([history], max_steps=30)
    assert state.global_step == 30 and state.examples == 60
    assert history.steps == list(range(11, 31))
    assert history.losses == [float(i) for i in range(20)]
    assert repr(history).startswith("Trained for 20 steps (global step 30) in ")
    frame = history.to_frame()
    assert list(frame.columns) == ["step", "loss"] and len(frame) == 20
    fig = history.plot()
    assert fig.axes[0].get_xlabel() == "step"

    class StopAtFive(Callback):
        def on_step_end(self, state):
            state.stop_training = state.steps_done >= 5

    history = History()
    _run_loop([history, StopAtFive()])
    assert history.steps_trained == 5 and len(history.losses) == 5


def test_progress_plain_lines():
    out = io.StringIO()
    _run_loop([ProgressLogger(every=10, stream=out)], n=25)
    lines = out.getvalue().splitlines()
    # every 10 steps of the global step (20, 30), then the partial interval at the end (35)
    assert [line.split()[1] for line in lines] == ["20", "30", "35"]
    assert "loss" in lines[0] and "examples/s" in lines[0]


def test_progress_live_line():
    out = io.StringIO()
    _run_loop([ProgressLogger(every=10, stream=out, live=True)], n=5)
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and "step 15" in text


def test_checkpoints_keep_last_n_and_optimizer_state(tmp_path):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=0.1)
    w.sum().backward()
    opt.step()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"w": w}, [opt.state_dict()], {"estimator": "T"}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-3.json", "ckpt-4.json"]
    assert not (tmp_path / "ckpt-1.safetensors").exists()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.global_step == 4 and ckpt.meta["estimator"] == "T"
    fresh = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=0.5)
    fresh.load_state_dict(ckpt.optimizer_states[0])
    assert fresh.param_groups[0]["lr"] == 0.1
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], opt.state[w]["exp_avg"])
    # nothing in the model directory is a pickle
    assert {p.suffix for p in tmp_path.iterdir()} <= {".json", ".safetensors"}


def test_resume_continues_and_save_steps(tmp_path, frame):
    cfg = trainrun.RunConfig(
        seed=0, progress=False, save_checkpoints_steps=4, keep_checkpoint_max=3
    )
    inp = trainrun.input_fn(
        frame, features=["x", "k"], response="cls", batch_size=50, seed=1, epochs=None
    )
    est = trainrun.DNNClassifier(
        hidden_units=[4], feature_columns=[X, fc.indicator_column(K)], n_classes=3,
        model_dir=tmp_path, config=cfg,
    )  # fmt: skip
    est.train(inp, steps=10)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "ckpt-4.json",
        "ckpt-8.json",
        "ckpt-10.json",
    ]
    meta = json.loads((tmp_path / "ckpt-10.json").read_text())
    assert meta["estimator"] == "DNNClassifier" and meta["params"]["hidden_units"] == [4]
    assert meta["columns"]["dnn"][1]["categorical_column"]["vocabulary_list"] == ["a", "b", "c"]
    before = est.evaluate(trainrun.input_fn(frame, response="cls", shuffle=False))
    again = trainrun.DNNClassifier(
        hidden_units=[4], feature_columns=[X, fc.indicator_column(K)], n_classes=3,
        model_dir=tmp_path, config=cfg,
    )  # fmt: skip
    after = again.evaluate(trainrun.input_fn(frame, response="cls", shuffle=False))
    assert after == before
    history = again.train(inp, steps=5)
    assert history.steps[0] == 11 and again.global_step_ == 15


def test_warm_start(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x"], response="target", seed=0)
    cfg = trainrun.RunConfig(seed=0, progress=False)
    first = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], model_dir=tmp_path / "a", config=cfg
    )
    first.train(inp, steps=5)
    warm = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], model_dir=tmp_path / "b",
        warm_start_from=tmp_path / "a", config=cfg,
    )  # fmt: skip
    test = trainrun.input_fn(frame, features=["x"], shuffle=False)
    # Same weights, but training starts again at step 0 with a fresh optimizer.
    np.testing.assert_array_equal(
        first.predict_frame(test).to_numpy(), warm.predict_frame(test).to_numpy()
    )
    warm.train(inp, steps=2)
    assert warm.global_step_ == 2


def test_tensorboard_events(tmp_path, frame):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = trainrun.RunConfig(seed=0, progress=False, save_summary_steps=2)
    est = trainrun.LinearClassifier(
        feature_columns=[X], label_vocabulary=["No", "Yes"], model_dir=tmp_path, config=cfg
    )
    est.train(trainrun.input_fn(frame, features=["x"], response="churn", batch_size=50), steps=6)
    est.evaluate(trainrun.input_fn(frame, features=["x"], response="churn"))
    train = EventAccumulator(str(tmp_path))
    train.Reload()
    assert {"loss", "examples_per_sec"} <= set(train.Tags()["scalars"])
    assert [e.step for e in train.Scalars("loss")] == [2, 4, 6]
    evals = EventAccumulator(str(tmp_path / "eval"))
    evals.Reload()
    assert "eval/auc" in evals.Tags()["scalars"]
    assert evals.Scalars("eval/accuracy")[0].step == 6


def test_records_into_an_active_run(tmp_path, frame, monkeypatch):
    from trainrun.runs import active, record

    run = record.new_run_dir(tmp_path / "runs")
    monkeypatch.setenv("TRAINRUN_RUN_DIR", str(run))
    cfg = trainrun.RunConfig(seed=0, progress=False, log_step_count_steps=3, save_summary_steps=3)
    est = trainrun.LinearClassifier(feature_columns=[X], label_vocabulary=["No", "Yes"], config=cfg)
    est.train(trainrun.input_fn(frame, features=["x"], response="churn", batch_size=40), steps=7)
    results = est.evaluate(trainrun.input_fn(frame, features=["x"], response="churn"))
    est.evaluate(trainrun.input_fn(frame, features=["x"], response="churn"), name="train")
    assert est.model_dir_path == run / "model"
    assert (run / "model" / "ckpt-7.json").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], "loss" in r) for r in rows] == [(3, True), (6, True), (7, True)]
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(results["accuracy"])
    assert evaluation["label/mean"] == pytest.approx(results["label/mean"])
    assert evaluation["global_step"] == 7
    assert "train/auc" in evaluation
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    monkeypatch.delenv("TRAINRUN_RUN_DIR")
    assert not active.is_active()


def test_ctrl_c_keeps_the_steps_done(tmp_path, frame):
    class CtrlC(Callback):
        def on_step_end(self, state):
            if state.global_step == 3:
                raise KeyboardInterrupt

    cfg = trainrun.RunConfig(seed=0, progress=False, num_threads=1)
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=cfg)
    inp = trainrun.input_fn(frame, features=["x"], response="target", batch_size=10)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        est.train(inp, steps=20, callbacks=[CtrlC()])
    assert torch.get_num_threads() == threads
    assert est.global_step_ == 3
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-3.json"]


def test_weights_change_loss_and_metrics(tmp_path, frame):
    cfg = trainrun.RunConfig(seed=0, progress=False)

    def fit(weight_column, where):
        est = trainrun.LinearClassifier(
            feature_columns=[X, K], label_vocabulary=["No", "Yes"], weight_column=weight_column,
            model_dir=tmp_path / where, config=cfg,
        )  # fmt: skip
        est.train(trainrun.input_fn(frame, response="churn", seed=0, batch_size=40), steps=5)
        return est.evaluate(trainrun.input_fn(frame, response="churn", shuffle=False))

    plain, weighted = fit(None, "plain"), fit("w", "weighted")
    assert weighted["label/mean"] != pytest.approx(plain["label/mean"])
    expected = np.average((frame["churn"] == "Yes").to_numpy(), weights=frame["w"].to_numpy())
    assert weighted["label/mean"] == pytest.approx(expected, rel=1e-5)


def test_max_steps_reached_skips_training(tmp_path, frame):
    est = trainrun.LinearRegressor(
        feature_columns=[X], model_dir=tmp_path, config=trainrun.RunConfig(progress=False)
    )
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    est.train(inp, max_steps=2)
    history = est.train(inp, max_steps=2)
    assert repr(history) == "History(no steps trained; global step 2)"
    assert history.to_frame().empty


def test_early_stopping():
    from trainrun.training.callbacks import EarlyStopping

    # losses fall for 20 steps, then stay flat: windows of 5 steps stop it 3 windows later
    state = TrainState(global_step=0, start_step=0, max_steps=None)
    losses = (torch.tensor(max(20.0 - i, 0.0)) for i in range(200))
    stopper = EarlyStopping(every=5, patience=3)
    train_loop(lambda b: b, losses, [stopper], state, batch_size=lambda b: 1, sync_every=5)
    assert stopper.stopped_at == state.global_step == 40
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        EarlyStopping(patience=0)
