"""Canned DNN / wide-and-deep over shared_embeddings (as tf's); sequence columns refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import FeatureColumnError

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1)


def matches(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Two teams per match; the home side wins when its (hidden) strength is higher."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(size=20)
    home, away = rng.integers(0, 20, n), rng.integers(0, 20, n)
    noise = rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {
            "home": home,
            "away": away,
            "rest": rng.normal(size=n),
            "won": (strength[home] - strength[away] + noise > 0).astype(int),
        }
    )


def teams(dimension: int = 4) -> list[fc.SharedEmbeddingColumn]:
    return fc.shared_embeddings(
        [
            fc.categorical_column_with_identity("home", 20),
            fc.categorical_column_with_identity("away", 20),
        ],
        dimension,
    )


def test_dnn_classifier_learns_through_one_shared_table_and_exports(tmp_path):
    df = matches()
    train, test = df.iloc[:1000], df.iloc[1000:]
    home, away = teams()
    est = trainrun.DNNClassifier(
        hidden_units=[16],
        feature_columns=[home, away, fc.numeric_column("rest")],
        model_dir=tmp_path / "model",
        optimizer=lambda params: __import__("torch").optim.Adam(params, lr=0.02),
        config=QUIET,
    )
    est.train(trainrun.input_fn(train, response="won", epochs=15, batch_size=64))
    results = est.evaluate(trainrun.input_fn(test, response="won", shuffle=False))
    assert results["auc"] > 0.9, results  # a team's strength is learned once for both sides
    names = [n for n, _ in est.network_.named_parameters() if "shared" in n]
    assert names == ["shared.tables.away_home_shared_embedding.weight"]  # one table
    assert est.network_.layers[0].in_features == 1 + 4 + 4

    # the model_dir restores it, and the export predicts what the estimator predicts
    again = trainrun.DNNClassifier(
        hidden_units=[16],
        feature_columns=[home, away, fc.numeric_column("rest")],
        model_dir=tmp_path / "model",
        config=QUIET,
    )
    mine = est.predict_frame(trainrun.input_fn(test.drop(columns="won"), shuffle=False))
    pd.testing.assert_frame_equal(
        mine, again.predict_frame(trainrun.input_fn(test.drop(columns="won"), shuffle=False))
    )
    loaded = trainrun.load_exported(est.export(tmp_path / "export"))
    assert set(loaded.required_keys) == {"home", "away", "rest"}
    pd.testing.assert_frame_equal(mine, loaded.predict_frame(test.drop(columns="won")))


def test_wide_and_deep_takes_shared_embeddings_in_its_deep_part(tmp_path):
    df = matches(600, seed=1)
    home, away = teams(3)
    est = trainrun.DNNLinearCombinedRegressor(
        linear_feature_columns=[fc.numeric_column("rest")],
        dnn_feature_columns=[home, away],  # shared columns only: no DenseFeatures block
        dnn_hidden_units=[8],
        model_dir=tmp_path / "wd",
        config=QUIET,
    )
    est.train(trainrun.input_fn(df, response="won", epochs=3, batch_size=64))
    assert est.network_.dnn.features is None
    assert est.network_.dnn.layers[0].in_features == 6
    frame = df.drop(columns="won").head(40)
    mine = est.predict_frame(trainrun.input_fn(frame, shuffle=False))
    loaded = trainrun.load_exported(est.export(tmp_path / "export"))
    pd.testing.assert_frame_equal(mine, loaded.predict_frame(frame))


@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (
            lambda cols: trainrun.DNNClassifier(hidden_units=[4], feature_columns=cols),
            "feature_columns",
        ),
        (lambda cols: trainrun.LinearRegressor(feature_columns=cols), "feature_columns"),
        (
            lambda cols: trainrun.DNNLinearCombinedClassifier(
                dnn_feature_columns=cols, dnn_hidden_units=[4]
            ),
            "dnn_feature_columns",
        ),
    ],
    ids=["dnn", "linear", "wide_deep"],
)
def test_canned_estimators_refuse_sequence_columns_naming_the_way_out(make, arg, tmp_path):
    words = fc.sequence_categorical_column_with_vocabulary_list("review", ["good", "bad"])
    cols = [fc.numeric_column("x"), fc.embedding_column(words, 4)]
    df = pd.DataFrame({"x": [0.0, 1.0], "review": [["good"], ["bad", "good"]], "y": [1, 0]})
    est = make(cols)
    est.set_params(model_dir=tmp_path / "m", config=QUIET)
    with pytest.raises(FeatureColumnError) as info:
        est.train(trainrun.input_fn(df, response="y"), steps=1)
    message = str(info.value)
    assert f"cannot use the sequence column 'review_embedding' in {arg}" in message
    assert "trainrun.Estimator(model_fn=" in message
    assert type(est).__name__ in message
