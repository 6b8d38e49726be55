"""BaselineClassifier and BaselineRegressor: the bar every model must beat.

As tf.estimator's baselines, they ignore the features and learn one bias per logit:
the classifier converges to the (weighted) class prior, the regressor to the
(weighted) label mean. They train, evaluate, checkpoint, export, log to TensorBoard and
record into training runs like every other estimator, and report the same metric keys, so
``evaluate()`` of a baseline is the row to beat in a comparison table.

>>> import pandas as pd, trainrun as tr
>>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 0, 1]})
>>> est = tr.BaselineClassifier(config=tr.RunConfig(progress=False, seed=0))
>>> est.train(tr.input_fn(df, response="y", epochs=None), steps=300)        # doctest: +SKIP
>>> float(est.predict_proba(df[["x"]])[0, 1])                               # doctest: +SKIP
0.25
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

from trainrun.estimators.base import Estimator
from trainrun.estimators.run_config import RunConfig
from trainrun.exceptions import UsageError

__all__ = ["BaselineClassifier", "BaselineRegressor"]


class _Baseline(Estimator):
    optimizer: Any

    def _columns(self) -> dict[str, list[Any]]:
        return {}

    def _network_config(self, units: int) -> dict[str, Any]:
        return {"type": "baseline", "units": units}

    def _make_network(self, config: dict[str, Any], columns: dict[str, list[Any]]) -> Any:
        from trainrun.modules.baseline import BaselineModel

        return BaselineModel(config["units"])

    def _make_transform(self, columns: dict[str, list[Any]]) -> Any:
        from trainrun.modules.baseline import RowsTransform

        return RowsTransform()

    def _optimizer_settings(self) -> list[tuple[str, Any]]:
        return [("all", self.optimizer)]

    def train(self, input_fn: Any, *args: Any, **kwargs: Any) -> Any:
        """As every estimator's ``train``; a fresh baseline first sets its bias to the exact
        (weighted) class prior or label mean over one pass of the input, so that the
        optimizer's steps only refine it."""
        self._build()
        if self.global_step_ == 0 and getattr(self, "_checkpoint_path", None) is None:
            self._init_bias(input_fn)
        return super().train(input_fn, *args, **kwargs)

    def _init_bias(self, input_fn: Any) -> None:
        import torch

        from trainrun.estimators.base import _checked_batches, _resolve_input_fn

        fn = copy.copy(_resolve_input_fn(input_fn))
        fn.epochs = 1  # one pass, even over an input that repeats forever
        n_classes = getattr(self.head_, "n_classes", None)
        total: Any = 0.0
        weight = 0.0
        for batch in _checked_batches(self._batches(fn, labels=True), "train"):
            y = batch.labels.double()
            if n_classes is not None:
                y = torch.nn.functional.one_hot(y.reshape(-1).long(), n_classes).double()
            y = y.reshape(len(y), -1)
            w = torch.ones(len(y), dtype=torch.float64)
            if batch.weights is not None:
                w = batch.weights.reshape(-1).double()
            total = total + (y * w[:, None]).sum(0)
            weight += float(w.sum())
        if weight <= 0:
            return  # train() reports the empty input
        mean = total / weight
        if n_classes == 2:
            p = mean[1].clamp(1e-6, 1 - 1e-6).reshape(1)
            value = torch.log(p / (1 - p))
        elif n_classes is not None:
            value = torch.log(mean.clamp_min(1e-6))
        else:
            value = mean
        network: Any = self.network_
        with torch.no_grad():
            network.bias.copy_(value.to(network.bias.dtype))

    def _declared_columns(self) -> list[Any] | None:
        return None  # fit(X, y) takes any columns: a baseline reads none of them

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # A baseline scores the prior by design: scikit-learn's score thresholds do not apply.
        for kind in (tags.classifier_tags, tags.regressor_tags):
            if kind is not None:
                kind.poor_score = True
        return tags


class BaselineClassifier(_Baseline):
    """Predicts the class prior learned from the labels (tf.estimator's BaselineClassifier).

    Two classes: one logit converging to ``log(p / (1 - p))`` of the (weighted) share of
    the positive class; more: one logit per class, softmax of them the prior. Metrics are
    the binary / multi-class heads' (``accuracy``, ``auc`` = 0.5, ``average_loss`` ...).
    The bias starts at the exact (weighted) prior over one pass of the training input;
    the optimizer (plain SGD by default) then only refines it. tf trains it from zero
    with FTRL instead; FTRL's accumulator would pull a non-zero start back towards zero.
    """

    _estimator_type = "classifier"

    def __init__(
        self,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        n_classes: int = 2,
        weight_column: Any = None,
        label_vocabulary: Sequence[str] | None = None,
        optimizer: Any = "SGD",
        config: RunConfig | None = None,
        loss_reduction: str = "sum_over_batch_size",
        warm_start_from: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.n_classes = n_classes
        self.weight_column = weight_column
        self.label_vocabulary = label_vocabulary
        self.optimizer = optimizer
        self.config = config
        self.loss_reduction = loss_reduction
        self.warm_start_from = warm_start_from

    def _validate_more(self) -> None:
        vocab, n = self.label_vocabulary, self.n_classes
        if vocab is not None and len(vocab) != n:
            raise UsageError(
                f"The 'label_vocabulary' parameter of {type(self).__name__} must be a list of "
                f"n_classes={n} distinct strings. Got {vocab!r} instead."
            )

    def _build_head(self) -> Any:
        from trainrun.modules.heads import make_classification_head

        return make_classification_head(self.n_classes, self.label_vocabulary, self.loss_reduction)


class BaselineRegressor(_Baseline):
    """Predicts the (weighted) mean of the labels (tf.estimator's BaselineRegressor)."""

    _estimator_type = "regressor"

    def __init__(
        self,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        label_dimension: int = 1,
        weight_column: Any = None,
        optimizer: Any = "SGD",
        config: RunConfig | None = None,
        loss_reduction: str = "sum_over_batch_size",
        warm_start_from: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.label_dimension = label_dimension
        self.weight_column = weight_column
        self.optimizer = optimizer
        self.config = config
        self.loss_reduction = loss_reduction
        self.warm_start_from = warm_start_from

    def _build_head(self) -> Any:
        from trainrun.modules.heads import RegressionHead

        return RegressionHead(self.label_dimension, self.loss_reduction)
