"""BoostedTrees*(engine="lightgbm"): what a tf.estimator or LightGBM user expects of it.

Each test trains a few small models; "the same as LightGBM" means LightGBM's own
``lgb.train`` with the parameters the estimator passes (``_lightgbm.params``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

lgb = pytest.importorskip("lightgbm")
pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import trainrun  # noqa: E402
import trainrun.feature_columns as fc  # noqa: E402
from trainrun.estimators import _lightgbm, boosted_trees  # noqa: E402
from trainrun.exceptions import InputError, ModelDirError, UsageError  # noqa: E402

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1)
BINARY_KEYS = {
    "accuracy", "accuracy_baseline", "auc", "auc_precision_recall", "average_loss",
    "label/mean", "loss", "precision", "prediction/mean", "recall", "global_step",
}  # fmt: skip
MULTI_KEYS = {"accuracy", "average_loss", "loss", "global_step"}
REGRESSION_KEYS = {"average_loss", "label/mean", "loss", "prediction/mean", "global_step"}
CITIES = ["x", "y", "z", "w"]


def frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    age = rng.uniform(18, 80, size=n)
    k = rng.choice(["a", "b", "c"], n)
    city = rng.choice(CITIES, n)
    # city matters in no order of its codes (x and z up, y and w down): a native split
    city_effect = np.where(np.isin(city, ["x", "z"]), 1.0, -1.0)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) + np.where(age > 50, 1.0, -0.5) + city_effect
    noise = rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {
            "x": x,
            "age": age,
            "k": k,
            "city": city,
            "churn": np.where(score + noise > 0.3, "Yes", "No"),
            "cls": np.digitize(score + noise, [-0.5, 1.5]),
            "target": 3.0 * x + np.where(k == "b", 2.0, 0.0) + city_effect + noise,
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )


K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
CITY = fc.categorical_column_with_vocabulary_list("city", CITIES)
COLUMNS = [
    fc.numeric_column("x"),
    fc.bucketized_column(fc.numeric_column("age"), [30, 50, 65]),
    fc.indicator_column(K),
    CITY,
]
#: Columns whose matrix a test can build by hand: x, age, city's vocabulary index.
PLAIN = [fc.numeric_column("x"), fc.numeric_column("age"), CITY]


def plain_matrix(df: pd.DataFrame) -> np.ndarray:
    codes = df["city"].map({c: i for i, c in enumerate(CITIES)})
    return np.column_stack([df["x"], df["age"], codes]).astype(np.float32)


def classifier(model_dir, columns=COLUMNS, **kw):
    settings = {"n_trees": 15, "max_depth": 3, "learning_rate": 0.3, "config": QUIET}
    settings.update({"engine": "lightgbm", **kw})
    if settings.get("n_classes", 2) == 2:
        settings.setdefault("label_vocabulary", ["No", "Yes"])
    return trainrun.BoostedTreesClassifier(feature_columns=columns, model_dir=model_dir, **settings)


def regressor(model_dir, columns=COLUMNS, **kw):
    settings = {"n_trees": 15, "max_depth": 3, "learning_rate": 0.3, "config": QUIET}
    settings.update({"engine": "lightgbm", **kw})
    return trainrun.BoostedTreesRegressor(feature_columns=columns, model_dir=model_dir, **settings)


def fixed(df, response=None, **kw):
    """An input_fn that keeps the rows' order (as LightGBM called directly sees them)."""
    return trainrun.input_fn(df, response=response, shuffle=False, **kw)


def logits(est, df) -> np.ndarray:
    out = est.predict_frame(fixed(df))
    return out[[c for c in out.columns if c.startswith("logits")]].to_numpy()


def direct(est, df, y, weight=None) -> np.ndarray:
    """LightGBM's own lgb.train on PLAIN's matrix with the estimator's parameters: raw scores."""
    params = _lightgbm.params(est, len(df), 128)
    data = lgb.Dataset(
        plain_matrix(df), label=y, weight=weight, categorical_feature=[2], params=params
    )
    booster = lgb.train(params, data, num_boost_round=est.n_trees)
    return booster.predict(plain_matrix(df), raw_score=True).reshape(len(df), -1)


# ------------------------------------------------------------------ the three heads


