"""Issue 3's promises checked as a user meets them: sparse combiners, devices, bad input
through train / evaluate / predict, exact and weighted AUC, exports served elsewhere."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import FeatureColumnError, InputError
from trainrun.feature_columns import FeatureTransform
from trainrun.modules.linear import LinearModel

from .conftest import CFG, K, X

TAGS = fc.categorical_column_with_vocabulary_list("tags", ["a", "b", "c"])
WEIGHTED = fc.weighted_categorical_column(
    fc.categorical_column_with_vocabulary_list("wk", ["p", "q"]), "wv"
)
MULTI = {
    "tags": [["a", "b"], ["c"], [], ["a", "b", "c"]],
    "x": [1.0, 2.0, 3.0, 4.0],
    "wk": [["p", "q"], ["p"], ["q"], []],
    "wv": [[1.0, 3.0], [2.0], [0.5], []],
}


def _linear_with_known_weights(combiner: str) -> LinearModel:
    model = LinearModel([TAGS, X, WEIGHTED], 1, combiner)
    with torch.no_grad():
        rows = model.features.categorical.weight
        # ids: tags a, b, c = 0..2, then wk p, q = 3, 4 (columns sorted by name); weights 1..5
        rows[:, 0] = torch.arange(1, rows.shape[0] + 1, dtype=torch.float32)
        model.features.weight.fill_(10.0)
    return model


@pytest.mark.parametrize(
    ("combiner", "expected"),
    [
        # row 0: x=1, tags a+b (1+2), wk 1*p + 3*q (4 + 15); row 3: x=4, tags a+b+c, no wk
        ("sum", [10 + 3 + 19, 20 + 3 + 8, 30 + 2.5, 40 + 6]),
        ("mean", [10 + 3 / 2 + 19 / 4, 20 + 3 + 4, 30 + 5, 40 + 2]),
        ("sqrtn", [10 + 3 / math.sqrt(2) + 19 / math.sqrt(10), 20 + 3 + 4, 30 + 5, 40 + 6 / math.sqrt(3)]),
    ],
)  # fmt: skip
def test_sparse_combiners_by_hand(combiner, expected):
    model = _linear_with_known_weights(combiner)
    encoded = FeatureTransform([TAGS, X, WEIGHTED]).encode(MULTI)
    torch.testing.assert_close(model(encoded).squeeze(1), torch.tensor(expected))


def test_sparse_combiner_leaves_single_valued_and_indicator_columns_summed():
    cols = [K, X, fc.indicator_column(TAGS)]
    data = {"k": ["a", "c", "b"], "x": [0.5, 1.0, 2.0], "tags": [["a", "b"], ["c"], []]}
    encoded = FeatureTransform(cols).encode(data)
    outs = []
    for combiner in ("sum", "mean", "sqrtn"):
        torch.manual_seed(0)
        model = LinearModel(cols, 2, combiner)
        with torch.no_grad():
            torch.nn.init.normal_(model.features.categorical.weight)
            torch.nn.init.normal_(model.features.weight)
        outs.append(model(encoded))
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(outs[0], outs[2])


def test_bad_sparse_combiner():
    with pytest.raises(ValueError, match=r"'sum', 'mean' or 'sqrtn'.*sparse_combiner='max'"):
        LinearModel([X], 1, "max")
    est = trainrun.LinearRegressor(feature_columns=[X], sparse_combiner="avg", config=CFG)
    with pytest.raises(ValueError, match="'sparse_combiner' parameter of LinearRegressor"):
        est.train(trainrun.input_fn({"x": [1.0], "y": [1.0]}, response="y"), steps=1)


def _tag_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    tags = [
        list(rng.choice(["a", "b", "c"], size=rng.integers(0, 4), replace=False)) for _ in range(n)
    ]
    x = rng.normal(size=n)
    y = np.array([("a" in t) + 0.5 * v > 0.5 for t, v in zip(tags, x, strict=True)])
    return pd.DataFrame({"tags": tags, "x": x, "y": y.astype(np.int64)})


@pytest.mark.parametrize("combiner", ["mean", "sqrtn"])
def test_estimator_with_a_combiner_trains_restores_and_exports(combiner, tmp_path):
    df = _tag_frame()
    make = lambda c: trainrun.DNNLinearCombinedClassifier(  # noqa: E731
        linear_feature_columns=[TAGS, X],
        dnn_feature_columns=[X],
        dnn_hidden_units=[4],
        linear_sparse_combiner=c,
        model_dir=tmp_path / "m",
        config=CFG,
    )
    est = make(combiner)
    est.train(trainrun.input_fn(df, response="y", batch_size=30, seed=0), steps=8)
    assert (
        json.loads((tmp_path / "m" / "ckpt-4.json").read_text())["network"]["linear"][
            "sparse_combiner"
        ]
        == combiner
    )
    test = trainrun.input_fn(df, features=["tags", "x"], batch_size=40, shuffle=False)
    mine = est.predict_frame(test)
    served = trainrun.load_exported(est.export(tmp_path / "export"))
    theirs = served.predict_frame(df[["tags", "x"]], batch_size=40)
    np.testing.assert_allclose(mine["logits"], theirs["logits"], rtol=0, atol=1e-6)
    # The combiner does not shape the weights: the same model_dir restores under "sum",
    # and multivalent rows then score differently.
    summed = make("sum").predict_frame(test)
    multi = df["tags"].map(len) > 1
    assert not np.allclose(summed["logits"][multi], mine["logits"][multi])
    np.testing.assert_allclose(summed["logits"][~multi], mine["logits"][~multi], atol=1e-6)


# ------------------------------------------------------------------ devices


def test_explicit_cpu_device(tmp_path, frame):
    cfg = trainrun.RunConfig(seed=0, progress=False, device="cpu")
    est = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], model_dir=tmp_path, config=cfg
    )
    est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=2)
    assert est.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in est.network_.parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_unavailable_cuda_is_a_clear_error(device, tmp_path, frame):
    cfg = trainrun.RunConfig(progress=False, device=device)
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path / "m", config=cfg)
    with pytest.raises(ValueError, match=r"needs a CUDA GPU.*Use device='cpu', or device='auto'"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)
    assert not (tmp_path / "m").exists()  # failed before touching the model_dir


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_beyond_the_visible_devices():
    cfg = trainrun.RunConfig(device=f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(ValueError, match="visible"):
        cfg.resolved_device()


def test_device_that_cannot_train():
    with pytest.raises(ValueError, match="not a device an estimator can train on"):
        trainrun.RunConfig(device="meta").resolved_device()
    with pytest.raises(ValueError, match="must be a device name"):
        trainrun.RunConfig(device="tpu").resolved_device()


# ------------------------------------------------------------------ bad input, as a user meets it


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LinearClassifier trained on x and k, to evaluate / predict bad data with."""
    df = pd.DataFrame({"x": np.linspace(-1, 1, 40), "k": ["a", "b"] * 20})
    df["churn"] = np.where(df["x"] > 0, "Yes", "No")
    est = trainrun.LinearClassifier(
        feature_columns=[X, K],
        label_vocabulary=["No", "Yes"],
        model_dir=tmp_path_factory.mktemp("trained"),
        config=CFG,
    )
    est.train(trainrun.input_fn(df, response="churn", batch_size=20), steps=2)
    return est, df


