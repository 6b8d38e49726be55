"""The numbers tf.estimator gives, on its own test cases: weights set through a checkpoint,
then evaluate / train. Expected values are computed by hand from tf's documented formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun
from trainrun.exceptions import InputError
from trainrun.model_dir.checkpoints import save_checkpoint

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)


def set_weights(est, values: dict[str, list]) -> None:
    """Write a checkpoint holding ``values`` (every other weight zero), as tf's tests do."""
    est._build()
    state = {k: torch.zeros_like(v) for k, v in est.network_.state_dict().items()}
    for name, value in values.items():
        state[name] = torch.tensor(value, dtype=torch.float32).reshape(state[name].shape)
    save_checkpoint(
        est.model_dir_, 1, state, [o.state_dict() for o in est.optimizers_], est._meta()
    )
    est.network_ = None  # the next call restores the checkpoint, as a fresh process would


def sgd0(params):
    return torch.optim.SGD(params, lr=0.0)


# ---------------------------------------------------------------- per-dimension weights


def _three_dim_regressor(tmp_path):
    est = trainrun.LinearRegressor(
        feature_columns=[trainrun.numeric_column("x", shape=3)],
        label_dimension=3,
        weight_column="w",
        optimizer=sgd0,
        model_dir=tmp_path,
        config=QUIET,
        standardize_labels=False,  # tf's behaviour: logits are the predictions
    )
    set_weights(est, {"features.weight": np.eye(3).tolist(), "bias": [0.0, 0.0, 0.0]})
    return est


def _data(weights):
    return {
        "x": np.array([[45.0, 41.0, 44.0]]),
        "y": np.array([[35.0, 42.0, 45.0]]),
        "w": np.asarray(weights, dtype=np.float64),
    }


def _input(data):
    return trainrun.input_fn(data, features=["x"], response="y", shuffle=False)


def test_weights_per_label_dimension_follow_tf(tmp_path):
    est = _three_dim_regressor(tmp_path)
    # squared errors (45-35)^2, (41-42)^2, (44-45)^2 = 100, 1, 1; weights 1, .1, 1.5
    weighted = 100 * 1 + 1 * 0.1 + 1 * 1.5
    data = _data([[1.0, 0.1, 1.5]])
    result = est.evaluate(_input(data))
    assert result["loss"] == pytest.approx(weighted / 3)  # tf: 33.8666667
    assert result["loss"] == pytest.approx(33.8666667)
    assert result["average_loss"] == pytest.approx(weighted / 2.6)  # tf: 39.0769231
    assert result["average_loss"] == pytest.approx(39.0769231)
    # label/mean and prediction/mean weigh each value by its own weight
    assert result["label/mean"] == pytest.approx((35 + 4.2 + 67.5) / 2.6)
    assert result["prediction/mean"] == pytest.approx((45 + 4.1 + 66) / 2.6)
    # training sees the same loss (lr 0: the first step's loss is the checkpoint's)
    history = est.train(_input(data), steps=1)
    assert history.losses[0] == pytest.approx(33.8666667, rel=1e-6)


@pytest.mark.parametrize("weights", [[2.0], [[2.0]]], ids=["[N]", "[N,1]"])
def test_one_weight_per_example_weighs_every_label_dimension(tmp_path, weights):
    est = _three_dim_regressor(tmp_path)
    result = est.evaluate(_input(_data(weights)))
    assert result["loss"] == pytest.approx(2 * 102 / 3)
    assert result["average_loss"] == pytest.approx(102 / 3)


def test_weights_of_another_shape_are_refused(tmp_path):
    est = _three_dim_regressor(tmp_path)
    with pytest.raises(
        InputError, match=r"weight column must hold one weight per example.*\[1, 2\]"
    ):
        est.evaluate(_input(_data([[1.0, 2.0]])))
    clf = trainrun.LinearClassifier(
        feature_columns=[trainrun.numeric_column("x")], weight_column="w", config=QUIET,
        model_dir=tmp_path / "clf",
    )  # fmt: skip
    data = {"x": np.array([1.0, 2.0]), "y": np.array([0, 1]), "w": np.ones((2, 3))}
    with pytest.raises(InputError, match=r"\(\[N\]\) or per label dimension \(\[N, 1\]\)"):
        clf.train(trainrun.input_fn(data, features=["x"], response="y"), steps=1)


