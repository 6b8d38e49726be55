"""BaselineClassifier / BaselineRegressor: tf's baselines (prior / mean, weighted), same keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import trainrun
from trainrun.exceptions import InputError

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)


def frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": (rng.random(n) < 0.3).astype(int),
            "label": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
            "t": rng.normal(5.0, 2.0, n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )


def test_classifier_learns_the_weighted_class_prior_with_the_binary_keys(tmp_path):
    df = frame()
    est = trainrun.BaselineClassifier(weight_column="w", model_dir=tmp_path, config=QUIET)
    est.train(trainrun.input_fn(df, features=["x"], response="y", epochs=None), steps=150)
    results = est.evaluate(trainrun.input_fn(df, features=["x"], response="y", shuffle=False))
    prior = np.average(df["y"], weights=df["w"])
    assert results["prediction/mean"] == pytest.approx(prior, abs=0.01)
    assert results["auc"] == pytest.approx(0.5)  # one score for every example
    linear = trainrun.LinearClassifier(
        feature_columns=[trainrun.numeric_column("x")], model_dir=tmp_path / "lin", config=QUIET
    )
    linear.train(trainrun.input_fn(df, features=["x"], response="y"), steps=2)
    lin_results = linear.evaluate(trainrun.input_fn(df, features=["x"], response="y"))
    assert set(results) == set(lin_results)
    # the same prediction for any features
    probs = est.predict_frame(trainrun.input_fn(pd.DataFrame({"x": [-5.0, 5.0]}), shuffle=False))
    assert probs["probabilities_1"].nunique() == 1


def test_multiclass_prior_regressor_mean_and_restore(tmp_path):
    df = frame()
    clf = trainrun.BaselineClassifier(
        n_classes=3, label_vocabulary=["a", "b", "c"], model_dir=tmp_path / "c", config=QUIET
    )
    clf.train(trainrun.input_fn(df, features=["x"], response="label", epochs=None), steps=150)
    probs = clf.predict_frame(trainrun.input_fn(df.head(1), features=["x"], shuffle=False))
    shares = df["label"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(
        probs[["probabilities_0", "probabilities_1", "probabilities_2"]].to_numpy()[0],
        shares,
        atol=0.02,
    )
    reg = trainrun.BaselineRegressor(weight_column="w", model_dir=tmp_path / "r", config=QUIET)
    reg.train(trainrun.input_fn(df, features=["x"], response="t", epochs=None), steps=150)
    first = reg.predict(trainrun.input_fn(df.head(1), features=["x"], shuffle=False))
    value = float(next(first)["predictions"][0])
    assert value == pytest.approx(np.average(df["t"], weights=df["w"]), abs=0.1)
    # a new estimator on the model_dir restores the learned bias
    again = trainrun.BaselineRegressor(weight_column="w", model_dir=tmp_path / "r", config=QUIET)
    out = again.predict_frame(trainrun.input_fn(df.head(2), features=["x"], shuffle=False))
    np.testing.assert_allclose(out["predictions"], value, rtol=1e-6)
    assert again.global_step_ == 150


def test_fit_predict_score(tmp_path):
    df = frame()
    est = trainrun.BaselineClassifier(config=QUIET).fit(df[["x"]], df["label"])
    assert list(est.classes_) == ["a", "b", "c"]
    assert set(est.predict(df[["x"]])) == {"c"}  # the majority class
    assert est.score(df[["x"]], df["label"]) == pytest.approx((df["label"] == "c").mean())
    with pytest.raises(InputError, match="no response column"):
        trainrun.BaselineRegressor(model_dir=tmp_path / "x", config=QUIET).train(
            trainrun.input_fn(df[["x"]]), steps=1
        )


@pytest.mark.parametrize(
    ("make", "response"),
    [
        (lambda d: trainrun.BaselineClassifier(model_dir=d, config=QUIET), "y"),
        (
            lambda d: trainrun.BaselineClassifier(
                n_classes=3, label_vocabulary=["a", "b", "c"], model_dir=d, config=QUIET
            ),
            "label",
        ),
        (lambda d: trainrun.BaselineRegressor(weight_column="w", model_dir=d, config=QUIET), "t"),
    ],
    ids=["binary", "multiclass", "regressor"],
)
def test_export_round_trip_predicts_what_the_estimator_predicts(make, response, tmp_path):
    df = frame()
    est = make(tmp_path / "model")
    est.train(trainrun.input_fn(df, features=["x"], response=response, epochs=None), steps=20)
    path = est.export(tmp_path / "export")
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "spec.json"]
    loaded = trainrun.load_exported(path)
    assert loaded.spec["network"] == {"type": "baseline", "units": est.network_.units}
    assert loaded.spec["estimator"] == type(est).__name__
    assert loaded.required_keys == ()  # a baseline reads no feature, only the row count
    mine = est.predict_frame(trainrun.input_fn(df.head(50), features=["x"], shuffle=False))
    theirs = loaded.predict_frame(df.head(50)[["x"]])
    assert list(mine.columns) == list(theirs.columns)
    np.testing.assert_array_equal(mine.to_numpy(), theirs.to_numpy())
    # any other columns do as well: the prediction is the learned prior / mean
    other = loaded.predict_frame(pd.DataFrame({"anything": np.arange(3.0)}))
    np.testing.assert_array_equal(other.to_numpy(), theirs.head(3).to_numpy())
    with pytest.raises(InputError, match="counts the rows"):
        loaded.predict({})


def test_export_after_fit_predicts_the_label_mean(tmp_path):
    df = frame()
    est = trainrun.BaselineRegressor(config=QUIET).fit(df[["x"]], df["t"])
    loaded = trainrun.load_exported(est.export(tmp_path / "export"))
    np.testing.assert_allclose(
        loaded.predict(df[["x"]])["predictions"][:, 0], est.predict(df[["x"]])
    )