def _call(est, verb, df, **kw):
    if verb == "train":
        return est.train(trainrun.input_fn(df, response="churn", **kw), steps=1)
    if verb == "evaluate":
        return est.evaluate(trainrun.input_fn(df, response="churn", shuffle=False, **kw))
    return est.predict_frame(trainrun.input_fn(df.drop(columns="churn"), shuffle=False, **kw))


def _bad(df: pd.DataFrame, problem: str) -> tuple[pd.DataFrame, dict]:
    df = df.copy()
    if problem == "non_numeric":
        df["x"] = df["x"].astype(object)
        df.loc[3, "x"] = "n/a"
    elif problem == "missing_value":
        df.loc[5, "x"] = np.nan
    elif problem == "shape":
        df["x"] = [np.array([v, v]) for v in df["x"]]
    return df, {}


@pytest.mark.parametrize("verb", ["train", "evaluate", "predict"])
@pytest.mark.parametrize(
    ("problem", "error", "pattern"),
    [
        ("non_numeric", FeatureColumnError, r"Numeric column 'x' has non-numeric values.*Convert"),
        ("missing_value", FeatureColumnError, r"'x' has 1 rows? with missing.*default_value="),
        ("shape", FeatureColumnError, r"Numeric column 'x' has shape=\(1,\).*2"),
    ],
)
def test_bad_values_through_every_verb(trained, verb, problem, error, pattern):
    est, df = trained
    bad, kw = _bad(df, problem)
    with pytest.raises(error, match=pattern):
        _call(est, verb, bad, **kw)