def test_binary_trains_evaluates_with_tf_keys_and_predicts_as_lightgbm_itself(tmp_path):
    df = frame()
    est = classifier(tmp_path, columns=PLAIN)
    history = est.train(fixed(df, "churn"))
    assert est.global_step_ == 15 and history.losses[-1] < history.losses[0]
    results = est.evaluate(fixed(df, "churn"))
    assert set(results) == BINARY_KEYS
    assert results["auc"] > 0.95 and results["global_step"] == 15
    want = direct(est, df, (df["churn"] == "Yes").to_numpy(float))
    np.testing.assert_allclose(logits(est, df), want, rtol=1e-12, atol=0)
    out = est.predict_frame(fixed(df.head(5)))
    assert set(out["classes"]) <= {"No", "Yes"}
    np.testing.assert_allclose(out["probabilities_1"], 1 / (1 + np.exp(-want[:5, 0])), rtol=1e-12)


def test_multiclass_trains_evaluates_with_tf_keys_and_predicts_as_lightgbm_itself(tmp_path):
    df = frame()
    est = classifier(tmp_path, columns=PLAIN, n_classes=3)
    est.train(fixed(df, "cls"))
    results = est.evaluate(fixed(df, "cls"))
    assert set(results) == MULTI_KEYS and results["accuracy"] > 0.85
    want = direct(est, df, df["cls"].to_numpy(float))
    assert want.shape == (len(df), 3)
    np.testing.assert_allclose(logits(est, df), want, rtol=1e-12, atol=0)
    assert est.booster_.num_trees() == 15 * 3  # one tree per class per step


