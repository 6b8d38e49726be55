"""center_bias: every head starts from its labels' prior, and the start lives in the model file
(checkpoints, resume and exports carry it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("xgboost")

import trainrun  # noqa: E402
import trainrun.feature_columns as fc  # noqa: E402

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1)
COLUMNS = [fc.numeric_column("x"), fc.numeric_column("z")]


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    # unbalanced classes (about 0.6 / 0.3 / 0.1), learnable from x
    cls = np.digitize(x + 0.3 * rng.normal(size=n), [0.25, 1.3])
    return pd.DataFrame({"x": x, "z": z, "cls": cls, "w": rng.uniform(0.5, 3.0, size=n)})


def multiclass(model_dir, **kw):
    settings = {"n_trees": 8, "max_depth": 2, "learning_rate": 0.3, "config": QUIET}
    settings.update(kw)
    return trainrun.BoostedTreesClassifier(
        engine="xgboost", feature_columns=COLUMNS, n_classes=3, model_dir=model_dir, **settings
    )


def logits(est, df):
    """[rows, logits] (the frame spreads a vector over logits_0, logits_1, ...)."""
    out = est.predict_frame(trainrun.input_fn(df, shuffle=False))
    return out[[c for c in out.columns if c.startswith("logits")]].to_numpy()


def test_multiclass_center_bias_starts_at_the_weighted_log_priors(tmp_path):
    df = frame()
    # one nearly flat tree: what is left is the start
    est = multiclass(tmp_path, n_trees=1, learning_rate=1e-6, center_bias=True, weight_column="w")
    est.train(trainrun.input_fn(df, response="cls"))
    prior = np.bincount(df["cls"], weights=df["w"], minlength=3) / df["w"].sum()
    want = np.log(prior) - np.log(prior).mean()
    z = logits(est, df.head(5))
    np.testing.assert_allclose(z, np.broadcast_to(want, z.shape), atol=1e-4)
    probs = est.evaluate(trainrun.input_fn(df, response="cls", shuffle=False))
    assert probs["global_step"] == 1
    # unweighted, the plain class frequencies; without center_bias, every class alike
    plain = multiclass(tmp_path / "u", n_trees=1, learning_rate=1e-6, center_bias=True)
    plain.train(trainrun.input_fn(df, response="cls"))
    freq = np.bincount(df["cls"], minlength=3) / len(df)
    assert np.allclose(logits(plain, df.head(2)), np.log(freq) - np.log(freq).mean(), atol=1e-4)
    flat = multiclass(tmp_path / "f", n_trees=1, learning_rate=1e-6)
    flat.train(trainrun.input_fn(df, response="cls"))
    assert np.allclose(logits(flat, df.head(2)), 0.0, atol=1e-4)


def test_multiclass_center_bias_survives_checkpoints_resume_and_export(tmp_path):
    df = frame()
    train_fn = trainrun.input_fn(df, response="cls")
    whole = multiclass(tmp_path / "whole", center_bias=True)
    whole.train(train_fn)
    want = logits(whole, df)
    # 3 trees, then a new estimator over the same model_dir grows the other 5
    part = multiclass(tmp_path / "part", center_bias=True)
    part.train(train_fn, steps=3)
    params = json.loads((tmp_path / "part" / "trees-3.json").read_text())["params"]
    assert params["center_bias"] is True
    resumed = multiclass(tmp_path / "part", center_bias=True)
    resumed.train(train_fn)
    assert resumed.global_step_ == 8
    np.testing.assert_allclose(logits(resumed, df), want, rtol=1e-5, atol=1e-5)
    # the export carries the start too
    loaded = trainrun.load_exported(whole.export(tmp_path / "export"))
    np.testing.assert_allclose(
        np.asarray(loaded.predict(df)["logits"]).reshape(len(df), -1), want, rtol=1e-5, atol=1e-5
    )
    # and it is not a zero start: the same trees without center_bias give other logits
    zero = multiclass(tmp_path / "zero")
    zero.train(train_fn)
    assert not np.allclose(logits(zero, df), want, atol=1e-3)


def test_binary_center_bias_checkpoints_resume_and_export_agree(tmp_path):
    df = frame()
    df["yes"] = (df["cls"] > 0).astype(int)
    settings = {"n_trees": 6, "max_depth": 2, "center_bias": True, "config": QUIET}
    cols = {"feature_columns": COLUMNS}
    whole = trainrun.BoostedTreesClassifier(
        engine="xgboost", **cols, model_dir=tmp_path / "w", **settings
    )
    whole.train(trainrun.input_fn(df, response="yes"))
    want = logits(whole, df)
    part = trainrun.BoostedTreesClassifier(
        engine="xgboost", **cols, model_dir=tmp_path / "p", **settings
    )
    part.train(trainrun.input_fn(df, response="yes"), steps=2)
    resumed = trainrun.BoostedTreesClassifier(
        engine="xgboost", **cols, model_dir=tmp_path / "p", **settings
    )
    resumed.train(trainrun.input_fn(df, response="yes"))
    np.testing.assert_allclose(logits(resumed, df), want, rtol=1e-5, atol=1e-5)
    loaded = trainrun.load_exported(whole.export(tmp_path / "export"))
    np.testing.assert_allclose(
        np.asarray(loaded.predict(df)["logits"]).reshape(len(df), -1), want, rtol=1e-5, atol=1e-5
    )


def test_base_score_from_arrays_matches_the_input_fn_prior(tmp_path):
    """The quality script starts XGBoost from est._base_score(y): the same start as train()."""
    df = frame()
    est = multiclass(tmp_path, center_bias=True, weight_column="w")
    est._build()
    from_fn = est._prior(trainrun.input_fn(df, response="cls"))
    from_arrays = est._base_score(df["cls"].to_numpy(), df["w"].to_numpy())
    np.testing.assert_allclose(from_fn, from_arrays, rtol=1e-6)
    assert len(from_arrays) == 3 and abs(sum(from_arrays)) < 1e-9