@pytest.mark.parametrize("verb", ["train", "evaluate", "predict"])
def test_missing_key_and_batch_size_through_every_verb(trained, verb):
    est, df = trained
    with pytest.raises(FeatureColumnError, match=r"needs the key 'k'.*Available features"):
        _call(est, verb, df.drop(columns=["k"]))
    with pytest.raises(InputError, match="batch_size must be a positive integer.*batch_size=0"):
        _call(est, verb, df, batch_size=0)
    with pytest.raises(InputError, match="no rows"):
        _call(est, verb, df.head(0))


def test_label_errors_name_the_response_column(trained):
    est, df = trained
    with pytest.raises(InputError, match=r"Response column 'churn': Labels \['Maybe'\]"):
        _call(est, "evaluate", df.assign(churn="Maybe"))
    dnn = trainrun.DNNClassifier(hidden_units=[2], feature_columns=[X], config=CFG)
    with pytest.raises(
        InputError, match=r"Response column 'y': Labels must be in \[0, n_classes=2\)"
    ):
        dnn.train(trainrun.input_fn(pd.DataFrame({"x": [0.0, 1.0], "y": [0, 2]}), response="y"))


# ------------------------------------------------------------------ AUC and weights


def test_auc_is_exact_and_weighted(tmp_path):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    n = 500
    # Coarse x values: many tied scores, where a 200-threshold AUC would be off.
    df = pd.DataFrame({"x": rng.integers(0, 5, n).astype(float), "w": rng.uniform(0, 3, n)})
    df["y"] = (rng.uniform(size=n) < 0.2 + 0.1 * df["x"]).astype(np.int64)
    est = trainrun.LinearClassifier(
        feature_columns=[X], weight_column="w", model_dir=tmp_path, config=CFG
    )
    est.train(trainrun.input_fn(df, features=["x"], response="y", batch_size=64, seed=0), steps=6)
    result = est.evaluate(trainrun.input_fn(df, response="y", batch_size=128, shuffle=False))
    p = est.predict_frame(trainrun.input_fn(df, features=["x"], shuffle=False))["logistic"]
    assert result["auc"] == pytest.approx(
        roc_auc_score(df["y"], p, sample_weight=df["w"]), abs=1e-9
    )
    assert result["label/mean"] == pytest.approx(np.average(df["y"], weights=df["w"]), abs=1e-6)
    # Zero weights are the same as leaving the rows out.
    zeroed = df.assign(w=np.where(np.arange(n) % 3 == 0, 0.0, df["w"]))
    kept = zeroed[zeroed["w"] > 0]
    a = est.evaluate(trainrun.input_fn(zeroed, response="y", shuffle=False))
    b = est.evaluate(trainrun.input_fn(kept, response="y", shuffle=False))
    for key in ("auc", "accuracy", "average_loss", "precision", "recall", "label/mean"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


# ------------------------------------------------------------------ export, served elsewhere


def test_export_serves_in_a_fresh_process_without_training_code(tmp_path, frame):
    est = trainrun.DNNLinearCombinedClassifier(
        linear_feature_columns=[K],
        dnn_feature_columns=[X, fc.embedding_column(K, 2)],
        dnn_hidden_units=[4],
        label_vocabulary=["No", "Yes"],
        model_dir=tmp_path / "m",
        config=CFG,
    )
    est.train(trainrun.input_fn(frame, features=["x", "k"], response="churn"), steps=3)
    path = est.export(tmp_path / "export")
    frame[["x", "k"]].to_csv(tmp_path / "in.csv", index=False)
    code = f"""
import json, sys
import pandas as pd
import trainrun
model = trainrun.load_exported({str(path)!r})
out = model.predict_frame(pd.read_csv({str(tmp_path / "in.csv")!r}), batch_size=100)
out[["logits", "classes"]].to_csv({str(tmp_path / "out.csv")!r}, index=False)
loaded = sorted(m for m in sys.modules if m.startswith(("trainrun.estimators", "trainrun.training")))
print(json.dumps(loaded))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    theirs = pd.read_csv(tmp_path / "out.csv")
    mine = est.predict_frame(
        trainrun.input_fn(frame, features=["x", "k"], batch_size=100, shuffle=False)
    )
    np.testing.assert_allclose(theirs["logits"], mine["logits"], rtol=0, atol=1e-6)
    assert theirs["classes"].tolist() == mine["classes"].tolist()


# ------------------------------------------------------------------ progress


def test_losses_reach_loggers_once_per_logging_interval(tmp_path, frame):
    """Every progress line gets its own examples/s: losses are synced at each interval's end."""
    from trainrun.training.callbacks import Callback

    class Chunks(Callback):
        def __init__(self):
            self.ends = []

        def on_losses(self, state):
            self.ends.append(state.step_losses[-1][0])

    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=CFG)
    inp = trainrun.input_fn(frame, features=["x"], response="target", batch_size=10, epochs=None)
    first, again = Chunks(), Chunks()
    est.train(inp, steps=12, callbacks=[first])
    est.train(inp, steps=9, callbacks=[again])  # resumes at 12: syncs stay on multiples of 5
    assert first.ends == [5, 10, 12]
    assert again.ends == [15, 20, 21]
    one = est.train(inp, steps=1)
    assert repr(one).startswith("Trained for 1 step (global step 22) in ")
    assert repr(one).endswith("(mean of the last step)")