def test_regression_trains_evaluates_with_tf_keys_and_predicts_as_lightgbm_itself(tmp_path):
    df = frame()
    est = regressor(tmp_path, columns=PLAIN, weight_column="w")
    est.train(fixed(df, "target"))
    results = est.evaluate(fixed(df, "target"))
    assert set(results) == REGRESSION_KEYS
    assert results["average_loss"] < 0.2 * df["target"].var()
    want = direct(est, df, df["target"].to_numpy(float), weight=df["w"].to_numpy())
    got = est.predict_frame(fixed(df))["predictions"].to_numpy().reshape(-1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


# ------------------------------------------------------------------ checkpoints and resume


def test_checkpoints_are_lightgbm_text_and_json_and_old_ones_are_deleted(tmp_path):
    df = frame()
    config = trainrun.RunConfig(
        seed=0, progress=False, tensorboard=False, save_checkpoints_steps=2, keep_checkpoint_max=2
    )
    est = classifier(tmp_path, n_trees=7, config=config)
    est.train(trainrun.input_fn(df, response="churn"))
    names = sorted(p.name for p in tmp_path.glob("trees-*"))
    assert names == ["trees-6.json", "trees-6.txt", "trees-7.json", "trees-7.txt"]
    text = (tmp_path / "trees-7.txt").read_text()
    assert text.startswith("tree\nversion=") and "Tree=6" in text  # LightGBM's text, 7 trees
    meta = json.loads((tmp_path / "trees-7.json").read_text())
    assert meta["engine"] == "lightgbm" and meta["global_step"] == 7
    assert meta["format"] == "trainrun.boosted_trees/1"
    assert lgb.Booster(model_file=tmp_path / "trees-7.txt").num_trees() == 7


def _resume_matches_one_go(tmp_path, make, df, response):
    train_fn = trainrun.input_fn(df, response=response)
    whole = make(tmp_path / "whole")
    whole.train(train_fn)
    part = make(tmp_path / "part")
    part.train(train_fn, steps=10)
    assert part.global_step_ == 10
    resumed = make(tmp_path / "part")  # a new object: restores trees-10, grows 20 more
    resumed.train(train_fn)
    assert resumed.global_step_ == 30 and resumed.booster_.current_iteration() == 30
    np.testing.assert_array_equal(logits(resumed, df), logits(whole, df))
    return resumed


def test_resumed_training_predicts_like_one_run(tmp_path):
    _resume_matches_one_go(
        tmp_path, lambda d: classifier(d, n_trees=30, learning_rate=0.1), frame(), "churn"
    )


def test_resumed_multiclass_with_center_bias_weights_and_categories_predicts_like_one_run(
    tmp_path,
):
    est = _resume_matches_one_go(
        tmp_path,
        lambda d: classifier(
            d, n_classes=3, n_trees=30, learning_rate=0.1, center_bias=True, weight_column="w"
        ),
        frame(),
        "cls",
    )
    assert est.booster_.num_trees() == 90


# ------------------------------------------------------------------ files


def _spills(monkeypatch):
    """Record every spill the estimator makes (a real _Spill; only its path is noted)."""
    made = []

    class Recorded(_lightgbm._Spill):
        def __init__(self, width):
            super().__init__(width)
            made.append(self)

    monkeypatch.setattr(_lightgbm, "_Spill", Recorded)
    return made


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_streamed_files_grow_the_same_trees_as_the_frame_and_leave_no_spill(
    tmp_path, monkeypatch, kind
):
    df = frame()
    for i, start in enumerate(range(0, len(df), 200)):
        part = df.iloc[start : start + 200]
        if kind == "csv":
            part.to_csv(tmp_path / f"part-{i}.csv", index=False)
        else:
            part.to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    monkeypatch.setattr(boosted_trees, "CHUNK_ROWS", 100)  # several chunks into the spill
    monkeypatch.setattr(_lightgbm, "SPILL_BATCH", 64)  # LightGBM reads it back in pieces
    spills = _spills(monkeypatch)
    streamed = classifier(tmp_path / "s")
    streamed.train(fixed(str(tmp_path / f"*.{kind}"), "churn", chunk_size=64))
    memory = classifier(tmp_path / "m")
    memory.train(fixed(df, "churn"))
    assert len(spills) == 1 and spills[0].rows == len(df)
    assert not spills[0].path.parent.exists()  # the temporary folder is gone
    assert streamed.booster_.model_to_string() == memory.booster_.model_to_string()


@pytest.mark.parametrize("failure", ["reading", "binning"])
def test_the_spill_is_removed_when_training_fails(tmp_path, monkeypatch, failure):
    df = frame()
    if failure == "reading":  # a label not in label_vocabulary, after chunks were spilled
        df.loc[450, "churn"] = "Maybe"
        est, error, said = classifier(tmp_path / "m"), InputError, "Maybe"
    else:  # LightGBM refuses a parameter while binning the spilled rows
        est = classifier(tmp_path / "m", engine_params={"max_bin": "many"})
        error, said = UsageError, "max_bin"
    df.to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.setattr(boosted_trees, "CHUNK_ROWS", 100)
    spills = _spills(monkeypatch)
    with pytest.raises(error, match=said):
        est.train(fixed(str(tmp_path / "data.csv"), "churn", chunk_size=64))
    assert len(spills) == 1 and spills[0].rows >= 100
    assert not spills[0].path.parent.exists()


# ------------------------------------------------------------------ export


def test_export_loads_in_a_fresh_process_that_imports_no_training_code(tmp_path):
    df = frame()
    est = classifier(tmp_path / "model", n_classes=3, center_bias=True)
    est.train(trainrun.input_fn(df, response="cls"))
    path = est.export(tmp_path / "export")
    assert sorted(p.name for p in path.iterdir()) == ["model.txt", "spec.json"]
    assert json.loads((path / "spec.json").read_text())["engine"] == "lightgbm"
    df.to_parquet(tmp_path / "rows.parquet")
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np, pandas as pd
        import trainrun
        model = trainrun.load_exported(sys.argv[1])
        out = model.predict(pd.read_parquet(sys.argv[2]))
        np.save(sys.argv[3], np.asarray(out["probabilities"]))
        print(json.dumps(sorted(m for m in sys.modules
                                if m.startswith(("trainrun.training", "xgboost")))))
        """
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(path),
            str(tmp_path / "rows.parquet"),
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # no training loop, no other engine
    got = np.load(tmp_path / "p.npy")
    want = est.predict_frame(fixed(df))[[f"probabilities_{i}" for i in range(3)]].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ------------------------------------------------------------------ what the trees use


def test_importances_are_gains_with_indicator_categories_summed(tmp_path):
    df = frame()
    est = classifier(tmp_path)
    est.train(trainrun.input_fn(df, response="churn"))
    gains = est.booster_.feature_importance(importance_type="gain")
    names = est.booster_.feature_name()
    ks = ["k_indicator=a", "k_indicator=b", "k_indicator=c"]
    assert names[2:5] == ks
    by_name = dict(zip(names, gains, strict=True))
    got = est.experimental_feature_importances()
    assert got["k_indicator"] == pytest.approx(sum(by_name[k] for k in ks))
    assert got["k_indicator"] > 0 and got["city"] > 0
    assert got["x"] == pytest.approx(by_name["x"])
    assert list(got)[0] == "x"  # the strongest signal, largest first
    assert sum(est.experimental_feature_importances(normalize=True).values()) == pytest.approx(1)


def test_categorical_columns_are_split_natively(tmp_path):
    df = frame()
    est = regressor(tmp_path, columns=[fc.numeric_column("x"), CITY], n_trees=5)
    est.train(trainrun.input_fn(df, response="target"))
    model = est.booster_.dump_model()
    city = model["feature_names"].index("city")

    def splits(node):
        if "split_feature" not in node:
            return []
        return [node, *splits(node["left_child"]), *splits(node["right_child"])]

    on_city = [
        s
        for t in model["tree_info"]
        for s in splits(t["tree_structure"])
        if s["split_feature"] == city
    ]
    assert on_city and all(s["decision_type"] == "==" for s in on_city)
    # x and z (codes 0 and 2) go one way: a set of categories, not a threshold on codes
    assert {s["threshold"] for s in on_city} & {"0||2", "1||3"}


def test_center_bias_starts_binary_multiclass_and_regression_from_their_priors(tmp_path):
    df = frame()
    flat = {"n_trees": 1, "learning_rate": 1e-9}
    binary = classifier(tmp_path / "b", center_bias=True, weight_column="w", **flat)
    binary.train(trainrun.input_fn(df, response="churn"))
    yes = (df["churn"] == "Yes").to_numpy(float)
    prior = np.average(yes, weights=df["w"])
    np.testing.assert_allclose(logits(binary, df.head(3)), np.log(prior / (1 - prior)), rtol=1e-5)
    zero = classifier(tmp_path / "z", **flat)
    zero.train(trainrun.input_fn(df, response="churn"))
    np.testing.assert_allclose(logits(zero, df.head(3)), 0.0, atol=1e-6)

    multi = classifier(tmp_path / "m", n_classes=3, center_bias=True, **flat)
    multi.train(trainrun.input_fn(df, response="cls"))
    probs = multi.predict_frame(fixed(df.head(3)))[[f"probabilities_{i}" for i in range(3)]]
    freq = np.bincount(df["cls"], minlength=3) / len(df)
    np.testing.assert_allclose(probs.to_numpy(), np.broadcast_to(freq, (3, 3)), rtol=1e-5)
    multi_zero = classifier(tmp_path / "mz", n_classes=3, **flat)
    multi_zero.train(trainrun.input_fn(df, response="cls"))
    np.testing.assert_allclose(logits(multi_zero, df.head(3)), 0.0, atol=1e-6)

    reg = regressor(tmp_path / "r", center_bias=True, **flat)
    reg.train(trainrun.input_fn(df, response="target"))
    got = reg.predict_frame(fixed(df.head(3)))["predictions"]
    np.testing.assert_allclose(got, df["target"].mean(), rtol=1e-5)


def test_n_batches_per_layer_bags_each_tree_on_that_many_batches(tmp_path):
    df = frame()
    est = classifier(tmp_path / "bag", n_batches_per_layer=2)
    est.train(trainrun.input_fn(df, response="churn", batch_size=50))
    params = _lightgbm.params(est, len(df), 50)
    assert params["bagging_fraction"] == pytest.approx(100 / len(df))
    assert params["bagging_freq"] == 1
    whole = classifier(tmp_path / "all")
    whole.train(trainrun.input_fn(df, response="churn", batch_size=50))
    assert "bagging_fraction" not in _lightgbm.params(whole, len(df), 50)
    assert not np.allclose(logits(est, df), logits(whole, df))
    assert est.evaluate(fixed(df, "churn"))["auc"] > 0.9  # bagged trees still learn


def test_tree_complexity_prunes_splits_alike_in_pre_and_post_mode(tmp_path):
    df = frame()

    def leaves(est):
        return sum(t["num_leaves"] for t in est.booster_.dump_model()["tree_info"])

    free = classifier(tmp_path / "none")
    free.train(fixed(df, "churn"))
    pre = classifier(tmp_path / "pre", pruning_mode="pre", tree_complexity=2.0)
    pre.train(fixed(df, "churn"))
    post = classifier(tmp_path / "post", pruning_mode="post", tree_complexity=2.0)
    post.train(fixed(df, "churn"))
    assert _lightgbm.params(pre, None, 1)["min_gain_to_split"] == 2.0
    assert leaves(pre) < leaves(free)
    # LightGBM prunes while growing: both modes grow the same trees
    assert pre.booster_.model_to_string() == post.booster_.model_to_string()


def test_constant_features_stop_training_early_and_count_only_real_trees(tmp_path, capfd):
    df = frame()
    df["x"] = 1.0
    est = classifier(tmp_path, columns=[fc.numeric_column("x")], n_trees=10)
    est.train(trainrun.input_fn(df, response="churn"))
    assert est.global_step_ == est.booster_.current_iteration() == 1 < 10
    assert sorted(p.name for p in tmp_path.glob("trees-*")) == ["trees-1.json", "trees-1.txt"]
    yes = (df["churn"] == "Yes").mean()
    assert est.evaluate(fixed(df, "churn"))["prediction/mean"] == pytest.approx(yes, abs=1e-4)
    assert capfd.readouterr() == ("", "")  # LightGBM's warning is not printed


def test_splits_running_out_midway_stop_with_the_real_tree_count(tmp_path):
    df = frame()
    est = classifier(
        tmp_path, n_trees=60, learning_rate=1.0, pruning_mode="pre", tree_complexity=15.0
    )
    est.train(trainrun.input_fn(df, response="churn"))
    assert 1 < est.global_step_ < 60
    assert est.global_step_ == est.booster_.current_iteration() == est.booster_.num_trees()
    assert (tmp_path / f"trees-{est.global_step_}.txt").exists()
    again = classifier(
        tmp_path, n_trees=60, learning_rate=1.0, pruning_mode="pre", tree_complexity=15.0
    )
    again.train(trainrun.input_fn(df, response="churn"))  # nothing more to learn: no new tree
    assert again.global_step_ == est.global_step_


# ------------------------------------------------------------------ engine_params and engines


def test_engine_params_reach_lightgbm(tmp_path):
    df = frame()
    small = classifier(tmp_path / "a", n_trees=3)
    small.train(fixed(df, "churn"))
    big = classifier(tmp_path / "b", n_trees=3, engine_params={"min_data_in_leaf": 120})
    big.train(fixed(df, "churn"))
    leaves = [t["num_leaves"] for t in big.booster_.dump_model()["tree_info"]]
    assert max(leaves) <= len(df) // 120
    assert big.booster_.model_to_string() != small.booster_.model_to_string()
    # an alias of a parameter trainrun sets (eta = learning_rate) overrides it too
    eta = classifier(tmp_path / "c", n_trees=3, engine_params={"eta": 0.01})
    eta.train(fixed(df, "churn"))
    assert _lightgbm.params(eta, None, 1)["learning_rate"] == 0.01
    assert np.abs(logits(eta, df)).max() < 0.1


def test_engine_params_reach_xgboost(tmp_path):
    df = frame()
    est = trainrun.BoostedTreesClassifier(
        feature_columns=COLUMNS, label_vocabulary=["No", "Yes"], model_dir=tmp_path,
        n_trees=3, max_depth=4, config=QUIET, engine="xgboost", engine_params={"max_depth": 1},
    )  # fmt: skip
    est.train(trainrun.input_fn(df, response="churn"))
    trees = est.booster_.trees_to_dataframe()
    assert trees.groupby("Tree")["Feature"].apply(lambda f: (f != "Leaf").sum()).max() == 1


@pytest.mark.parametrize(
    ("engine_params", "said"),
    [
        ({"min_data_in_leaf": -5}, r"'min_data_in_leaf'.*LightGBM"),
        ({"min_data_per_leaves": 5}, r"'min_data_per_leaves'.*min_data_per_leaf"),
        ({"num_iterations": 5}, r"'num_iterations'.*n_trees"),
        ({"bagging_fraction": "half"}, r"'bagging_fraction'"),
    ],
)
def test_bad_engine_params_are_refused_naming_the_parameter(tmp_path, engine_params, said):
    df = frame(100)
    est = classifier(tmp_path, n_trees=2, engine_params=engine_params)
    with pytest.raises(UsageError, match=said):
        est.train(trainrun.input_fn(df, response="churn"))
    assert not list(tmp_path.glob("trees-*"))


def test_a_misspelt_engine_param_fails_before_the_input_is_read(tmp_path, monkeypatch):
    spills = _spills(monkeypatch)
    (tmp_path / "data.csv").write_text("x,churn\n1.0,Yes\n")
    est = classifier(tmp_path / "m", columns=[fc.numeric_column("x")], engine_params={"etaa": 1})
    with pytest.raises(UsageError, match=r"'etaa'.*Did you mean 'eta'"):
        est.train(fixed(str(tmp_path / "data.csv"), "churn"))
    assert spills == []


def test_a_model_dir_of_one_engine_is_refused_by_the_other(tmp_path):
    df = frame(200)
    train_fn = trainrun.input_fn(df, response="churn")
    classifier(tmp_path / "l", n_trees=2).train(train_fn)
    with pytest.raises(ModelDirError, match=r"grown by lightgbm.*engine='lightgbm'"):
        classifier(tmp_path / "l", n_trees=4, engine="xgboost").train(train_fn)
    classifier(tmp_path / "x", n_trees=2, engine="xgboost").train(train_fn)
    with pytest.raises(ModelDirError, match=r"grown by xgboost.*engine='xgboost'"):
        classifier(tmp_path / "x", n_trees=4).evaluate(train_fn)


def test_unknown_engine_and_lightgbm_multi_output_are_refused(tmp_path):
    df = frame(100)
    with pytest.raises(
        UsageError, match=r"'engine' parameter.*'auto', 'lightgbm' or 'xgboost'.*catboost"
    ):
        classifier(tmp_path, engine="catboost").train(trainrun.input_fn(df, response="churn"))
    df["t2"] = df["target"] * 2
    with pytest.raises(UsageError, match=r"label_dimension=2.*engine='xgboost'"):
        regressor(tmp_path, label_dimension=2).train(
            trainrun.input_fn(df, response=["target", "t2"])
        )


def test_training_is_deterministic_quiet_and_uses_the_configured_threads(
    tmp_path, capfd, monkeypatch
):
    df = frame()
    one = classifier(tmp_path / "a", n_batches_per_layer=2)
    one.train(trainrun.input_fn(df, response="churn", seed=1, batch_size=50))
    two = classifier(tmp_path / "b", n_batches_per_layer=2)
    two.train(trainrun.input_fn(df, response="churn", seed=1, batch_size=50))
    assert one.booster_.model_to_string() == two.booster_.model_to_string()
    assert _lightgbm.params(one, None, 1)["num_threads"] == 1
    many = trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=3)
    three = classifier(tmp_path / "c", n_batches_per_layer=2, config=many)
    three.train(trainrun.input_fn(df, response="churn", seed=1, batch_size=50))
    assert _lightgbm.params(three, None, 1)["num_threads"] == 3
    # deterministic=True: the same trees on 3 threads as on 1 (only the recorded setting differs)
    trees = [b.model_to_string().split("\nparameters:")[0] for b in (one.booster_, three.booster_)]
    assert trees[0] == trees[1]
    # predictions run on the configured threads too (LightGBM's default is every core)
    asked = []
    predict = lgb.Booster.predict

    def noted(self, *args, **kw):
        asked.append(kw.get("num_threads"))
        return predict(self, *args, **kw)

    monkeypatch.setattr(lgb.Booster, "predict", noted)
    three.evaluate(fixed(df, "churn"))
    one.predict_frame(fixed(df.head(3)))
    assert asked == [3, 1]
    assert capfd.readouterr() == ("", "")


AFFINITY = """
import json, os
import pandas as pd
import trainrun
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
cfg = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)
df = pd.DataFrame({"x": [float(i % 7) for i in range(40)], "y": [i % 2 for i in range(40)]})
used = []
for engine in ("lightgbm", "xgboost"):
    est = trainrun.BoostedTreesClassifier(
        feature_columns=[trainrun.numeric_column("x")], n_trees=2, engine=engine, config=cfg
    )
    est.train(trainrun.input_fn(df, response="y", batch_size=40))
    if engine == "lightgbm":
        used.append(est.booster_.params["num_threads"])
    else:
        used.append(json.loads(est.booster_.save_config())["learner"]["generic_param"]["nthread"])
