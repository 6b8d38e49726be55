"""LinearClassifier and LinearRegressor: one weight per feature value, plus a bias."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from trainrun.estimators._kinds import ClassifierKind, RegressorKind
from trainrun.estimators.base import Estimator
from trainrun.estimators.run_config import RunConfig

__all__ = ["LinearClassifier", "LinearRegressor"]


class _Linear(Estimator):
    # set by each family's __init__ (its constructor arguments, as scikit-learn keeps them)
    feature_columns: Sequence[Any]
    optimizer: Any
    sparse_combiner: str

    def _columns(self) -> dict[str, list[Any]]:
        cols = self.feature_columns
        return {"linear": list(cols) if isinstance(cols, (list, tuple)) else [cols]}

    def _network_config(self, units: int) -> dict[str, Any]:
        return {"type": "linear", "units": units, "sparse_combiner": self.sparse_combiner}

    def _optimizer_settings(self) -> list[tuple[str, Any]]:
        return [("all", self.optimizer)]


class LinearClassifier(ClassifierKind, _Linear):
    """Logistic (``n_classes=2``) or softmax regression over feature columns.

    Arguments as tf.estimator.LinearClassifier. The optimizer defaults to FTRL
    with learning rate 0.2, as in tf.estimator.

    >>> import trainrun as tr
    >>> df = tr.load_churn()                                               # doctest: +SKIP
    >>> est = tr.LinearClassifier(feature_columns=[tr.numeric_column("tenure")],
    ...                           label_vocabulary=["No", "Yes"])
    >>> est.train(tr.input_fn(df, response="churn"), steps=100)            # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        feature_columns: Sequence[Any],
        model_dir: str | os.PathLike[str] | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        warm_start_from: str | os.PathLike[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
        sparse_combiner: str = "sum",
    ) -> None:
        self.feature_columns = feature_columns
        self.model_dir = model_dir
        self.n_classes = n_classes
        self.weight_column = weight_column
        self.label_vocabulary = label_vocabulary
        self.optimizer = optimizer
        self.config = config
        self.warm_start_from = warm_start_from
        self.loss_reduction = loss_reduction
        self.sparse_combiner = sparse_combiner


class LinearRegressor(RegressorKind, _Linear):
    """Linear regression over feature columns (squared error), ``label_dimension`` targets.

    >>> import trainrun as tr
    >>> est = tr.LinearRegressor(feature_columns=[tr.numeric_column("x")])
    """

    def __init__(
        self,
        *,
        feature_columns: Sequence[Any],
        model_dir: str | os.PathLike[str] | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        optimizer: Any = "Ftrl",
        config: RunConfig | None = None,
        warm_start_from: str | os.PathLike[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
        standardize_labels: bool = True,
        sparse_combiner: str = "sum",
    ) -> None:
        self.feature_columns = feature_columns
        self.model_dir = model_dir
        self.label_dimension = label_dimension
        self.weight_column = weight_column
        self.optimizer = optimizer
        self.config = config
        self.warm_start_from = warm_start_from
        self.loss_reduction = loss_reduction
        self.standardize_labels = standardize_labels
        self.sparse_combiner = sparse_combiner