# ------------------------------------------------------------------ divergence


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    from trainrun.exceptions import NanLossError
    from trainrun.model_dir.checkpoints import list_checkpoints

    # Two good batches, then values that overflow float32 in the squared error.
    df = pd.DataFrame({"x": np.r_[np.linspace(-1, 1, 40), np.full(20, 1e30)]})
    df["target"] = 2.0 * df["x"].clip(-1, 1)
    cfg = trainrun.RunConfig(seed=0, progress=False, save_checkpoints_steps=1)
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=cfg)
    inp = trainrun.input_fn(df, response="target", batch_size=20, shuffle=False)
    with pytest.raises(NanLossError, match=r"became inf at step 3: the model diverged\. Lower"):
        est.train(inp)
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "ckpt-2.json"
    # The NaN weights are gone: the estimator carries on from the last checkpoint.
    out = est.predict_frame(trainrun.input_fn(df.head(5), features=["x"], shuffle=False))
    assert est.global_step_ == 2 and np.isfinite(out["predictions"]).all()
    # Without any checkpoint there is nothing to predict with.
    fresh = trainrun.LinearRegressor(
        feature_columns=[X], model_dir=tmp_path / "b", config=CFG, standardize_labels=False
    )
    with pytest.raises(NanLossError, match="at step 2"):
        fresh.train(trainrun.input_fn(df.tail(20), response="target", shuffle=False, epochs=2))
    assert list_checkpoints(tmp_path / "b") == []
    with pytest.raises(trainrun.NotTrainedError):
        fresh.predict_frame(trainrun.input_fn(df.head(5), features=["x"], shuffle=False))


