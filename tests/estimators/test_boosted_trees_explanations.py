"""BoostedTrees' experimental_predict_with_explanations (tf's directional feature contributions).

The oracles: the contributions add up to the model's own prediction; in logit units they
are XGBoost's own ``approx_contribs`` (Saabas' method); a one-split model's are worked out
by hand from the tree LightGBM dumps.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lightgbm")
pytest.importorskip("xgboost")

from tests.estimators.test_boosted_trees_lightgbm import (  # noqa: E402
    COLUMNS,
    classifier,
    fixed,
    frame,
    regressor,
)

import trainrun  # noqa: E402
from trainrun.exceptions import NotTrainedError, UsageError  # noqa: E402

ENGINES = ["lightgbm", "xgboost"]


def explain(est, df, **kw):
    return list(est.experimental_predict_with_explanations(fixed(df), **kw))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_classifier_s_contributions_add_up_to_its_probability(tmp_path, engine):
    df = frame()
    df.loc[df.index[::17], "city"] = "elsewhere"  # out of the vocabulary: its default branch
    columns = COLUMNS
    est = classifier(tmp_path, columns=columns, engine=engine)
    est.train(fixed(df, "churn"))
    examples = explain(est, df)
    assert len(examples) == len(df)
    names = [c.name for c in columns]
    for ex in examples:
        assert sorted(ex["dfc"]) == sorted(names)  # one entry per feature column
        sizes = [abs(v) for v in ex["dfc"].values()]
        assert sizes == sorted(sizes, reverse=True)  # largest first, as tf's OrderedDict
    assert len({ex["bias"] for ex in examples}) == 1  # the same for every example
    assert 0 < examples[0]["bias"] < 1
    total = np.array([ex["bias"] + sum(ex["dfc"].values()) for ex in examples])
    p1 = np.array([ex["probabilities"][1] for ex in examples])
    np.testing.assert_allclose(total, p1, atol=1e-6)
    # the predictions are predict()'s own, and x (the strongest feature) moves most
    frame_out = est.predict_frame(fixed(df))
    np.testing.assert_array_equal(p1, frame_out["probabilities_1"].to_numpy())
    share = np.mean([abs(ex["dfc"]["x"]) for ex in examples])
    assert share > np.mean([abs(ex["dfc"]["city"]) for ex in examples])
    assert all(set(ex) == {*frame_keys(est), "dfc", "bias"} for ex in examples[:3])


def frame_keys(est):
    return est.head_.prediction_keys


@pytest.mark.parametrize("engine", ENGINES)
def test_a_regressor_s_contributions_add_up_to_its_prediction(tmp_path, engine):
    df = frame()
    est = regressor(tmp_path, engine=engine, weight_column="w", center_bias=True)
    est.train(fixed(df, "target"))
    examples = explain(est, df, predict_keys=["predictions"])
    assert set(examples[0]) == {"predictions", "dfc", "bias"}  # dfc and bias always come
    total = np.array([ex["bias"] + sum(ex["dfc"].values()) for ex in examples])
    pred = np.array([ex["predictions"][0] for ex in examples])
    np.testing.assert_allclose(total, pred, atol=1e-4 * np.abs(pred).max())
    # the bias is the trees' weighted mean output: near the weighted label mean
    mean = np.average(df["target"], weights=df["w"])
    assert abs(examples[0]["bias"] - mean) < 0.5 * df["target"].std()


#: Two numeric columns: the matrix XGBoost is given by hand is x and age as they are.
TWO = [trainrun.numeric_column("x"), trainrun.numeric_column("age")]


def approx_contribs(est, df):
    """XGBoost's own Saabas contributions in logit units: x, age, then the bias."""
    import xgboost as xgb

    d = xgb.DMatrix(df[["x", "age"]].to_numpy(np.float32), feature_names=est.features_.names)
    return est.booster_.predict(d, pred_contribs=True, approx_contribs=True)


