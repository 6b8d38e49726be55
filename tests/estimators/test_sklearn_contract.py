"""The scikit-learn contract on every estimator: check_estimator, Pipeline, GridSearchCV, CV.

scikit-learn's ``check_estimator`` runs in full on the estimators that infer their
columns from ``X`` (boosted trees, baselines, custom models with ``feature_columns=None``).
The canned estimators declare their feature columns, which fixes how many columns ``X``
has, so the checks that fit data of another width cannot apply to them: each such check
is named below, and the test verifies that it fails for exactly that reason (or passes).
"""

from __future__ import annotations

import functools
import logging
import re

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("xgboost")

from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

import trainrun  # noqa: E402
from trainrun.estimators._sklearn import NotFittedError  # noqa: E402

CFG = trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1)
X4 = [trainrun.numeric_column(f"x{i}") for i in range(4)]


def mlp(in_features: int, units: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(in_features, 16), torch.nn.ReLU(), torch.nn.Linear(16, units)
    )


#: Why a check cannot pass, and the error that proves it is that reason.
STOCHASTIC = (
    "minibatch gradient descent: weighting an example is not the same as repeating it to "
    "1e-7 (the exact-prior baselines and XGBoost pass this check)",
    r"not equivalent to fitting with removed or repeated",
)
FIXED_HEAD = (
    "the head is given whole, so its number of classes is fixed; the check fits 3 or 4 classes",
    r"has n_classes=2: pass a head|raised ValueError unexpectedly",
)
FIXED_COLUMNS = (
    "a canned estimator's feature columns (here x0..x3) fix the columns of X; the check fits "
    "data of another width",
    r"X has \d+ features|feature columns read 4 raw keys|needs the key 'x0'",
)
WIDTH_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_estimators_dtypes",
    "check_sample_weights_pandas_series", "check_sample_weights_not_an_array",
    "check_sample_weights_list", "check_all_zero_sample_weights_error",
    "check_sample_weights_shape", "check_sample_weights_not_overwritten",
    "check_sample_weight_equivalence_on_dense_data", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
    "check_classifiers_classes", "check_classifiers_train", "check_supervised_y_2d",
    "check_decision_proba_consistency", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1feature", "check_fit2d_1sample",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d", "check_regressors_train",
    "check_regressor_data_not_an_array", "check_regressors_int",
]  # fmt: skip
CLASS_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_sample_weights_list",
    "check_sample_weight_equivalence_on_dense_data", "check_dtype_object",
    "check_f_contiguous_array_estimator", "check_classifiers_classes",
    "check_classifiers_train", "check_supervised_y_2d", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit2d_predict1d",
]  # fmt: skip

ESTIMATORS = {
    "BoostedTreesClassifier": (lambda: trainrun.BoostedTreesClassifier(n_trees=10, config=CFG), {}),
    "BoostedTreesRegressor": (lambda: trainrun.BoostedTreesRegressor(n_trees=10, config=CFG), {}),
    "BoostedTreesClassifier(lightgbm)": (
        lambda: trainrun.BoostedTreesClassifier(n_trees=10, engine="lightgbm", config=CFG),
        {},
    ),
    "BoostedTreesRegressor(lightgbm)": (
        lambda: trainrun.BoostedTreesRegressor(n_trees=10, engine="lightgbm", config=CFG),
        {},
    ),
    "BaselineClassifier": (lambda: trainrun.BaselineClassifier(config=CFG), {}),
    "BaselineRegressor": (lambda: trainrun.BaselineRegressor(config=CFG), {}),
    "Estimator(RegressionHead)": (
        lambda: trainrun.Estimator(model_fn=mlp, head=trainrun.RegressionHead(), config=CFG),
        {"check_sample_weight_equivalence_on_dense_data": STOCHASTIC},
    ),
    "Estimator(BinaryHead)": (
        lambda: trainrun.Estimator(model_fn=mlp, head=trainrun.BinaryHead(), config=CFG),
        dict.fromkeys(CLASS_CHECKS, FIXED_HEAD),
    ),
    "DNNClassifier": (
        lambda: trainrun.DNNClassifier(hidden_units=[8], feature_columns=X4, config=CFG),
        dict.fromkeys(WIDTH_CHECKS, FIXED_COLUMNS),
    ),
    "LinearRegressor": (
        lambda: trainrun.LinearRegressor(feature_columns=X4, config=CFG),
        dict.fromkeys(WIDTH_CHECKS, FIXED_COLUMNS),
    ),
}