def test_raw_keys_and_raw_data_get_a_pointed_error(trained):
    est, df = trained
    with pytest.raises(InputError, match=r"not the data itself: wrap the data.*pandas"):
        est.train(df, steps=1)
    with pytest.raises(InputError, match=r"not the data itself.*numpy"):
        est.evaluate(df.to_numpy())
    raw = trainrun.DNNLinearCombinedClassifier(
        linear_feature_columns=[K], dnn_feature_columns=[X, "k"], dnn_hidden_units=[2]
    )
    with pytest.raises(
        ValueError, match=r"'dnn_feature_columns'.*not raw keys.*numeric_column\('k'\)"
    ):
        raw.train(trainrun.input_fn(df, response="churn"), steps=1)


def test_checkpoints_a_killed_process_left_behind_are_cleaned(tmp_path):
    from trainrun.model_dir.checkpoints import list_checkpoints, save_checkpoint

    w = {"w": torch.ones(2)}
    for step in (1, 2):
        save_checkpoint(tmp_path, step, w, [], {"estimator": "T"}, keep=2)
    # A kill between writing the index and deleting the dropped checkpoint, and one
    # in the middle of writing a checkpoint's files:
    for name in ("ckpt-0.json", "ckpt-0.safetensors", "ckpt-9.safetensors"):
        (tmp_path / name).write_bytes(b"left over")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    save_checkpoint(tmp_path, 3, w, [], {"estimator": "T"}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-2.json", "ckpt-3.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.json",
        "ckpt-2.json",
        "ckpt-2.optim.safetensors",
        "ckpt-2.safetensors",
        "ckpt-3.json",
        "ckpt-3.optim.safetensors",
        "ckpt-3.safetensors",
        "notes.txt",
    ]


def test_run_config_seed_fixes_an_unseeded_shuffle(tmp_path, frame):
    from trainrun.estimators.base import _NamedLabels

    def fit(d):
        est = trainrun.DNNClassifier(
            hidden_units=[4], feature_columns=[X], n_classes=3, model_dir=d, config=CFG
        )
        inp = trainrun.input_fn(frame, features=["x"], response="cls", batch_size=16)
        est.train(inp, steps=10)
        est.train(inp, steps=10)  # a second call: another order, still reproducible
        assert inp.seed is None  # the user's input_fn is left as given
        return est.predict_frame(trainrun.input_fn(frame, features=["x"], shuffle=False))

    np.testing.assert_array_equal(fit(tmp_path / "a").to_numpy(), fit(tmp_path / "b").to_numpy())
    # The label decoder wrapper compares equal per (head, response): label caches hit.
    head_fn = fit.__call__
    assert _NamedLabels(head_fn, ["a", "b"]) == _NamedLabels(head_fn, ["a", "b"])
    assert _NamedLabels(head_fn, "a") != _NamedLabels(head_fn, "b")


def test_wide_and_deep_refuses_two_different_columns_with_one_name():
    import pandas as pd

    import trainrun as tr

    df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 4, "y": [0, 1, 0, 1] * 4})
    est = tr.DNNLinearCombinedClassifier(
        linear_feature_columns=[tr.numeric_column("x")],
        dnn_feature_columns=[tr.numeric_column("x", normalizer_fn=("scale", 0.5))],
        dnn_hidden_units=[4],
    )
    with pytest.raises(tr.FeatureColumnError, match="share the name 'x'"):
        est.train(tr.input_fn(df, features=["x"], response="y", batch_size=4), steps=1)
