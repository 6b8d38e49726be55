"""DNNLinearCombinedClassifier / Regressor: wide (linear) and deep (DNN) parts, logits summed.

Each part has its own optimizer, as in tf.estimator: FTRL 0.2 for the linear
part, Adam 0.001 for the DNN part (see :mod:`trainrun.estimators.dnn` for why
Adam rather than tf's Adagrad). tf.estimator gives the wide part FTRL at
``min(0.005, 1 / sqrt(number of linear columns))``; at that rate it barely learns
(``bench/wide_deep_defaults.py``: on the churn data, batch 1,024, test AUC 0.830
against 0.846 with 0.2), so the plain linear models' 0.2 is used for both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from trainrun.estimators._kinds import ClassifierKind, RegressorKind
from trainrun.estimators.base import Estimator
from trainrun.estimators.run_config import RunConfig
from trainrun.exceptions import UsageError

__all__ = ["DNNLinearCombinedClassifier", "DNNLinearCombinedRegressor"]


def _as_list(cols: Any) -> list[Any]:
    if cols is None:
        return []
    return list(cols) if isinstance(cols, (list, tuple)) else [cols]


class _Combined(Estimator):
    # set by each family's __init__ (its constructor arguments, as scikit-learn keeps them)
    linear_feature_columns: Sequence[Any] | None
    linear_optimizer: Any
    linear_sparse_combiner: str
    dnn_feature_columns: Sequence[Any] | None
    dnn_optimizer: Any
    dnn_hidden_units: Sequence[int] | None
    dnn_activation_fn: Any
    dnn_dropout: float | None
    batch_norm: bool

    def _validate_more(self) -> None:
        cls = type(self).__name__
        if not _as_list(self.linear_feature_columns) and not _as_list(self.dnn_feature_columns):
            raise UsageError(
                f"{cls} needs linear_feature_columns or dnn_feature_columns (or both). "
                "Received: both empty."
            )
        if _as_list(self.dnn_feature_columns) and not self.dnn_hidden_units:
            raise UsageError(
                f"The 'dnn_hidden_units' parameter of {cls} must be a non-empty list of positive "
                f"ints when dnn_feature_columns are given. Got {self.dnn_hidden_units!r} instead."
            )

    def _columns(self) -> dict[str, list[Any]]:
        out = {}
        if _as_list(self.linear_feature_columns):
            out["linear"] = _as_list(self.linear_feature_columns)
        if _as_list(self.dnn_feature_columns):
            out["dnn"] = _as_list(self.dnn_feature_columns)
        return out

    def _network_config(self, units: int) -> dict[str, Any]:
        from trainrun.modules._activations import activation_name

        linear = dnn = None
        if _as_list(self.linear_feature_columns):
            linear = {
                "type": "linear",
                "units": units,
                "sparse_combiner": self.linear_sparse_combiner,
            }
        if _as_list(self.dnn_feature_columns):
            dnn = {
                "type": "dnn",
                "hidden_units": list(self.dnn_hidden_units or ()),
                "units": units,
                "activation_fn": activation_name(self.dnn_activation_fn) or self.dnn_activation_fn,
                "dropout": self.dnn_dropout or None,
                "batch_norm": self.batch_norm,
            }
        return {"type": "wide_deep", "units": units, "linear": linear, "dnn": dnn}

    def _optimizer_settings(self) -> list[tuple[str, Any]]:
        return [("linear", self.linear_optimizer), ("dnn", self.dnn_optimizer)]


class DNNLinearCombinedClassifier(ClassifierKind, _Combined):
    """Wide-and-deep classifier.

    >>> import trainrun as tr
    >>> contract = tr.categorical_column_with_vocabulary_list("contract", ["Month-to-month", "One year", "Two year"])
    >>> est = tr.DNNLinearCombinedClassifier(
    ...     linear_feature_columns=[contract],
    ...     dnn_feature_columns=[tr.numeric_column("tenure"), tr.indicator_column(contract)],
    ...     dnn_hidden_units=[32, 16], label_vocabulary=["No", "Yes"])
    """

    def __init__(
        self,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        linear_feature_columns: Sequence[Any] | None = None,
        linear_optimizer: Any = "Ftrl",
        dnn_feature_columns: Sequence[Any] | None = None,
        dnn_optimizer: Any = "Adam",
        dnn_hidden_units: Sequence[int] | None = None,
        dnn_activation_fn: Any = "relu",
        dnn_dropout: float | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        config: RunConfig | None = None,
        warm_start_from: str | os.PathLike[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
    ) -> None:
        self.model_dir = model_dir
        self.linear_feature_columns = linear_feature_columns
        self.linear_optimizer = linear_optimizer
        self.dnn_feature_columns = dnn_feature_columns
        self.dnn_optimizer = dnn_optimizer
        self.dnn_hidden_units = dnn_hidden_units
        self.dnn_activation_fn = dnn_activation_fn
        self.dnn_dropout = dnn_dropout
        self.n_classes = n_classes
        self.weight_column = weight_column
        self.label_vocabulary = label_vocabulary
        self.config = config
        self.warm_start_from = warm_start_from
        self.loss_reduction = loss_reduction
        self.batch_norm = batch_norm
        self.linear_sparse_combiner = linear_sparse_combiner


class DNNLinearCombinedRegressor(RegressorKind, _Combined):
    """Wide-and-deep regressor.

    >>> import trainrun as tr
    >>> est = tr.DNNLinearCombinedRegressor(linear_feature_columns=[tr.numeric_column("x")],
    ...                                     dnn_feature_columns=[tr.numeric_column("x")],
    ...                                     dnn_hidden_units=[8])
    """

    def __init__(
        self,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        linear_feature_columns: Sequence[Any] | None = None,
        linear_optimizer: Any = "Ftrl",
        dnn_feature_columns: Sequence[Any] | None = None,
        dnn_optimizer: Any = "Adam",
        dnn_hidden_units: Sequence[int] | None = None,
        dnn_activation_fn: Any = "relu",
        dnn_dropout: float | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        config: RunConfig | None = None,
        warm_start_from: str | os.PathLike[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
        standardize_labels: bool = True,
        batch_norm: bool = False,
        linear_sparse_combiner: str = "sum",
    ) -> None:
        self.model_dir = model_dir
        self.linear_feature_columns = linear_feature_columns
        self.linear_optimizer = linear_optimizer
        self.dnn_feature_columns = dnn_feature_columns
        self.dnn_optimizer = dnn_optimizer
        self.dnn_hidden_units = dnn_hidden_units
        self.dnn_activation_fn = dnn_activation_fn
        self.dnn_dropout = dnn_dropout
        self.label_dimension = label_dimension
        self.weight_column = weight_column
        self.config = config
        self.warm_start_from = warm_start_from
        self.loss_reduction = loss_reduction
        self.standardize_labels = standardize_labels
        self.batch_norm = batch_norm
        self.linear_sparse_combiner = linear_sparse_combiner