print(*used)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_the_default_threads_are_the_cores_this_process_may_use():
    # a process pinned to one core (taskset, a container's cpuset) grows on one thread,
    # whatever the machine's core count, with either engine
    out = subprocess.run(
        [sys.executable, "-c", AFFINITY], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["1", "1"]


def test_predictions_use_every_tree_whatever_best_iteration_says(tmp_path):
    df = frame()
    est = classifier(tmp_path, n_trees=10)
    est.train(trainrun.input_fn(df, response="churn"))
    want = logits(est, df)
    gains = est.experimental_feature_importances()
    est.booster_.best_iteration = 2  # as lgb.train with early stopping would leave it
    np.testing.assert_array_equal(logits(est, df), want)
    assert est.experimental_feature_importances() == gains
    est._save_checkpoint(10)
    assert lgb.Booster(model_file=tmp_path / "trees-10.txt").num_trees() == 10
    loaded = trainrun.load_exported(est.export(tmp_path / "export"))
    np.testing.assert_allclose(loaded.predict(df)["logits"].reshape(-1, 1), want, rtol=1e-6)


# ------------------------------------------------------------------ scikit-learn, loops, runs


def _cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :6], y


@pytest.mark.parametrize("engine", ["lightgbm", "xgboost"])
def test_an_overconfident_model_keeps_its_ranking_in_predict_proba(engine):
    # strong trees push margins past 17, where float32 rounds probabilities to 1.0 and
    # ties rows the trees told apart; the probabilities are float64, as LightGBM's own
    # (up to margins of about 36), so the ranking survives in them
    from sklearn.metrics import roc_auc_score

    X, y = _cancer()
    est = trainrun.BoostedTreesClassifier(
        n_trees=100, learning_rate=0.4, max_depth=4, engine=engine, config=QUIET
    ).fit(X, y)
    margins = est.decision_function(X)
    proba = est.predict_proba(X)
    assert proba.dtype == np.float64
    assert 17 < np.abs(margins).max() < 35
    in_float32 = 1 / (1 + np.exp(-margins.astype(np.float32)))
    assert len(np.unique(in_float32)) < 0.8 * len(np.unique(margins))  # what float32 loses
    assert len(np.unique(proba[:, 1])) == len(np.unique(margins))
    assert roc_auc_score(y, proba[:, 1]) == roc_auc_score(y, margins)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-margins)), rtol=1e-12)