def test_a_numeric_weight_column_applies_its_normalizer_fn(tmp_path):
    est = trainrun.LinearRegressor(
        feature_columns=[trainrun.numeric_column("x")],
        weight_column=trainrun.numeric_column("w", normalizer_fn=lambda t: t - 1.0),
        optimizer=sgd0, model_dir=tmp_path, config=QUIET, standardize_labels=False,
    )  # fmt: skip
    set_weights(est, {"features.weight": [[1.0]], "bias": [0.0]})
    data = {
        "x": np.array([1.0, 2.0, 3.0]),
        "y": np.array([0.0, 0.0, 0.0]),
        "w": np.array([1, 2, 4]),
    }
    result = est.evaluate(trainrun.input_fn(data, features=["x"], response="y", shuffle=False))
    w = np.array([0.0, 1.0, 3.0])  # normalizer_fn(w) = w - 1
    err = np.array([1.0, 4.0, 9.0])
    assert result["loss"] == pytest.approx((w * err).sum() / 3)
    assert result["average_loss"] == pytest.approx((w * err).sum() / w.sum())


# ---------------------------------------------------------------- soft labels


def _bce(z, y):
    p = 1 / (1 + np.exp(-z))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_binary_classifiers_take_soft_labels(tmp_path):
    est = trainrun.LinearClassifier(
        feature_columns=[trainrun.numeric_column("age")], optimizer=sgd0,
        model_dir=tmp_path, config=QUIET,
    )  # fmt: skip
    set_weights(est, {"features.weight": [[2.0]], "bias": [-35.0]})
    # tf's test: logits = 17 * 2 - 35 = -1, label 0.8 -> loss 1.1132617
    one = {"age": np.array([17.0]), "y": np.array([0.8])}
    history = est.train(trainrun.input_fn(one, features=["age"], response="y"), steps=1)
    assert history.losses[0] == pytest.approx(1.1132617, rel=1e-6)
    ages = np.array([17.0, 18.5, 16.0, 20.0])
    soft = np.array([0.8, 0.3, 0.6, 0.1])
    data = {"age": ages, "y": soft}
    result = est.evaluate(trainrun.input_fn(data, features=["age"], response="y", shuffle=False))
    z = 2 * ages - 35  # -1, 2, -3, 5
    assert result["average_loss"] == pytest.approx(_bce(z, soft).mean())
    assert result["label/mean"] == pytest.approx(soft.mean())
    # metrics that compare classes threshold the labels at 0.5: hard labels 1, 0, 1, 0
    hard = (soft > 0.5).astype(float)
    predicted = (z > 0).astype(float)
    assert result["accuracy"] == pytest.approx((predicted == hard).mean())  # 0 of 4
    assert result["recall"] == 0.0 and result["auc"] == pytest.approx(0.0)


# ---------------------------------------------------------------- raw-scale regression


@pytest.fixture(scope="module")
def diabetes():
    from sklearn.datasets import load_diabetes

    d = load_diabetes(as_frame=True).frame
    order = np.random.default_rng(0).permutation(len(d))
    return d.iloc[order[:331]], d.iloc[order[331:]]


