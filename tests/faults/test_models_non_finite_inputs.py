"""inf and -inf in features, labels and weights: an InputError naming the column and the row,
raised before any step, never a NanLossError that blames the learning rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import InputError, NanLossError

QUIET = trainrun.RunConfig(progress=False, seed=0)
X = fc.numeric_column("x")
Z = fc.numeric_column("z")


def _frame(n: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.normal(size=n),
            "y": 2 * x + 0.1,
            "cls": (x > 0).astype(int),
            "w": np.ones(n),
        }
    )


def _poison(frame: pd.DataFrame, column: str, value: float, row: int = 7) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(np.float64)
    out.loc[row, column] = value
    return out


def _estimators(tmp_path: Path) -> dict[str, trainrun.Estimator]:
    return {
        "linear-regressor": trainrun.LinearRegressor(
            feature_columns=[X, Z], model_dir=tmp_path / "lr", config=QUIET
        ),
        "dnn-classifier": trainrun.DNNClassifier(
            hidden_units=[4], feature_columns=[X, Z], model_dir=tmp_path / "dnn", config=QUIET
        ),
    }


def _response(name: str) -> str:
    return "y" if name == "linear-regressor" else "cls"


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("name", ["linear-regressor", "dnn-classifier"])
def test_inf_in_a_feature_is_an_input_error_in_train_evaluate_and_predict(
    tmp_path: Path, name: str, value: float
) -> None:
    est = _estimators(tmp_path)[name]
    clean, bad = _frame(), _poison(_frame(), "z", value)
    response = _response(name)

    with pytest.raises(InputError) as info:
        est.train(trainrun.input_fn(bad, features=["x", "z"], response=response), steps=3)
    message = str(info.value)
    assert "Numeric column 'z'" in message and "first at row 7" in message
    assert f"Received: z[7]={value}" in message
    assert not isinstance(info.value, NanLossError)
    assert not (Path(est.model_dir) / "checkpoint.json").exists()  # refused before step 1

    est.train(trainrun.input_fn(clean, features=["x", "z"], response=response), steps=3)
    with pytest.raises(InputError, match=r"Numeric column 'z' has 1 row with infinite"):
        est.evaluate(trainrun.input_fn(bad, features=["x", "z"], response=response))
    with pytest.raises(InputError, match=r"Numeric column 'z' has 1 row with infinite"):
        est.predict_frame(trainrun.input_fn(bad, features=["x", "z"], shuffle=False))
    # the same data made finite goes through: the check refuses only what is wrong
    fixed = bad.replace([np.inf, -np.inf], 0.0)
    out = est.predict_frame(trainrun.input_fn(fixed, features=["x", "z"], shuffle=False))
    assert len(out) == len(fixed)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("name", ["linear-regressor", "dnn-classifier"])
def test_inf_in_the_labels_is_an_input_error_naming_the_response(
    tmp_path: Path, name: str, value: float
) -> None:
    est = _estimators(tmp_path)[name]
    response = _response(name)
    bad = _poison(_frame(), response, value, row=11)
    with pytest.raises(InputError) as info:
        est.train(trainrun.input_fn(bad, features=["x", "z"], response=response), steps=3)
    assert f"The response '{response}'" in str(info.value)
    assert f"Received: {response}[11]={value}" in str(info.value)

    est.train(trainrun.input_fn(_frame(), features=["x", "z"], response=response), steps=3)
    with pytest.raises(InputError, match=f"The response '{response}' has 1 row"):
        est.evaluate(trainrun.input_fn(bad, features=["x", "z"], response=response))


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300])
def test_a_non_finite_weight_is_an_input_error_naming_the_weight_column(
    tmp_path: Path, value: float
) -> None:
    est = trainrun.LinearRegressor(
        feature_columns=[X], weight_column="w", model_dir=tmp_path, config=QUIET
    )
    bad = _poison(_frame(), "w", value, row=3)
    with pytest.raises(InputError) as info:
        est.train(trainrun.input_fn(bad, features=["x", "w"], response="y"), steps=3)
    assert "The weight column 'w'" in str(info.value)
    assert f"Received: w[3]={value!r}" in str(info.value)
    assert ("beyond float32's range" in str(info.value)) == np.isfinite(value)

    est.train(trainrun.input_fn(_frame(), features=["x", "w"], response="y"), steps=3)
    with pytest.raises(InputError, match="The weight column 'w'"):
        est.evaluate(trainrun.input_fn(bad, features=["x", "w"], response="y"))


def test_a_feature_beyond_float32_range_is_named_as_such(tmp_path: Path) -> None:
    est = trainrun.LinearRegressor(feature_columns=[X], model_dir=tmp_path, config=QUIET)
    bad = _poison(_frame(), "x", 1e39, row=2)  # finite in float64, inf in float32
    with pytest.raises(InputError, match=r"Numeric column 'x' has 1 row with values beyond"):
        est.train(trainrun.input_fn(bad, features=["x"], response="y"), steps=3)


def test_a_normalizer_that_yields_inf_is_named(tmp_path: Path) -> None:
    logged = fc.numeric_column("x", normalizer_fn=lambda t: t.log())  # log(0) = -inf
    est = trainrun.LinearRegressor(feature_columns=[logged], model_dir=tmp_path, config=QUIET)
    frame = _frame().assign(x=lambda d: d["x"].abs() + 1.0)
    frame.loc[4, "x"] = 0.0
    with pytest.raises(InputError, match=r"'x': normalizer_fn turned 1 row into inf or NaN"):
        est.train(trainrun.input_fn(frame, features=["x"], response="y"), steps=3)


def test_a_bucketized_column_still_takes_inf_into_its_edge_buckets(tmp_path: Path) -> None:
    buckets = fc.bucketized_column(X, boundaries=[-1.0, 0.0, 1.0])
    est = trainrun.LinearRegressor(feature_columns=[buckets], model_dir=tmp_path, config=QUIET)
    frame = _poison(_poison(_frame(), "x", np.inf, row=1), "x", -np.inf, row=2)
    est.train(trainrun.input_fn(frame, features=["x"], response="y"), steps=3)
    out = est.predict_frame(trainrun.input_fn(frame.iloc[:3], features=["x"], shuffle=False))
    assert np.isfinite(out["predictions"].map(lambda v: np.asarray(v).item())).all()


def test_inf_in_a_streamed_csv_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _poison(_frame(200), "z", np.inf, row=150).to_csv(path, index=False)  # written as "inf"
    est = trainrun.LinearRegressor(
        feature_columns=[X, Z], model_dir=tmp_path / "model", config=QUIET
    )
    with pytest.raises(InputError, match=r"Numeric column 'z' has 1 row with infinite"):
        est.train(trainrun.input_fn(str(path), response="y", chunk_size=64, shuffle=False))


@pytest.mark.parametrize("value", [np.inf, 1e300])
def test_a_non_finite_weight_of_a_weighted_column_is_an_input_error(
    tmp_path: Path, value: float
) -> None:
    ids = fc.categorical_column_with_vocabulary_list("k", ["a", "b"])
    weighted = fc.weighted_categorical_column(ids, "kw")
    est = trainrun.LinearRegressor(feature_columns=[weighted], model_dir=tmp_path, config=QUIET)
    frame = pd.DataFrame({"k": ["a", "b"] * 8, "kw": np.ones(16), "y": np.arange(16.0)})
    frame.loc[5, "kw"] = value
    with pytest.raises(InputError, match=r"Weighted column .* in 'kw'.*Received: kw\[5\]=inf"):
        est.train(trainrun.input_fn(frame, features=["k", "kw"], response="y"), steps=2)