def test_scikit_learn_contract_with_the_lightgbm_engine():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _cancer()
    est = trainrun.BoostedTreesClassifier(n_trees=10, engine="lightgbm", config=QUIET)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.engine == "lightgbm"
    w = np.where(y == 1, 1.0, 1e-3)
    heavy = clone(est).fit(X, y, sample_weight=w)
    plain = clone(est).fit(X, y)
    assert heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
    proba = plain.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(plain.classes_) == [0, 1] and plain.score(X, y) > 0.9
    pipe = make_pipeline(StandardScaler(), clone(est)).fit(X.to_numpy(), y)
    assert pipe.score(X.to_numpy(), y) > 0.9
    search = GridSearchCV(
        clone(est), {"engine": ["xgboost", "lightgbm"], "max_depth": [2, 4]}, cv=2
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["engine"] in ("xgboost", "lightgbm")
    assert search.best_estimator_.score(X, y) > 0.9


def test_train_and_evaluate_checkpoints_evaluates_and_exports(tmp_path):
    df = frame()
    est = classifier(tmp_path / "m", n_trees=10)
    result = trainrun.train_and_evaluate(
        est,
        trainrun.TrainSpec(trainrun.input_fn(df, response="churn"), max_steps=10),
        trainrun.EvalSpec(
            fixed(df, "churn"), every_n_steps=5, exporters=[trainrun.LatestExporter()]
        ),
    )
    assert [e["global_step"] for e in result.evaluations] == [5, 10]
    assert sorted(p.name for p in (tmp_path / "m").glob("trees-*.txt")) == [
        "trees-10.txt", "trees-5.txt",
    ]  # fmt: skip
    exported = result.export_results[-1]
    assert (exported / "model.txt").exists()
    assert trainrun.load_exported(exported).predict(df.head(3))["probabilities"].shape == (3, 2)


def test_frames_in_memory_are_not_spilled(tmp_path, monkeypatch):
    spills = _spills(monkeypatch)
    classifier(tmp_path / "m", n_trees=2).train(trainrun.input_fn(frame(), response="churn"))
    assert spills == []


def test_the_logged_loss_is_the_heads_even_with_a_metric_in_engine_params(tmp_path):
    df = frame()
    est = classifier(tmp_path, engine_params={"metric": "auc"})
    history = est.train(fixed(df, "churn"))
    assert len(history.losses) == 15 and history.losses[-1] < history.losses[0]
    final = est.evaluate(fixed(df, "churn"))["average_loss"]
    assert history.losses[-1] == pytest.approx(final, rel=1e-4)  # log loss, not the AUC


def test_resumed_training_from_streamed_files_predicts_like_one_run(tmp_path, monkeypatch):
    df = frame()
    df.to_parquet(tmp_path / "rows.parquet", index=False)
    monkeypatch.setattr(boosted_trees, "CHUNK_ROWS", 100)  # margins computed chunk by chunk
    files = fixed(str(tmp_path / "rows.parquet"), "churn", chunk_size=64)
    whole = classifier(tmp_path / "whole", n_trees=12)
    whole.train(files)
    classifier(tmp_path / "part", n_trees=12).train(files, steps=5)
    resumed = classifier(tmp_path / "part", n_trees=12)
    resumed.train(files)
    assert resumed.global_step_ == 12
    assert resumed.booster_.model_to_string() == whole.booster_.model_to_string()


def test_an_unreadable_checkpoint_and_empty_input_say_what_to_do(tmp_path):
    df = frame(200)
    classifier(tmp_path / "m", n_trees=3).train(trainrun.input_fn(df, response="churn"))
    (tmp_path / "m" / "trees-3.txt").write_text("tree\nnot a model\n")
    with pytest.raises(ModelDirError, match=r"trees-3\.txt is not a LightGBM model.*Delete it"):
        classifier(tmp_path / "m", n_trees=3).evaluate(trainrun.input_fn(df, response="churn"))
    (tmp_path / "empty.csv").write_text(",".join(df.columns) + "\n")
    with pytest.raises(InputError, match="no rows"):
        classifier(tmp_path / "f").train(fixed(str(tmp_path / "empty.csv"), "churn"))


def test_a_random_forest_grows_in_one_call_and_is_not_continued(tmp_path):
    df = frame()
    forest = {"boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1}
    est = classifier(tmp_path, n_trees=10, engine_params=forest)
    est.train(fixed(df, "churn"), steps=6)
    assert est.global_step_ == 6 and est.evaluate(fixed(df, "churn"))["auc"] > 0.9
    with pytest.raises(UsageError, match=r"cannot grow more trees onto the 6 stored.*one train"):
        classifier(tmp_path, n_trees=10, engine_params=forest).train(fixed(df, "churn"))


def test_many_trees_at_tf_default_min_node_weight_train_on_small_data(monkeypatch):
    # At min_sum_hessian_in_leaf=0 (tf's min_node_weight default, passed as is) LightGBM
    # aborted wine's 3 classes once the trees fitted the rows: "Check failed:
    # (best_split_info.left_count) > (0)". The engine now passes LightGBM's own floor.
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    from trainrun.estimators import _lightgbm
    from trainrun.exceptions import UsageError

    x, y = load_wine(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )

    def make():
        return trainrun.BoostedTreesClassifier(
            n_classes=3,
            engine="lightgbm",
            n_trees=400,
            max_depth=2,
            learning_rate=0.3,
            config=trainrun.RunConfig(progress=False),
        )

    est = make().fit(x_train, y_train)
    # it grows until no split is left to make (no error), and predicts well
    assert 20 < est.global_step_ < 400
    assert est.score(x_test, y_test) > 0.9
    assert _lightgbm.params(est, 100, 1)["min_sum_hessian_in_leaf"] == _lightgbm.MIN_HESSIAN
    est.set_params(min_node_weight=2.0)
    assert _lightgbm.params(est, 100, 1)["min_sum_hessian_in_leaf"] == 2.0
    # without the floor LightGBM fails, and the failure is a trainrun error saying what to do
    monkeypatch.setattr(_lightgbm, "MIN_HESSIAN", 0.0)
    with pytest.raises(UsageError, match=r"failed growing tree \d+: Check failed.*min_node_weight"):
        make().fit(x_train, y_train)


def test_the_default_engine_grows_lightgbm_and_continues_a_model_dirs_own_engine(tmp_path):
    df = frame(200)
    new = classifier(tmp_path / "new", engine="auto", n_trees=4)
    new.train(fixed(df, response="churn"))
    assert new.engine_ == "lightgbm"
    assert sorted(p.name for p in (tmp_path / "new").glob("trees-*")) == [
        "trees-4.json",
        "trees-4.txt",
    ]
    # trees an earlier trainrun grew with XGBoost go on growing with XGBoost
    classifier(tmp_path / "old", engine="xgboost", n_trees=4).train(fixed(df, response="churn"))
    more = classifier(tmp_path / "old", engine="auto", n_trees=6)
    assert more.get_params()["engine"] == "auto"
    more.train(fixed(df, response="churn"))
    assert more.engine_ == "xgboost" and more.global_step_ == 6
    assert (tmp_path / "old" / "trees-6.ubj").exists()
    assert not list((tmp_path / "old").glob("*.txt"))
    # an explicit engine that differs is refused, naming the stored one
    with pytest.raises(ModelDirError, match="grown by xgboost.*engine='xgboost'"):
        classifier(tmp_path / "old", engine="lightgbm").train(fixed(df, response="churn"))


def test_the_default_engine_is_xgboost_for_several_label_dimensions(tmp_path):
    df = frame(200)
    df["y2"] = df["x"] * 2
    est = regressor(tmp_path, engine="auto", label_dimension=2, n_trees=3)
    fn = trainrun.input_fn(df, response=["x", "y2"], features=["age", "k", "city"], shuffle=False)
    est.set_params(feature_columns=COLUMNS[1:])
    est.train(fn)
    assert est.engine_ == "xgboost"
    assert est.predict_frame(fn).filter(like="predictions").shape[1] == 2
