"""Every estimator through the same contract: train, evaluate, predict, save, restore, export."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import trainrun
from trainrun.model_dir.checkpoints import list_checkpoints

NAMES = [
    "LinearClassifier",
    "LinearRegressor",
    "DNNClassifier",
    "DNNRegressor",
    "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor",
]

EVAL_KEYS = {
    "binary": {
        "accuracy", "accuracy_baseline", "auc", "auc_precision_recall", "average_loss",
        "label/mean", "loss", "precision", "prediction/mean", "recall", "global_step",
    },
    "multiclass": {"accuracy", "average_loss", "loss", "global_step"},
    "regression": {"average_loss", "label/mean", "loss", "prediction/mean", "global_step"},
}  # fmt: skip

PREDICT_KEYS = {
    "binary": {
        "logits",
        "logistic",
        "probabilities",
        "class_ids",
        "classes",
        "all_class_ids",
        "all_classes",
    },
    "multiclass": {
        "logits",
        "probabilities",
        "class_ids",
        "classes",
        "all_class_ids",
        "all_classes",
    },
    "regression": {"predictions"},
}


@pytest.mark.parametrize("name", NAMES)
def test_contract(name, tmp_path, frame, factories, train_input, eval_input):
    make, response = factories[name]
    est = make(tmp_path / "model")
    assert repr(est).startswith(f"{name}(")
    assert est.get_params()["model_dir"] == tmp_path / "model"

    history = est.train(train_input(frame, response, epochs=None), steps=12)
    assert "Trained for 12 steps" in repr(history)
    assert est.global_step_ == 12
    assert history.to_frame()["step"].tolist() == list(range(1, 13))

    results = est.evaluate(eval_input(frame, response))
    kind = est.head_.kind
    assert set(results) == EVAL_KEYS[kind]
    assert results["global_step"] == 12
    assert all(np.isfinite(v) for v in results.values())

    rows = list(est.predict(eval_input(frame, None)))
    assert len(rows) == len(frame)
    assert set(rows[0]) == PREDICT_KEYS[kind]
    table = est.predict_frame(eval_input(frame, None))
    assert len(table) == len(frame)

    # A new estimator on the same model_dir restores the weights and the global step.
    again = make(tmp_path / "model")
    table_again = again.predict_frame(eval_input(frame, None))
    assert again.global_step_ == 12
    np.testing.assert_array_equal(table.to_numpy(), table_again.to_numpy())

    # steps adds; max_steps is a total and does nothing once reached.
    again.train(train_input(frame, response, epochs=None), steps=3)
    assert again.global_step_ == 15
    again.train(train_input(frame, response, epochs=None), max_steps=15)
    assert again.global_step_ == 15
    again.train(train_input(frame, response, epochs=None), max_steps=17)
    assert again.global_step_ == 17
    assert list_checkpoints(tmp_path / "model")[-1].name == "ckpt-17.json"

    # The export predicts exactly what the estimator predicts.
    path = again.export(tmp_path / "export")
    exported = trainrun.load_exported(path)
    mine = again.predict_frame(eval_input(frame, None))
    # Same batch boundaries as the input_fn (100): then even vectorised sigmoid tails agree.
    theirs = exported.predict_frame(frame.drop(columns=[response]), batch_size=100)
    assert list(mine.columns) == list(theirs.columns)
    np.testing.assert_array_equal(mine.to_numpy(), theirs.to_numpy())


@pytest.mark.parametrize("kind", ["linear", "dnn"])
def test_learns_a_separable_problem(kind, tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    df["y"] = (df.a - 0.5 * df.b > 0).astype(int)
    cols = [trainrun.numeric_column("a"), trainrun.numeric_column("b")]
    cfg = trainrun.RunConfig(seed=3, progress=False)
    if kind == "linear":
        est = trainrun.LinearClassifier(feature_columns=cols, model_dir=tmp_path, config=cfg)
    else:
        est = trainrun.DNNClassifier(
            hidden_units=[16], feature_columns=cols, model_dir=tmp_path, config=cfg,
            optimizer=functools.partial(torch.optim.Adam, lr=0.01),  # a factory of params
        )  # fmt: skip
    est.train(trainrun.input_fn(df, response="y", batch_size=32, epochs=4, seed=0))
    results = est.evaluate(trainrun.input_fn(df, response="y", shuffle=False))
    assert results["auc"] > 0.95
    assert results["accuracy"] > 0.85


def test_streamed_csv_input(tmp_path, frame):
    """Files are read in chunks; train, evaluate and predict work on them as on frames."""
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    cols = [trainrun.numeric_column("x"), trainrun.indicator_column(
        trainrun.categorical_column_with_vocabulary_list("k", ["a", "b", "c"]))]  # fmt: skip
    est = trainrun.DNNClassifier(
        hidden_units=[4], feature_columns=cols, label_vocabulary=["No", "Yes"],
        model_dir=tmp_path / "m", config=trainrun.RunConfig(seed=0, progress=False),
    )  # fmt: skip
    est.train(
        trainrun.input_fn(path, features=["x", "k"], response="churn", chunk_size=64, epochs=None),
        steps=6,
    )
    results = est.evaluate(
        trainrun.input_fn(path, features=["x", "k"], response="churn", shuffle=False)
    )
    assert results["global_step"] == 6 and 0 <= results["auc"] <= 1
    from_file = est.predict_frame(
        trainrun.input_fn(path, features=["x", "k"], shuffle=False, chunk_size=64)
    )
    from_frame = est.predict_frame(trainrun.input_fn(frame, features=["x", "k"], shuffle=False))
    np.testing.assert_allclose(from_file["logits"], from_frame["logits"], rtol=1e-6, atol=1e-6)
