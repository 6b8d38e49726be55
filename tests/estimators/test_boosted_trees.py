"""BoostedTreesClassifier / Regressor with engine="xgboost": columns in, tf's keys out, UBJ checkpoints, resume, export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xgboost")

import trainrun  # noqa: E402
import trainrun.feature_columns as fc  # noqa: E402
from trainrun.estimators import boosted_trees  # noqa: E402
from trainrun.exceptions import FeatureColumnError, InputError, NotTrainedError  # noqa: E402

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)
BINARY_KEYS = {
    "accuracy", "accuracy_baseline", "auc", "auc_precision_recall", "average_loss",
    "label/mean", "loss", "precision", "prediction/mean", "recall", "global_step",
}  # fmt: skip


def frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    age = rng.uniform(18, 80, size=n)
    k = rng.choice(["a", "b", "c"], n)
    city = rng.choice(["x", "y", "z", "w"], n)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) + np.where(age > 50, 1.0, -0.5)
    noise = rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {
            "x": x,
            "age": age,
            "k": k,
            "city": city,
            "churn": np.where(score + noise > 0.3, "Yes", "No"),
            "target": 3.0 * x + np.where(k == "b", 2.0, 0.0) + noise,
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )


K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
COLUMNS = [
    fc.numeric_column("x"),
    fc.bucketized_column(fc.numeric_column("age"), [30, 50, 65]),
    fc.indicator_column(K),
    fc.categorical_column_with_vocabulary_list("city", ["x", "y", "z", "w"]),
]


def classifier(model_dir, **kw):
    settings = {"n_trees": 20, "max_depth": 3, "learning_rate": 0.3, "config": QUIET}
    settings.update({"engine": "xgboost", **kw})
    return trainrun.BoostedTreesClassifier(
        feature_columns=COLUMNS,
        label_vocabulary=["No", "Yes"],
        model_dir=model_dir,
        **settings,
    )


def test_classifier_learns_from_every_column_kind_with_tf_keys(tmp_path):
    df = frame()
    est = classifier(tmp_path)
    history = est.train(trainrun.input_fn(df.iloc[:450], response="churn"))
    assert est.global_step_ == 20 and len(history.losses) == 20
    assert history.losses[-1] < history.losses[0]
    results = est.evaluate(trainrun.input_fn(df.iloc[450:], response="churn", shuffle=False))
    assert set(results) == BINARY_KEYS
    assert results["auc"] > 0.9 and results["global_step"] == 20
    out = next(est.predict(trainrun.input_fn(df.iloc[450:], shuffle=False)))
    assert set(out) == {
        "logits", "logistic", "probabilities", "class_ids", "classes", "all_class_ids", "all_classes",
    }  # fmt: skip
    assert out["classes"][0] in ("No", "Yes")
    importances = est.experimental_feature_importances(normalize=True)
    assert list(importances)[0] == "x"  # the strongest signal
    assert set(importances) == {c.name for c in COLUMNS}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert est.feature_importances_.shape == (4,)


def test_checkpoints_are_ubj_and_json_and_training_resumes(tmp_path):
    df = frame()
    train_fn = trainrun.input_fn(df, response="churn")
    est = classifier(tmp_path, n_trees=12)
    est.train(train_fn, steps=5)
    assert sorted(p.name for p in tmp_path.glob("trees-*")) == ["trees-5.json", "trees-5.ubj"]
    meta = json.loads((tmp_path / "trees-5.json").read_text())
    assert meta["format"] == "trainrun.boosted_trees/1" and meta["global_step"] == 5
    assert (tmp_path / "trees-5.ubj").read_bytes()[:1] == b"{"  # UBJSON, not a pickle
    before = est.predict_frame(trainrun.input_fn(df.head(20), shuffle=False))["logits"]
    # A new estimator over the same model_dir restores the trees and grows the rest.
    again = classifier(tmp_path, n_trees=12)
    restored = again.predict_frame(trainrun.input_fn(df.head(20), shuffle=False))["logits"]
    np.testing.assert_allclose(restored, before, rtol=1e-6)
    again.train(train_fn)
    assert again.global_step_ == 12
    after = again.predict_frame(trainrun.input_fn(df.head(20), shuffle=False))["logits"]
    assert not np.allclose(after, before)
    again.train(train_fn)  # n_trees reached: nothing more to grow
    assert again.global_step_ == 12


def test_export_loads_back_without_the_estimator(tmp_path):
    df = frame()
    est = classifier(tmp_path / "model")
    est.train(trainrun.input_fn(df, response="churn"))
    path = est.export(tmp_path / "export")
    assert sorted(p.name for p in path.iterdir()) == ["model.ubj", "spec.json"]
    loaded = trainrun.load_exported(path)
    got = loaded.predict(df.head(30))
    want = est.predict_frame(trainrun.input_fn(df.head(30), shuffle=False))
    np.testing.assert_allclose(got["probabilities"][:, 1], want["probabilities_1"], rtol=1e-6)
    assert list(loaded.predict_frame(df.head(3), predict_keys=["classes"])["classes"]) == list(
        want["classes"][:3]
    )


def test_streamed_files_train_like_memory(tmp_path, monkeypatch):
    df = frame()
    for i, start in enumerate(range(0, len(df), 200)):
        df.iloc[start : start + 200].to_csv(tmp_path / f"part-{i}.csv", index=False)
    monkeypatch.setattr(boosted_trees, "CHUNK_ROWS", 100)  # several chunks into XGBoost
    streamed = classifier(tmp_path / "s")
    streamed.train(trainrun.input_fn(str(tmp_path / "*.csv"), response="churn", chunk_size=64))
    memory = classifier(tmp_path / "m")
    memory.train(trainrun.input_fn(df, response="churn"))
    test = trainrun.input_fn(df, response="churn", shuffle=False)
    assert streamed.evaluate(test)["auc"] == pytest.approx(memory.evaluate(test)["auc"], abs=0.01)


def test_regressor_multiclass_weights_and_center_bias(tmp_path):
    df = frame()
    reg = trainrun.BoostedTreesRegressor(
        engine="xgboost",
        feature_columns=COLUMNS,
        n_trees=30,
        max_depth=3,
        model_dir=tmp_path / "r",
        config=QUIET,
    )
    reg.train(trainrun.input_fn(df, response="target"))
    results = reg.evaluate(trainrun.input_fn(df, response="target", shuffle=False))
    assert set(results) == {"average_loss", "label/mean", "loss", "prediction/mean", "global_step"}
    assert results["average_loss"] < 0.5 * df["target"].var()
    df["cls"] = np.digitize(df["x"], [-0.5, 0.5])
    multi = trainrun.BoostedTreesClassifier(engine="xgboost",
        feature_columns=COLUMNS, n_classes=3, n_trees=10, center_bias=True,
        weight_column="w", model_dir=tmp_path / "c", config=QUIET,
    )  # fmt: skip
    multi.train(trainrun.input_fn(df, response="cls"))
    results = multi.evaluate(trainrun.input_fn(df, response="cls", shuffle=False))
    assert results["accuracy"] > 0.9
    probs = multi.predict_frame(trainrun.input_fn(df.head(5), shuffle=False))
    assert [c for c in probs.columns if c.startswith("probabilities")] == [
        "probabilities_0", "probabilities_1", "probabilities_2",
    ]  # fmt: skip


def test_centered_bias_starts_at_the_prior(tmp_path):
    df = frame()
    est = classifier(tmp_path, n_trees=1, learning_rate=1e-6, center_bias=True)
    est.train(trainrun.input_fn(df, response="churn"))
    prior = float((df["churn"] == "Yes").mean())
    mean = est.evaluate(trainrun.input_fn(df, response="churn"))["prediction/mean"]
    assert mean == pytest.approx(prior, abs=1e-3)


def test_refused_columns_and_settings_say_why(tmp_path):
    df = frame()
    with pytest.raises(FeatureColumnError, match="embedding column 'k_embedding'.*categorical"):
        trainrun.BoostedTreesClassifier(
            engine="xgboost",
            feature_columns=[fc.embedding_column(K, 2)],
            model_dir=tmp_path,
            config=QUIET,
        ).train(trainrun.input_fn(df, response="churn"))
    with pytest.raises(ValueError, match="pruning_mode='pre' needs tree_complexity > 0"):
        classifier(tmp_path, pruning_mode="pre").train(trainrun.input_fn(df, response="churn"))
    with pytest.raises(ValueError, match="'n_trees' parameter of BoostedTreesClassifier"):
        classifier(tmp_path, n_trees=0).train(trainrun.input_fn(df, response="churn"))
    with pytest.raises(NotTrainedError, match="before it is trained"):
        classifier(tmp_path / "empty").evaluate(trainrun.input_fn(df, response="churn"))
    with pytest.raises(InputError, match="no response column"):
        classifier(tmp_path / "empty").train(trainrun.input_fn(df[["x", "age", "k", "city"]]))


@pytest.mark.parametrize(("engine", "suffix"), [("xgboost", ".ubj"), ("lightgbm", ".txt")])
def test_runs_record_the_trees_and_the_evaluation(tmp_path, engine, suffix):
    from trainrun.runs import active, record

    folder = record.new_run_dir(tmp_path / "runs")
    df = frame()
    with active.activate(folder):
        est = classifier(None, n_trees=5, engine=engine)
        est.train(trainrun.input_fn(df, response="churn"))
        est.evaluate(trainrun.input_fn(df, response="churn"))
    assert (folder / "model" / f"trees-5{suffix}").exists()
    steps = [r["step"] for r in record.read_metrics(folder) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5]
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert evaluation["global_step"] == 5 and 0.5 < evaluation["auc"] <= 1.0


def test_fit_infers_columns_and_keeps_missing_values(tmp_path):
    df = frame(300)
    X = df[["x", "age", "k"]].copy()
    X.loc[::7, "x"] = np.nan
    est = trainrun.BoostedTreesClassifier(engine="xgboost", n_trees=10, config=QUIET).fit(
        X, df["churn"]
    )
    assert list(est.classes_) == ["No", "Yes"] and est.n_features_in_ == 3
    assert list(est.feature_names_in_) == ["x", "age", "k"]
    assert est.score(X, df["churn"]) > 0.85
    assert set(est.predict(X.head(4))) <= {"No", "Yes"}


def test_train_and_evaluate_checkpoints_evaluates_and_exports(tmp_path):
    df = frame()
    est = classifier(tmp_path / "m", n_trees=10)
    result = trainrun.train_and_evaluate(
        est,
        trainrun.TrainSpec(trainrun.input_fn(df, response="churn"), max_steps=10),
        trainrun.EvalSpec(
            trainrun.input_fn(df, response="churn", shuffle=False),
            every_n_steps=5,
            exporters=[trainrun.LatestExporter()],
        ),
    )
    assert [e["global_step"] for e in result.evaluations] == [5, 10]
    assert sorted(p.name for p in (tmp_path / "m").glob("trees-*.ubj")) == [
        "trees-10.ubj", "trees-5.ubj",
    ]  # fmt: skip
    exported = result.export_results[-1]
    assert trainrun.load_exported(exported).predict(df.head(3))["probabilities"].shape == (3, 2)
    partial = est.evaluate(trainrun.input_fn(df, response="churn", batch_size=100), steps=2)
    assert partial["global_step"] == 10


def test_the_tree_matrix_reads_the_packed_ids_block_as_the_per_column_lookup_does(monkeypatch):
    # TreeFeatures.matrix reads single-valued categorical columns straight out of the packed
    # ids block in numpy; a dict keyed by plain column names goes the general way.
    from trainrun.estimators.boosted_trees import TreeFeatures
    from trainrun.feature_columns import encoded_column

    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "c": rng.choice(["x", "y", "z", None], n),
            "d": rng.choice(["p", "q"], n),
            "b": rng.integers(0, 5, n),
        }
    )
    cols = [
        trainrun.numeric_column("a"),
        trainrun.indicator_column(
            trainrun.categorical_column_with_vocabulary_list("c", ["x", "y"])
        ),
        trainrun.categorical_column_with_vocabulary_list("d", ["p", "q"]),
        trainrun.indicator_column(trainrun.categorical_column_with_identity("b", 5)),
        trainrun.bucketized_column(trainrun.numeric_column("a"), [-1.0, 0.0, 1.0]),
    ]
    features = TreeFeatures(cols)
    encoded = features.transform.encode({k: df[k].to_numpy() for k in df})
    assert any(k.startswith("#ids") for k in encoded)  # the packed path is the one taken
    names = [getattr(c, "categorical_column", c).name for c in cols]
    plain = {name: encoded_column(encoded, name) for name in names}
    packed, general = features.matrix(encoded), features.matrix(plain)
    assert np.array_equal(packed, general, equal_nan=True)
    # written in bands of rows: bands that do not divide the rows give the same matrix
    monkeypatch.setattr(boosted_trees, "MATRIX_BAND", 64)
    assert np.array_equal(features.matrix(encoded), packed, equal_nan=True)
    assert np.array_equal(features.matrix(plain), packed, equal_nan=True)
    assert (
        np.isnan(packed[:, 3]).sum() == 0
        and packed[:, 1:3].sum() == (df["c"].isin(["x", "y"])).sum()
    )
