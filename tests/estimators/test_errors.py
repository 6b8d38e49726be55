"""Bad input and bad settings: each a clear error naming the thing and the fix."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import FeatureColumnError, InputError, ModelDirError, NotTrainedError

X = fc.numeric_column("x")
K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
QUIET = trainrun.RunConfig(progress=False, seed=0)


def test_uniform_sentence_for_bad_hidden_units(tmp_path, frame):
    est = trainrun.DNNClassifier(hidden_units=[0, 16], feature_columns=[X], model_dir=tmp_path)
    with pytest.raises(ValueError) as err:
        est.train(trainrun.input_fn(frame, features=["x"], response="cls"), steps=1)
    assert str(err.value) == (
        "The 'hidden_units' parameter of DNNClassifier must be a non-empty list of positive "
        "ints. Got [0, 16] instead."
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_classes": 1}, "'n_classes' parameter of DNNClassifier must be an int >= 2"),
        ({"dropout": 1.5}, "'dropout' parameter of DNNClassifier must be a float in [0, 1)"),
        ({"activation_fn": "nope"}, "'activation_fn' parameter of DNNClassifier"),
        ({"label_vocabulary": ["a", "a"]}, "a list of distinct strings"),
        ({"label_vocabulary": ["a", "b", "c"]}, "a list of n_classes=2 distinct strings"),
        ({"loss_reduction": "mean"}, "'sum_over_batch_size' or 'sum'"),
        ({"feature_columns": []}, "'feature_columns' parameter of DNNClassifier"),
        (
            {"optimizer": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)},
            "'optimizer'",
        ),
    ],
)
def test_bad_parameters(kwargs, fragment, tmp_path, frame):
    params = {"hidden_units": [4], "feature_columns": [X], "model_dir": tmp_path, "config": QUIET}
    params.update(kwargs)
    est = trainrun.DNNClassifier(**params)  # the constructor only stores
    with pytest.raises(ValueError, match=None) as err:
        est.train(trainrun.input_fn(frame, features=["x"], response="cls"), steps=1)
    assert fragment in str(err.value)
    assert "Got " in str(err.value)


def test_combined_needs_some_columns_and_hidden_units(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x"], response="churn")
    est = trainrun.DNNLinearCombinedClassifier(model_dir=tmp_path / "a", config=QUIET)
    with pytest.raises(ValueError, match="linear_feature_columns or dnn_feature_columns"):
        est.train(inp, steps=1)
    est = trainrun.DNNLinearCombinedClassifier(dnn_feature_columns=[X], model_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="'dnn_hidden_units' parameter"):
        est.train(inp, steps=1)


def test_run_config_checks():
    with pytest.raises(ValueError, match="'keep_checkpoint_max' parameter of RunConfig"):
        trainrun.RunConfig(keep_checkpoint_max=-1)
    with pytest.raises(ValueError, match="'save_checkpoints_steps' parameter of RunConfig"):
        trainrun.RunConfig(save_checkpoints_steps=0)


def test_label_outside_n_classes(tmp_path, frame):
    est = trainrun.LinearClassifier(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    with pytest.raises(InputError, match=r"Labels must be in \[0, n_classes=2\); got \[2\]"):
        est.train(trainrun.input_fn(frame, features=["x"], response="cls"), steps=1)


def test_label_not_in_vocabulary(tmp_path, frame):
    est = trainrun.LinearClassifier(
        feature_columns=[X], label_vocabulary=["No", "Maybe"], model_dir=tmp_path, config=QUIET
    )
    with pytest.raises(InputError, match=r"Labels \['Yes'\] are not in label_vocabulary"):
        est.train(trainrun.input_fn(frame, features=["x"], response="churn"), steps=1)


def test_string_labels_without_vocabulary(tmp_path, frame):
    est = trainrun.DNNClassifier(hidden_units=[2], feature_columns=[X], model_dir=tmp_path)
    with pytest.raises(InputError, match=r"Pass label_vocabulary=\['No', 'Yes'\]"):
        est.train(trainrun.input_fn(frame, features=["x"], response="churn"), steps=1)


def test_regression_label_dimension_mismatch(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], label_dimension=2, model_dir=tmp_path)
    with pytest.raises(InputError, match="label_dimension=2"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)


def test_empty_data():
    with pytest.raises(InputError, match="no rows"):
        trainrun.input_fn(pd.DataFrame({"x": [], "y": []}), response="y")


def test_categorical_column_given_to_a_dnn(tmp_path, frame):
    est = trainrun.DNNClassifier(hidden_units=[2], feature_columns=[X, K], model_dir=tmp_path)
    with pytest.raises(FeatureColumnError, match="indicator_column"):
        est.train(trainrun.input_fn(frame, features=["x", "k"], response="cls"), steps=1)


def test_missing_feature_key(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[fc.numeric_column("xx")], model_dir=tmp_path)
    with pytest.raises(FeatureColumnError, match="'xx'"):
        est.train(trainrun.input_fn(frame, response="target"), steps=1)


def test_unseen_category_does_not_crash(tmp_path, frame):
    est = trainrun.LinearClassifier(
        feature_columns=[K], label_vocabulary=["No", "Yes"], model_dir=tmp_path, config=QUIET
    )
    est.train(trainrun.input_fn(frame, features=["k"], response="churn"), steps=2)
    new = pd.DataFrame({"k": ["zzz", "a"]})
    out = est.predict_frame(trainrun.input_fn(new, shuffle=False))
    assert len(out) == 2


def test_steps_and_max_steps(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    with pytest.raises(ValueError, match="not both"):
        est.train(inp, steps=1, max_steps=2)
    with pytest.raises(ValueError, match="steps=0"):
        est.train(inp, steps=0)


def test_not_trained(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    with pytest.raises(NotTrainedError, match="Call train"):
        est.evaluate(trainrun.input_fn(frame, features=["x"], response="target"))
    with pytest.raises(NotTrainedError):
        list(est.predict(trainrun.input_fn(frame, features=["x"])))


def test_evaluate_needs_labels_and_an_end(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=2)
    with pytest.raises(InputError, match="no response column"):
        est.evaluate(trainrun.input_fn(frame, features=["x"]))
    with pytest.raises(InputError, match="never end"):
        est.evaluate(trainrun.input_fn(frame, features=["x"], response="target", epochs=None))
    assert (
        est.evaluate(
            trainrun.input_fn(frame, features=["x"], response="target", epochs=None), steps=2
        )["global_step"]
        == 2
    )
    with pytest.raises(ValueError, match="predict_keys must be some of"):
        list(est.predict(trainrun.input_fn(frame, features=["x"]), predict_keys=["probabilities"]))


def test_incompatible_model_dir(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x", "k"], response="churn")
    first = trainrun.DNNClassifier(
        hidden_units=[4], feature_columns=[X], label_vocabulary=["No", "Yes"],
        model_dir=tmp_path, config=QUIET,
    )  # fmt: skip
    first.train(inp, steps=2)
    other_layers = trainrun.DNNClassifier(
        hidden_units=[8], feature_columns=[X], label_vocabulary=["No", "Yes"], model_dir=tmp_path
    )
    with pytest.raises(ModelDirError, match="incompatible model: its network differs"):
        other_layers.train(inp, steps=1)
    other_class = trainrun.LinearClassifier(
        feature_columns=[X], label_vocabulary=["No", "Yes"], model_dir=tmp_path
    )
    with pytest.raises(ModelDirError, match="it holds a DNNClassifier, not a LinearClassifier"):
        other_class.evaluate(inp)
    other_columns = trainrun.DNNClassifier(
        hidden_units=[4], feature_columns=[fc.indicator_column(K)],
        label_vocabulary=["No", "Yes"], model_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(ModelDirError, match="feature columns differ"):
        other_columns.train(inp, steps=1)


def test_changed_optimizer_warns_and_keeps_weights(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET).train(
        inp, steps=2
    )
    est = trainrun.LinearRegressor(
        feature_columns=[X], model_dir=tmp_path, optimizer="SGD", config=QUIET
    )
    with pytest.warns(UserWarning, match="optimizer state starts fresh"):
        est.train(inp, steps=1)
    assert est.global_step_ == 3


def test_model_dir_is_a_file(tmp_path, frame):
    path = tmp_path / "file"
    path.write_text("x")
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=path)
    with pytest.raises(ModelDirError, match="is a file"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)


def test_warm_start_from_nothing(tmp_path, frame):
    est = trainrun.LinearRegressor(
        feature_columns=[X], model_dir=tmp_path / "m", warm_start_from=tmp_path / "missing"
    )
    with pytest.raises(ModelDirError, match="Nothing exists at"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)


def test_max_steps_env_var(tmp_path, frame, monkeypatch):
    monkeypatch.setenv("TRAINRUN_MAX_STEPS", "3")
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    est.train(trainrun.input_fn(frame, features=["x"], response="target", epochs=None), steps=50)
    assert est.global_step_ == 3
    monkeypatch.setenv("TRAINRUN_MAX_STEPS", "zero")
    with pytest.raises(ValueError, match="TRAINRUN_MAX_STEPS must be a positive integer"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)


def test_input_fn_of_the_wrong_kind(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    with pytest.raises(InputError, match="input_fn must be an InputFn"):
        est.train(frame, steps=1)
    # tf.estimator's style: a function returning the input works too.
    est.train(lambda: trainrun.input_fn(frame, features=["x"], response="target"), steps=1)
    assert est.global_step_ == 1


def test_exported_model_errors(tmp_path):
    with pytest.raises(ModelDirError, match="is not a trainrun export"):
        trainrun.load_exported(tmp_path)


def test_temporary_model_dir(frame, caplog):
    est = trainrun.LinearRegressor(feature_columns=[X], config=QUIET)
    with caplog.at_level("WARNING", logger="trainrun"):
        est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)
    assert est.model_dir_path is not None and est.model_dir_path.is_dir()
    assert "temporary folder" in caplog.text
    assert os.path.basename(est.latest_checkpoint()) == "ckpt-1.json"


def test_custom_activation_trains_but_does_not_export(tmp_path, frame):
    est = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], activation_fn=lambda t: t.clamp(min=0),
        model_dir=tmp_path / "m", config=QUIET,
    )  # fmt: skip
    est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=2)
    with pytest.raises(ValueError, match="custom function"):
        est.export(tmp_path / "export")
    # a torch function by name round-trips
    named = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], activation_fn=torch.tanh,
        model_dir=tmp_path / "n", config=QUIET,
    )  # fmt: skip
    named.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=2)
    spec = trainrun.load_exported(named.export(tmp_path / "e2")).spec
    assert spec["network"]["activation_fn"] == "tanh"


def test_batch_norm_with_a_last_batch_of_one(tmp_path, frame):
    est = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], batch_norm=True, model_dir=tmp_path, config=QUIET
    )
    # 401 rows in batches of 50: the last batch holds one example.
    data = pd.concat([frame, frame.iloc[:1]])
    est.train(trainrun.input_fn(data, features=["x"], response="target", batch_size=50))
    assert est.global_step_ == 9


def test_set_params_rebuilds(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    est = trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], model_dir=tmp_path, config=QUIET
    )
    est.train(inp, steps=1)
    est.set_params(dropout=0.5)  # does not change the weights' shapes: restores and goes on
    est.train(inp, steps=1)
    assert est.global_step_ == 2 and est.network_.to_config()["dropout"] == 0.5
    est.set_params(hidden_units=[3])
    with pytest.raises(ModelDirError, match="network differs"):
        est.train(inp, steps=1)
    with pytest.raises(ValueError, match="has no parameter 'units'"):
        est.set_params(units=3)


def test_failed_restore_leaves_nothing_half_built(tmp_path, frame):
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    trainrun.DNNRegressor(
        hidden_units=[4], feature_columns=[X], model_dir=tmp_path, config=QUIET
    ).train(inp, steps=1)
    est = trainrun.DNNRegressor(
        hidden_units=[3], feature_columns=[X], model_dir=tmp_path, config=QUIET
    )
    for _ in range(2):  # the second attempt fails the same way: nothing was half-built
        with pytest.raises(ModelDirError):
            est.train(inp, steps=1)
    from trainrun.model_dir.checkpoints import list_checkpoints

    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-1.json"]


def test_set_params_keeps_a_temporary_model_dir(frame):
    inp = trainrun.input_fn(frame, features=["x"], response="target")
    est = trainrun.DNNRegressor(hidden_units=[4], feature_columns=[X], config=QUIET)
    est.train(inp, steps=2)
    first = est.model_dir_path
    est.set_params(dropout=0.1)
    est.train(inp, steps=1)
    assert est.model_dir_path == first and est.global_step_ == 3


def test_predict_warns_about_a_shuffled_input_and_predict_frame_refuses_it(tmp_path, frame):
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    est.train(trainrun.input_fn(frame, features=["x"], response="target"), steps=1)
    with pytest.warns(UserWarning, match="shuffle=False"):
        list(est.predict(trainrun.input_fn(frame, features=["x"])))
    # A frame in shuffled order would not join back to the data: refused, not returned.
    with pytest.raises(InputError, match=r"predict_frame\(\) needs the data's order"):
        est.predict_frame(trainrun.input_fn(frame, features=["x"]))
