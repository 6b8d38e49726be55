"""Estimator(model_fn=...): a user's torch module with trainrun's inputs, heads, model_dir, export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import ModelDirError

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)
K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
COLUMNS = [fc.numeric_column("x"), fc.indicator_column(K)]


class ResidualMLP(torch.nn.Module):
    """A top-level builder: in_features, units and params by keyword."""

    def __init__(self, in_features: int, units: int, width: int = 16) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(in_features, width)
        self.hidden = torch.nn.Linear(width, width)
        self.out = torch.nn.Linear(width, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(h + torch.relu(self.hidden(h)))


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) - 0.3
    return pd.DataFrame(
        {
            "x": x,
            "k": k,
            "churn": np.where(score > 0, "Yes", "No"),
            "count": rng.poisson(np.exp(0.5 * x + 0.5)),
            # label 0: x > 0, label 1: x <= 0, label 2: k == "b" (independent of x)
            "tags": [
                [0 if v > 0 else 1] + ([2] if c == "b" else []) for v, c in zip(x, k, strict=True)
            ],
        }
    )


def custom(model_dir, **kw):
    settings = {
        "model_fn": ResidualMLP,
        "head": trainrun.BinaryHead(label_vocabulary=["No", "Yes"]),
        "feature_columns": COLUMNS,
        "params": {"width": 16},
        "config": QUIET,
    }
    settings.update(kw)
    return trainrun.Estimator(model_dir=model_dir, **settings)


def test_estimator_with_model_fn_trains_like_a_canned_one(tmp_path):
    df = frame()
    est = custom(tmp_path)
    assert type(est).__name__ == "CustomEstimator" and isinstance(est, trainrun.Estimator)
    est.train(trainrun.input_fn(df, response="churn", epochs=20, batch_size=32))
    results = est.evaluate(trainrun.input_fn(df, response="churn", shuffle=False))
    assert results["auc"] > 0.95 and results["global_step"] == 260
    assert {"accuracy", "auc", "precision", "recall", "loss"} <= set(results)
    # a second estimator on the model_dir restores the module's weights
    again = custom(tmp_path)
    restored = again.evaluate(trainrun.input_fn(df, response="churn", shuffle=False))
    assert restored["auc"] == pytest.approx(results["auc"])
    with pytest.raises(ModelDirError, match="incompatible"):
        custom(tmp_path, params={"width": 8}).evaluate(
            trainrun.input_fn(df, response="churn", shuffle=False)
        )


def test_export_names_the_builder_and_loads_without_the_estimator(tmp_path):
    df = frame()
    est = custom(tmp_path / "m")
    est.train(trainrun.input_fn(df, response="churn", epochs=2))
    path = est.export(tmp_path / "export")
    loaded = trainrun.load_exported(path)
    assert loaded.spec["network"]["model_fn"].endswith(":ResidualMLP")
    got = loaded.predict(df.head(10))["probabilities"]
    want = est.predict_frame(trainrun.input_fn(df.head(10), shuffle=False))
    np.testing.assert_allclose(got[:, 1], want["probabilities_1"], rtol=1e-5)
    # a module instance trains, but an export cannot name it
    instance = custom(tmp_path / "i", model_fn=ResidualMLP(4, 1), params=None)
    instance.train(trainrun.input_fn(df, response="churn"), steps=2)
    with pytest.raises(ModelDirError, match="top-level function or nn.Module class"):
        instance.export(tmp_path / "nope")


def test_poisson_and_multilabel_heads_through_a_custom_model(tmp_path):
    df = frame()
    poisson = custom(tmp_path / "p", head=trainrun.PoissonRegressionHead())
    poisson.train(trainrun.input_fn(df, response="count", epochs=30, batch_size=32))
    results = poisson.evaluate(trainrun.input_fn(df, response="count", shuffle=False))
    keys = {"average_loss", "label/mean", "loss", "poisson_deviance", "prediction/mean"}
    assert set(results) == {*keys, "global_step"}
    assert results["prediction/mean"] == pytest.approx(df["count"].mean(), rel=0.15)
    preds = poisson.predict_frame(trainrun.input_fn(df.head(5), shuffle=False))
    assert (preds["predictions"] > 0).all()
    np.testing.assert_allclose(np.exp(preds["logits"]), preds["predictions"], rtol=1e-5)
    multi = custom(tmp_path / "m", head=trainrun.MultiLabelHead(3, thresholds=[0.3, 0.5]))
    multi.train(trainrun.input_fn(df, response="tags", epochs=20, batch_size=32))
    results = multi.evaluate(trainrun.input_fn(df, response="tags", shuffle=False))
    assert results["auc/0"] > 0.95 and results["auc/1"] > 0.95 and results["auc/2"] > 0.95
    assert {"precision/positive_threshold_0.3", "recall/positive_threshold_0.5"} <= set(results)


def test_mistakes_name_the_fix(tmp_path):
    df = frame()
    with pytest.raises(ValueError, match="'head' parameter of CustomEstimator must be a head"):
        custom(tmp_path, head="binary").train(trainrun.input_fn(df, response="churn"), steps=1)

    def wrong_width(in_features, units):
        return torch.nn.Linear(in_features, 3)

    est = custom(tmp_path / "w", model_fn=wrong_width, params=None)
    with pytest.raises(ValueError, match=r"logits of shape \[N, 1\].*\[128, 3\]"):
        est.train(trainrun.input_fn(df, response="churn"), steps=1)

    def no_units(in_features):
        return torch.nn.Linear(in_features, 1)

    with pytest.raises(TypeError, match="must accept the keyword arguments"):
        custom(tmp_path / "u", model_fn=no_units, params=None).train(
            trainrun.input_fn(df, response="churn"), steps=1
        )


def test_binary_head_thresholds_add_tf_metric_names():
    head = trainrun.BinaryClassHead(thresholds=[0.25, 0.75])
    logits = torch.tensor([[2.0], [0.0], [-2.0], [1.5]])
    labels = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    m = head.metrics(logits, labels, None, 0.5)
    # probabilities 0.88, 0.5, 0.12, 0.82
    assert m["precision/positive_threshold_0.25"] == pytest.approx(2 / 3)
    assert m["recall/positive_threshold_0.75"] == pytest.approx(0.5)
    assert m["accuracy/positive_threshold_0.75"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        trainrun.BinaryClassHead(thresholds=[1.5])
    from trainrun.modules.heads import head_from_config

    assert head_from_config(head.to_config()).thresholds == [0.25, 0.75]


def test_train_and_evaluate_and_runs_recording_come_for_free(tmp_path):
    from trainrun.runs import active, record

    df = frame()
    folder = record.new_run_dir(tmp_path / "runs")
    with active.activate(folder):
        est = custom(None)
        result = trainrun.train_and_evaluate(
            est,
            trainrun.TrainSpec(trainrun.input_fn(df, response="churn", epochs=None), max_steps=20),
            trainrun.EvalSpec(
                trainrun.input_fn(df, response="churn", shuffle=False),
                every_n_steps=10,
                exporters=[trainrun.LatestExporter()],
            ),
        )
    assert [e["global_step"] for e in result.evaluations] == [10, 20]
    assert est.model_dir_path == folder / "model"
    assert trainrun.load_exported(result.export_results[-1]).spec["network"]["type"] == "custom"
    assert any("loss" in r for r in record.read_metrics(folder))
