"""tf.estimator's model-directory API: older checkpoints, variables, warm starting with
vocabulary remapping, hooks=, batch-wise prediction, and temporary model directories."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import trainrun
from trainrun.training.callbacks import Callback, ProgressLogger

QUIET = trainrun.RunConfig(seed=0, progress=False, tensorboard=False)
X = trainrun.numeric_column("x")


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    return pd.DataFrame({"x": x, "k": k, "y": ((x + (k == "a")) > 0).astype(int)})


def linear(model_dir, vocab=("a", "b", "c"), **kw):
    k = trainrun.categorical_column_with_vocabulary_list("k", list(vocab))
    return trainrun.LinearClassifier(
        feature_columns=[X, k], model_dir=model_dir, config=QUIET, **kw
    )


def test_evaluate_and_predict_an_older_checkpoint(tmp_path):
    est = linear(tmp_path)
    train = trainrun.input_fn(data(), response="y", batch_size=16, epochs=None, seed=0)
    est.train(train, steps=5)
    first = est.latest_checkpoint()
    assert first is not None and first.name == "ckpt-5.json"
    early = est.evaluate(trainrun.input_fn(data(), response="y", shuffle=False))
    early_pred = list(est.predict(trainrun.input_fn(data(), shuffle=False)))
    est.train(train, steps=20)
    assert est.latest_checkpoint().name == "ckpt-25.json"
    again = est.evaluate(
        trainrun.input_fn(data(), response="y", shuffle=False), checkpoint_path=first
    )
    assert again == {**early, "global_step": 5}
    old = list(est.predict(trainrun.input_fn(data(), shuffle=False), checkpoint_path=first))
    np.testing.assert_array_equal(
        np.stack([p["logits"] for p in old]), np.stack([p["logits"] for p in early_pred])
    )
    # ... and the estimator's own weights are back afterwards
    now = est.evaluate(trainrun.input_fn(data(), response="y", shuffle=False))
    assert now["global_step"] == 25 and now["loss"] != early["loss"]
    with pytest.raises(trainrun.ModelDirError, match="no checkpoint at"):
        est.evaluate(trainrun.input_fn(data(), response="y"), checkpoint_path=tmp_path / "nope")


def test_predict_yields_batches_when_asked_and_takes_hooks(tmp_path):
    class Seen(Callback):
        def __init__(self):
            self.ended = 0
            self.evaluated = []

        def on_predict_end(self):
            self.ended += 1

        def on_evaluate_end(self, results, name):
            self.evaluated.append(results["global_step"])

    est = linear(tmp_path)
    seen = Seen()
    est.train(trainrun.input_fn(data(), response="y", batch_size=16), hooks=[seen])
    batches = list(
        est.predict(trainrun.input_fn(data(), shuffle=False, batch_size=24),
                    yield_single_examples=False, hooks=[seen])
    )  # fmt: skip
    assert [len(b["logits"]) for b in batches] == [24, 24, 16]
    assert seen.ended == 1
    est.evaluate(trainrun.input_fn(data(), response="y"), hooks=[seen])
    assert seen.evaluated == [4]
    with pytest.raises(ValueError, match="hooks to be a list"):
        est.train(trainrun.input_fn(data(), response="y"), hooks=seen)


def test_variable_names_and_values_come_from_the_latest_checkpoint(tmp_path):
    est = linear(tmp_path)
    with pytest.raises(trainrun.NotTrainedError, match="Call train"):
        est.get_variable_names()
    est.train(trainrun.input_fn(data(), response="y", batch_size=16), steps=3)
    names = est.get_variable_names()
    assert names == sorted(
        ["bias", "features.categorical.weight", "features.weight", "global_step"]
    )
    assert est.get_variable_value("global_step") == 3
    bias = est.get_variable_value("bias")
    assert isinstance(bias, np.ndarray) and bias.shape == (1,)
    np.testing.assert_array_equal(bias, est.network_.state_dict()["bias"].numpy())
    with pytest.raises(trainrun.InputError, match="Did you mean 'bias'"):
        est.get_variable_value("biass")
    # a second estimator on the same model_dir reads the same values without training
    other = linear(tmp_path)
    np.testing.assert_array_equal(other.get_variable_value("bias"), bias)


def test_warm_start_settings_remap_vocabulary_rows(tmp_path):
    old = linear(tmp_path / "old", vocab=("a", "b", "c"))
    old.train(trainrun.input_fn(data(), response="y", batch_size=16), steps=10)
    old_rows = old.get_variable_value("features.categorical.weight")  # rows a, b, c, pad
    # the new vocabulary drops "b", reorders, and adds "d"
    settings = trainrun.WarmStartSettings(tmp_path / "old", vars_to_warm_start="features.*")
    new = linear(tmp_path / "new", vocab=("c", "d", "a"), warm_start_from=settings)
    new._build()
    rows = new.network_.state_dict()["features.categorical.weight"].numpy()
    np.testing.assert_array_equal(rows[0], old_rows[2])  # c
    np.testing.assert_array_equal(rows[1], np.zeros(1))  # d: new, fresh (zero) init
    np.testing.assert_array_equal(rows[2], old_rows[0])  # a
    # the bias was not selected by vars_to_warm_start
    assert new.network_.state_dict()["bias"].item() == 0.0
    np.testing.assert_array_equal(
        new.network_.state_dict()["features.weight"].numpy(),
        old.get_variable_value("features.weight"),
    )


def test_vocab_info_overrides_the_stored_vocabulary_and_prev_names(tmp_path):
    old = linear(tmp_path / "old", vocab=("a", "b", "c"))
    old.train(trainrun.input_fn(data(), response="y", batch_size=16), steps=10)
    old_rows = old.get_variable_value("features.categorical.weight")
    # tell it the old rows were in another order: (b, c, a)
    info = trainrun.VocabInfo(old_vocab=["b", "c", "a"])
    settings = trainrun.WarmStartSettings(
        tmp_path / "old", var_name_to_vocab_info={"k": info},
    )  # fmt: skip
    new = linear(tmp_path / "new", vocab=("a", "b", "c"), warm_start_from=settings)
    new._build()
    rows = new.network_.state_dict()["features.categorical.weight"].numpy()
    np.testing.assert_array_equal(rows[:3], old_rows[[2, 0, 1]])
    # an embedding follows its words too
    emb_old = trainrun.DNNClassifier(
        hidden_units=[2], model_dir=tmp_path / "e_old", config=QUIET,
        feature_columns=[trainrun.embedding_column(
            trainrun.categorical_column_with_vocabulary_list("k", ["a", "b"]), 3)],
    )  # fmt: skip
    emb_old.train(trainrun.input_fn(data(), response="y", batch_size=16), steps=2)
    table = emb_old.get_variable_value("features.embeddings.0.bag.weight")
    emb_new = trainrun.DNNClassifier(
        hidden_units=[2], model_dir=tmp_path / "e_new", config=QUIET,
        warm_start_from=trainrun.WarmStartSettings(tmp_path / "e_old"),
        feature_columns=[trainrun.embedding_column(
            trainrun.categorical_column_with_vocabulary_list("k", ["b", "z", "a"]), 3)],
    )  # fmt: skip
    emb_new._build()
    got = emb_new.network_.state_dict()["features.embeddings.0.bag.weight"].numpy()
    np.testing.assert_array_equal(got[0], table[1])
    np.testing.assert_array_equal(got[2], table[0])
    with pytest.raises(ValueError, match="regular expressions"):
        trainrun.WarmStartSettings("x", vars_to_warm_start="(")


def test_progress_shows_total_percent_eta_and_epochs_for_an_epoch_budget(tmp_path):
    out = io.StringIO()
    est = linear(tmp_path)
    logger = ProgressLogger(every=4, stream=out, live=False)
    est.train(trainrun.input_fn(data(), response="y", batch_size=16, epochs=3), callbacks=[logger])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("step 4/12 (33%)  epoch 1/3  loss ")
    assert "ETA " in lines[0]
    assert lines[1].startswith("step 8/12 (67%)  epoch 2/3")
    assert lines[-1].startswith("step 12/12 (100%)  epoch 3/3") and "ETA" not in lines[-1]


SCRIPT = """
import numpy as np, trainrun
cfg = trainrun.RunConfig(progress=False, tensorboard=False, keep_temp_model_dir={keep})
est = trainrun.LinearRegressor(feature_columns=[trainrun.numeric_column("x")], config=cfg)
est.train(trainrun.input_fn({{"x": np.arange(8.0), "y": np.arange(8.0)}}, response="y"), steps=2)
print(est.model_dir_path)
"""


@pytest.mark.parametrize("keep", [False, True])
def test_temporary_model_dirs_go_at_exit_unless_kept(tmp_path, keep):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(keep=keep)],
        capture_output=True, text=True, timeout=120, check=True,
        env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    path = done.stdout.strip().splitlines()[-1]
    assert path.startswith(str(tmp_path)) and "trainrun-model-" in path
    import os

    assert os.path.isdir(path) is keep


def test_warm_start_remaps_the_one_hot_inputs_of_a_dnns_first_layer(tmp_path):
    def dnn(folder, vocab, **kw):
        k = trainrun.categorical_column_with_vocabulary_list("k", list(vocab))
        return trainrun.DNNClassifier(
            hidden_units=[3], feature_columns=[X, trainrun.indicator_column(k)],
            model_dir=tmp_path / folder, config=QUIET, **kw,
        )  # fmt: skip

    old = dnn("old", "abc")
    old.train(trainrun.input_fn(data(), response="y", batch_size=16), steps=5)
    w_old = old.get_variable_value("layers.0.weight")  # inputs: x, then one-hot a, b, c
    new = dnn("new", "cda", warm_start_from=trainrun.WarmStartSettings(tmp_path / "old"))
    new._build()
    w_new = new.network_.state_dict()["layers.0.weight"].numpy()  # x, then c, d, a
    assert w_new.shape == w_old.shape
    np.testing.assert_array_equal(w_new[:, 0], w_old[:, 0])  # x
    np.testing.assert_array_equal(w_new[:, 1], w_old[:, 3])  # c
    np.testing.assert_array_equal(w_new[:, 3], w_old[:, 1])  # a
    assert not any(np.array_equal(w_new[:, 2], w_old[:, j]) for j in range(4))  # d: fresh
    # the layers after the first match by name and shape
    np.testing.assert_array_equal(
        new.network_.state_dict()["layers.3.weight"].numpy(),
        old.get_variable_value("layers.3.weight"),
    )