def _r2(truth, pred):
    truth, pred = np.asarray(truth), np.asarray(pred)
    return 1 - ((truth - pred) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()


def test_a_regressor_on_a_raw_scale_target_matches_ridge_at_the_docs_budget(tmp_path, diabetes):
    from sklearn.linear_model import Ridge

    train, test = diabetes
    feats = [c for c in train.columns if c != "target"]
    ridge = _r2(test["target"], Ridge().fit(train[feats], train["target"]).predict(test[feats]))
    cols = [trainrun.numeric_column(c) for c in feats]
    # The budget docs/estimators.md recommends for a few hundred rows: batch 32, 50 epochs.
    budget = trainrun.input_fn(train, response="target", batch_size=32, epochs=50, seed=0)
    scores = {}
    for standardize in (True, False):
        est = trainrun.LinearRegressor(
            feature_columns=cols, model_dir=tmp_path / str(standardize), config=QUIET,
            standardize_labels=standardize,
        )  # fmt: skip
        est.train(budget)
        pred = est.predict_frame(trainrun.input_fn(test[feats], shuffle=False))["predictions"]
        scores[standardize] = _r2(test["target"], pred)
    assert scores[True] >= ridge - 0.03, (scores, ridge)
    assert scores[False] < ridge - 0.2  # tf's behaviour: FTRL 0.2 on a target of mean ~150
    # The scaling lives in the checkpoint and the export; predictions in the target's units.
    est = trainrun.LinearRegressor(feature_columns=cols, model_dir=tmp_path / "True", config=QUIET)
    again = est.predict_frame(trainrun.input_fn(test[feats], shuffle=False))["predictions"]
    assert _r2(test["target"], again) == pytest.approx(scores[True])
    assert est.head_.label_mean[0] == pytest.approx(train["target"].mean(), rel=1e-5)
    exported = trainrun.load_exported(est.export(tmp_path / "export"))
    np.testing.assert_allclose(exported.predict(test[feats])["predictions"][:, 0], again, rtol=1e-5)
    metrics = est.evaluate(trainrun.input_fn(test, response="target", shuffle=False))
    assert metrics["label/mean"] == pytest.approx(test["target"].mean(), rel=1e-5)
    mse = ((np.asarray(test["target"]) - again) ** 2).mean()
    assert metrics["average_loss"] == pytest.approx(mse, rel=1e-4)


def test_training_after_few_steps_logs_a_warning(tmp_path, caplog):
    df = pd.DataFrame({"x": np.linspace(0, 1, 200), "y": np.linspace(0, 2, 200)})
    est = trainrun.LinearRegressor(
        feature_columns=[trainrun.numeric_column("x")], model_dir=tmp_path, config=QUIET
    )
    with caplog.at_level("WARNING", logger="trainrun"):
        est.train(trainrun.input_fn(df, response="y", batch_size=128, epochs=10))
    assert "Training ended after only 20 steps (10 epoch(s) of 200 rows" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="trainrun"):
        est.train(trainrun.input_fn(df, response="y", epochs=None), steps=5)  # asked for: quiet
    assert "Training ended" not in caplog.text


def test_a_warm_started_regressor_keeps_the_scaling_its_weights_were_trained_with(tmp_path):
    df = pd.DataFrame({"x": np.linspace(0, 1, 64)})
    df["y"] = 500 + 100 * df["x"]
    cols = [trainrun.numeric_column("x")]
    inp = trainrun.input_fn(df, response="y", batch_size=16, epochs=None, seed=0)
    test = trainrun.input_fn(df[["x"]], shuffle=False)
    for standardize in (False, True):
        src = trainrun.LinearRegressor(
            feature_columns=cols, model_dir=tmp_path / f"src{standardize}", config=QUIET,
            standardize_labels=standardize, optimizer="Adam",
        )  # fmt: skip
        src.train(inp, steps=30)
        before = src.predict_frame(test)["predictions"].to_numpy()
        # the new one asks for standardisation; the weights it starts from decide
        new = trainrun.LinearRegressor(
            feature_columns=cols, model_dir=tmp_path / f"new{standardize}", config=QUIET,
            warm_start_from=tmp_path / f"src{standardize}", optimizer=sgd0,
        )  # fmt: skip
        new.train(inp, steps=1)  # lr 0: the weights stay the warm-started ones
        after = new.predict_frame(test)["predictions"].to_numpy()
        np.testing.assert_allclose(after, before, rtol=1e-5)
        assert new.head_.scaled is standardize