@pytest.fixture(autouse=True)
def _quiet():
    # fit() without model_dir logs nothing about its temporary folder (deleted at exit),
    # but the estimators' other notices would flood the output of ~60 checks each
    logging.getLogger("trainrun").setLevel(logging.ERROR)
    yield
    logging.getLogger("trainrun").setLevel(logging.NOTSET)


def _messages(exc: BaseException | None) -> str:
    """The error and the ones it wraps (scikit-learn re-raises with its own message)."""
    said = []
    while exc is not None and len(said) < 5:
        said.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(said)


def _name(check) -> str:
    return check.func.__name__ if isinstance(check, functools.partial) else check.__name__


@pytest.mark.filterwarnings("ignore")  # scikit-learn's checks warn by design (SkipTest, ...)
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_check_estimator(name, monkeypatch):
    factory, expected = ESTIMATORS[name]
    ran = 0
    for estimator, check in estimator_checks_generator(factory(), legacy=True):
        check_name = _name(check)
        # Quality checks train with fit()'s own budget; the others only need a model.
        if check_name.endswith("_train"):
            monkeypatch.delenv("TRAINRUN_MAX_STEPS", raising=False)
        else:
            monkeypatch.setenv("TRAINRUN_MAX_STEPS", "30")
        try:
            check(estimator)
        except Exception as exc:
            if type(exc).__name__ == "SkipTest":
                continue
            if check_name not in expected:
                raise AssertionError(f"{name}: {check_name} failed: {exc}") from exc
            reason, proof = expected[check_name]
            said = _messages(exc)
            assert re.search(proof, said), f"{check_name} failed otherwise: {said}"
        ran += 1
    assert ran > 40


def _cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :4].set_axis([f"x{i}" for i in range(4)], axis=1)
    return X, y


def test_pipeline_grid_search_and_cross_validation_on_a_canned_estimator():
    X, y = _cancer()
    est = trainrun.DNNClassifier(hidden_units=[8], feature_columns=X4, config=CFG)
    assert is_classifier(est) and is_regressor(trainrun.LinearRegressor(feature_columns=X4))
    pipe = make_pipeline(StandardScaler(), est)
    scores = cross_val_score(pipe, X.to_numpy(), y, cv=3, params={"dnnclassifier__steps": 60})
    assert scores.mean() > 0.8
    search = GridSearchCV(pipe, {"dnnclassifier__hidden_units": [[4], [8]]}, cv=2)
    search.fit(X.to_numpy(), y, dnnclassifier__steps=40)
    assert search.best_params_["dnnclassifier__hidden_units"] in ([4], [8])
    assert search.predict(X.to_numpy()[:5]).shape == (5,)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est


def test_fit_on_a_frame_keeps_names_classes_and_weights():
    X, y = _cancer()
    labels = np.where(y == 1, "benign", "malignant")
    est = trainrun.DNNClassifier(hidden_units=[8], feature_columns=X4, config=CFG)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict_proba(X)
    est.fit((X - X.mean()) / X.std(), labels)  # fit's own budget: 10 epochs, >= 200 steps
    assert list(est.classes_) == ["benign", "malignant"]
    assert list(est.feature_names_in_) == ["x0", "x1", "x2", "x3"] and est.n_features_in_ == 4
    Z = ((X - X.mean()) / X.std())[["x3", "x2", "x1", "x0"]]  # columns found by name
    proba = est.predict_proba(Z)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert est.score(Z, labels) > 0.85
    assert set(est.predict(Z.to_numpy()[:, ::-1])) <= {"benign", "malignant"}  # by position
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(Z.drop(columns=["x0"]))
    # weights change the model: all weight on one class pulls every prediction to it
    w = np.where(labels == "benign", 1.0, 1e-3)
    heavy = clone(est).fit((X - X.mean()) / X.std(), labels, sample_weight=w)
    assert heavy.predict_proba(Z)[:, 0].mean() > proba[:, 0].mean()


def test_each_fit_starts_fresh_and_tidies_its_previous_folder(tmp_path):
    X, y = _cancer()
    est = trainrun.BoostedTreesClassifier(n_trees=3, config=CFG)
    first = est.fit(X, y).model_dir_path
    assert first.is_dir() and est.global_step_ == 3
    second = est.fit(X, y).model_dir_path
    assert second != first and second.is_dir() and not first.exists()
    assert est.global_step_ == 3  # from scratch, not 3 more trees
    kept = trainrun.BoostedTreesClassifier(n_trees=3, model_dir=tmp_path / "kept", config=CFG)
    kept.fit(X, y)
    with pytest.raises(trainrun.ModelDirError, match="already holds a checkpoint.*train"):
        kept.fit(X, y)