def test_in_logit_units_they_are_xgboost_s_own_approx_contribs(tmp_path):
    df = frame()
    est = regressor(tmp_path, columns=TWO, engine="xgboost", n_trees=25, max_depth=4)
    est.train(fixed(df, "target"))
    examples = explain(est, df)
    ours = np.array([[ex["dfc"]["x"], ex["dfc"]["age"]] for ex in examples])
    want = approx_contribs(est, df)
    scale = np.abs(want).max()
    np.testing.assert_allclose(ours, want[:, :2], atol=2e-6 * scale)
    np.testing.assert_allclose(examples[0]["bias"], want[0, 2], atol=2e-6 * scale)


def test_a_classifier_s_steps_are_sigmoid_differences_of_xgboost_s_logit_contribs(tmp_path):
    # one tree of one split: the walk is bias -> bias + delta, in probability units
    df = frame()
    est = classifier(tmp_path, columns=TWO, engine="xgboost", n_trees=1, max_depth=1)
    est.train(fixed(df, "churn"))
    examples = explain(est, df)
    logit = approx_contribs(est, df)
    b, delta = logit[:, 2], logit[:, 0] + logit[:, 1]
    got = np.array([sum(ex["dfc"].values()) for ex in examples])
    np.testing.assert_allclose(got, _sigmoid(b + delta) - _sigmoid(b), atol=1e-6)
    np.testing.assert_allclose(examples[0]["bias"], _sigmoid(b[0]), atol=1e-6)


def test_a_lightgbm_stump_worked_out_by_hand(tmp_path):
    df = frame()
    est = regressor(tmp_path, columns=TWO, n_trees=1, max_depth=1, learning_rate=1.0)
    est.train(fixed(df, "target"))
    tree = est.booster_.dump_model()["tree_info"][0]["tree_structure"]
    left, right = tree["left_child"], tree["right_child"]
    split = ["x", "age"][tree["split_feature"]]
    cover = left["leaf_weight"] + right["leaf_weight"]
    root = (
        left["leaf_value"] * left["leaf_weight"] + right["leaf_value"] * right["leaf_weight"]
    ) / cover
    examples = explain(est, df)
    goes_left = df[split].to_numpy() <= tree["threshold"]
    leaf = np.where(goes_left, left["leaf_value"], right["leaf_value"])
    np.testing.assert_allclose([ex["dfc"][split] for ex in examples], leaf - root, rtol=1e-9)
    other = "age" if split == "x" else "x"
    assert all(ex["dfc"][other] == 0.0 for ex in examples)
    assert examples[0]["bias"] == pytest.approx(root, rel=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_resumed_model_and_a_streamed_file_are_explained(tmp_path, engine):
    df = frame()
    est = classifier(tmp_path / "m", engine=engine)
    est.train(fixed(df, "churn"), steps=7)
    est.train(fixed(df, "churn"))  # the other 8 trees, on top of the stored 7
    assert est.global_step_ == 15
    path = tmp_path / "rows.csv"
    df.drop(columns=["churn"]).to_csv(path, index=False)
    examples = list(
        est.experimental_predict_with_explanations(trainrun.input_fn(str(path), shuffle=False))
    )
    total = np.array([ex["bias"] + sum(ex["dfc"].values()) for ex in examples])
    np.testing.assert_allclose(total, [ex["probabilities"][1] for ex in examples], atol=1e-6)


def test_more_than_one_output_and_an_untrained_model_are_refused(tmp_path):
    df = frame()
    multi = classifier(tmp_path / "multi", n_classes=3)
    multi.train(fixed(df, "cls"))
    with pytest.raises(UsageError, match="binary classifier or a regressor of one output"):
        explain(multi, df)
    fresh = classifier(tmp_path / "fresh")
    with pytest.raises(NotTrainedError, match="train"):
        explain(fresh, df)
    linear = classifier(tmp_path / "linear", n_trees=2, engine_params={"linear_tree": True})
    linear.train(fixed(df, "churn"))
    with pytest.raises(UsageError, match="linear_tree"):
        explain(linear, df)
