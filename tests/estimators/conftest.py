"""Small data sets and estimator factories shared by the estimator tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun.feature_columns as fc
from trainrun.estimators import (
    DNNClassifier,
    DNNLinearCombinedClassifier,
    DNNLinearCombinedRegressor,
    DNNRegressor,
    LinearClassifier,
    LinearRegressor,
    RunConfig,
)
from trainrun.inputs import input_fn


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine is small and shared: tiny models run faster (and far steadier)
    # on one intra-op thread than on two oversubscribed ones.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """x (numeric), k (3 categories), a binary 'Yes'/'No' label, a 3-class label, a target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) - 0.3
    df = pd.DataFrame({"x": x, "k": k})
    df["churn"] = np.where(score > 0, "Yes", "No")
    df["cls"] = np.digitize(score, [-1.0, 1.0]).astype(np.int64)  # 0, 1, 2
    df["target"] = 3.0 * x + np.where(k == "b", 2.0, 0.0) + rng.normal(scale=0.1, size=n)
    df["w"] = rng.uniform(0.5, 2.0, size=n)
    return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


K = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
X = fc.numeric_column("x")
CFG = RunConfig(seed=0, progress=False, log_step_count_steps=5, save_summary_steps=5)

#: name -> (factory(model_dir, **overrides), response column)
ESTIMATORS = {
    "LinearClassifier": (
        lambda d, **kw: LinearClassifier(
            feature_columns=[X, K], label_vocabulary=["No", "Yes"], model_dir=d, config=CFG, **kw
        ),
        "churn",
    ),
    "LinearRegressor": (
        lambda d, **kw: LinearRegressor(feature_columns=[X, K], model_dir=d, config=CFG, **kw),
        "target",
    ),
    "DNNClassifier": (
        lambda d, **kw: DNNClassifier(
            hidden_units=[8, 4],
            feature_columns=[X, fc.indicator_column(K)],
            n_classes=3,
            dropout=0.1,
            model_dir=d,
            config=CFG,
            **kw,
        ),
        "cls",
    ),
    "DNNRegressor": (
        lambda d, **kw: DNNRegressor(
            hidden_units=[8],
            feature_columns=[X, fc.embedding_column(K, 2)],
            batch_norm=True,
            model_dir=d,
            config=CFG,
            **kw,
        ),
        "target",
    ),
    "DNNLinearCombinedClassifier": (
        lambda d, **kw: DNNLinearCombinedClassifier(
            linear_feature_columns=[K],
            dnn_feature_columns=[X, fc.indicator_column(K)],
            dnn_hidden_units=[8],
            label_vocabulary=["No", "Yes"],
            model_dir=d,
            config=CFG,
            **kw,
        ),
        "churn",
    ),
    "DNNLinearCombinedRegressor": (
        lambda d, **kw: DNNLinearCombinedRegressor(
            linear_feature_columns=[X, K],
            dnn_feature_columns=[X],
            dnn_hidden_units=[4],
            model_dir=d,
            config=CFG,
            **kw,
        ),
        "target",
    ),
}


def train_input(df: pd.DataFrame, response: str, **kw):
    kw.setdefault("batch_size", 32)
    kw.setdefault("seed", 0)
    return input_fn(df, features=["x", "k"], response=response, **kw)


def eval_input(df: pd.DataFrame, response: str | None):
    return input_fn(df, features=["x", "k"], response=response, batch_size=100, shuffle=False)


@pytest.fixture
def factories():
    return ESTIMATORS


@pytest.fixture(name="train_input")
def _train_input_fixture():
    return train_input


@pytest.fixture(name="eval_input")
def _eval_input_fixture():
    return eval_input
