"""More of tf.estimator's heads: multi-label, Poisson regression, binary with thresholds.

=============================  ==========  ===========================  =========================
head                           logits      loss                         predictions
=============================  ==========  ===========================  =========================
``BinaryClassHead``            ``[N, 1]``  sigmoid cross-entropy        as ``BinaryHead``
(``thresholds=[...]``)                                                  (metrics add accuracy,
                                                                        precision and recall at
                                                                        each threshold)
``MultiLabelHead``             ``[N, C]``  sigmoid cross-entropy per    logits, probabilities,
                                           label, summed over labels    all_class_ids, all_classes
``PoissonRegressionHead``      ``[N, d]``  Poisson negative log-        logits, predictions
                                           likelihood (log link)        (``exp(logits)``)
=============================  ==========  ===========================  =========================

Metric names follow tf.estimator: ``accuracy/positive_threshold_0.7``,
``precision/positive_threshold_0.7``, ``recall/positive_threshold_0.7``; the multi-label
head adds ``auc/<class>`` and ``auc_precision_recall/<class>`` per class.

Use them with the custom-model estimator, ``trainrun.Estimator(model_fn=..., head=...)``.

>>> import numpy as np, torch
>>> head = MultiLabelHead(3)
>>> head.label_fn(np.array([[0, 2], [1]], dtype=object)).tolist()
[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
>>> PoissonRegressionHead().predictions(torch.zeros(2, 1))["predictions"].ravel().tolist()
[1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainrun.exceptions import InputError, UsageError
from trainrun.modules.heads import BinaryHead, Head

__all__ = [
    "EXTRA_HEADS",
    "BinaryClassHead",
    "MultiLabelHead",
    "PoissonRegressionHead",
    "extra_head_from_config",
]


def _check_thresholds(thresholds: Sequence[float] | None) -> list[float]:
    values = list(thresholds or ())
    for t in values:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < float(t) < 1:
            raise UsageError(
                f"thresholds must be numbers strictly between 0 and 1. Received: thresholds={thresholds!r}"
            )
    return [float(t) for t in values]


class BinaryClassHead(BinaryHead):
    """tf.estimator's ``BinaryClassHead`` with ``thresholds``: BinaryHead's loss,
    predictions and metrics, plus accuracy, precision and recall at each threshold.

    >>> import torch
    >>> head = BinaryClassHead(thresholds=[0.3, 0.7])
    >>> m = head.metrics(torch.tensor([[2.0], [0.0]]), torch.tensor([[1.0], [0.0]]), None, 0.5)
    >>> m["precision/positive_threshold_0.3"], m["recall/positive_threshold_0.7"]
    (0.5, 1.0)
    """

    kind = "binary_thresholds"

    def __init__(
        self,
        label_vocabulary: Sequence[str] | None = None,
        thresholds: Sequence[float] | None = None,
        loss_reduction: str = "sum_over_batch_size",
    ) -> None:
        super().__init__(label_vocabulary, loss_reduction)
        self.thresholds = _check_thresholds(thresholds)

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import binary_threshold_metrics

        w = None if weights is None else self.example_weights(weights, logits.shape[0])
        return binary_threshold_metrics(
            logits.detach().reshape(-1), labels.reshape(-1), w, loss, self.thresholds
        )

    def to_config(self) -> dict[str, Any]:
        return {**super().to_config(), "thresholds": self.thresholds}


class MultiLabelHead(Head):
    """``n_classes`` independent yes/no labels per example (tf.estimator's MultiLabelHead).

    Labels are a multi-hot ``[N, n_classes]`` array of 0/1, or per example a list of
    class ids (or of names from ``label_vocabulary``). Loss: sigmoid cross-entropy summed
    over the labels of an example. Metrics: ``auc`` and ``auc_precision_recall`` over all
    (example, label) pairs, the same per class (``auc/<class>``), and accuracy, precision
    and recall at each of ``thresholds`` (default 0.5).
    """

    kind = "multi_label"
    prediction_keys = ("logits", "probabilities", "all_class_ids", "all_classes")

    def __init__(
        self,
        n_classes: int,
        label_vocabulary: Sequence[str] | None = None,
        thresholds: Sequence[float] | None = None,
        loss_reduction: str = "sum_over_batch_size",
    ) -> None:
        super().__init__(loss_reduction)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise UsageError(
                f"MultiLabelHead needs n_classes >= 2. Received: n_classes={n_classes!r}"
            )
        self.n_classes = n_classes
        self.logits_dimension = n_classes
        self.label_vocabulary = (
            None if label_vocabulary is None else [str(v) for v in label_vocabulary]
        )
        if self.label_vocabulary is not None and len(set(self.label_vocabulary)) != n_classes:
            raise UsageError(
                f"label_vocabulary must hold n_classes={n_classes} distinct names. "
                f"Received: label_vocabulary={label_vocabulary!r}"
            )
        self.thresholds = _check_thresholds(thresholds if thresholds is not None else [0.5])
        self._names = self.label_vocabulary or [str(i) for i in range(n_classes)]

    def label_fn(self, labels: np.ndarray) -> torch.Tensor:
        arr = np.asarray(labels)
        n = len(arr)
        if arr.dtype != object and arr.ndim == 2:
            if arr.shape[1] != self.n_classes:
                raise InputError(
                    f"Multi-hot labels need n_classes={self.n_classes} columns. "
                    f"Received: labels of shape {arr.shape}"
                )
            out = arr.astype(np.float32)
            if not np.isin(out, (0.0, 1.0)).all():
                raise InputError(
                    "Multi-hot labels must be 0 or 1. Received: values such as "
                    f"{np.unique(out[~np.isin(out, (0.0, 1.0))])[:5].tolist()}"
                )
            return torch.from_numpy(out)
        index = {name: i for i, name in enumerate(self._names)}
        out = np.zeros((n, self.n_classes), dtype=np.float32)
        for row, value in enumerate(arr.reshape(n, -1) if arr.dtype != object else arr):
            items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            for item in items:
                out[row, self._class_index(item, index)] = 1.0
        return torch.from_numpy(out)

    def _class_index(self, item: Any, index: Mapping[str, int]) -> int:
        if self.label_vocabulary is not None:
            i = index.get(str(item))
            if i is None:
                raise InputError(
                    f"Label {item!r} is not in label_vocabulary {self.label_vocabulary}. Fix "
                    "the data or add it to label_vocabulary."
                )
            return i
        try:
            i = int(item)
        except (TypeError, ValueError):
            raise InputError(
                f"Multi-label labels are class ids 0 .. {self.n_classes - 1} (or names with "
                f"label_vocabulary). Received: {item!r}"
            ) from None
        if not 0 <= i < self.n_classes:
            raise InputError(
                f"Multi-label class ids must be in [0, n_classes={self.n_classes}). Received: {i}"
            )
        return i

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_label = F.binary_cross_entropy_with_logits(
            logits, labels.reshape(logits.shape), reduction="none"
        )
        return per_label.sum(dim=1)

    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        logits = logits.detach()
        n = logits.shape[0]
        names = np.asarray(self._names, dtype=object)
        return {
            "logits": logits.cpu().numpy(),
            "probabilities": torch.sigmoid(logits).cpu().numpy(),
            "all_class_ids": np.broadcast_to(
                np.arange(self.n_classes, dtype=np.int64), (n, self.n_classes)
            ),
            "all_classes": np.broadcast_to(names, (n, self.n_classes)),
        }

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import multi_label_metrics

        logits = logits.detach()
        w = None if weights is None else self.example_weights(weights, logits.shape[0])
        return multi_label_metrics(
            logits, labels.reshape(logits.shape), w, loss, self._names, self.thresholds
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "n_classes": self.n_classes,
            "label_vocabulary": self.label_vocabulary,
            "thresholds": self.thresholds,
            "loss_reduction": self.loss_reduction,
        }


class PoissonRegressionHead(Head):
    """Counts: a log link and the Poisson loss (tf.estimator's PoissonRegressionHead).

    ``predictions`` is ``exp(logits)``, the expected count; the loss per value is the
    full Poisson negative log-likelihood ``exp(logit) - label * logit + log(label!)``
    (tf's ``compute_full_loss=True``; Stirling's approximation for the factorial).
    Labels must be non-negative numbers. Metrics: tf's regression keys, with
    ``average_loss`` in the head's own (Poisson) units, and ``poisson_deviance`` (the
    weighted mean unit deviance, scikit-learn's ``mean_poisson_deviance``).
    """

    kind = "poisson_regression"
    prediction_keys = ("logits", "predictions")

    def __init__(
        self, label_dimension: int = 1, loss_reduction: str = "sum_over_batch_size"
    ) -> None:
        super().__init__(loss_reduction)
        self.label_dimension = label_dimension
        self.logits_dimension = label_dimension

    def label_fn(self, labels: np.ndarray) -> torch.Tensor:
        arr = np.asarray(labels)
        try:
            out = arr.astype(np.float32).reshape(len(arr), -1)
        except (TypeError, ValueError):
            raise InputError(
                "Poisson regression labels must be numbers (counts). Received: values such as "
                f"{arr.reshape(-1)[:3].tolist()!r}"
            ) from None
        if out.shape[1] != self.label_dimension:
            raise InputError(
                f"Labels have {out.shape[1]} values per example but "
                f"label_dimension={self.label_dimension}. Set label_dimension to match."
            )
        if not np.isfinite(out).all() or (out < 0).any():
            bad = out[~np.isfinite(out) | (out < 0)]
            raise InputError(
                "Poisson regression labels are counts and must be finite and >= 0. "
                f"Received: values such as {np.unique(bad)[:5].tolist()}"
            )
        return torch.from_numpy(out)

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = labels.reshape(logits.shape)
        per_value = F.poisson_nll_loss(logits, y, log_input=True, full=True, reduction="none")
        return per_value.sum(dim=1)

    def loss(self, logits, labels, weights):
        per_example = self.unreduced_loss(logits, labels)
        if weights is not None:
            per_example = per_example * weights.reshape(-1)
        if self.loss_reduction == "sum":
            return per_example.sum()
        return per_example.mean() / self.label_dimension

    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        logits = logits.detach()
        return {"logits": logits.cpu().numpy(), "predictions": torch.exp(logits).cpu().numpy()}

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import poisson_metrics

        logits = logits.detach()
        w = None if weights is None else self.example_weights(weights, logits.shape[0])
        return poisson_metrics(logits, labels.reshape(logits.shape), w, loss)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "label_dimension": self.label_dimension,
            "loss_reduction": self.loss_reduction,
        }


def extra_head_from_config(config: Mapping[str, Any]) -> Head | None:
    """Rebuild one of this module's heads from its ``to_config()``, or None for another type."""
    kind = config.get("type")
    reduction = config.get("loss_reduction", "sum_over_batch_size")
    if kind == BinaryClassHead.kind:
        return BinaryClassHead(config.get("label_vocabulary"), config.get("thresholds"), reduction)
    if kind == MultiLabelHead.kind:
        return MultiLabelHead(
            config["n_classes"], config.get("label_vocabulary"), config.get("thresholds"), reduction
        )
    if kind == PoissonRegressionHead.kind:
        return PoissonRegressionHead(config.get("label_dimension", 1), reduction)
    return None


#: Head types this module adds, by their ``to_config()["type"]``.
EXTRA_HEADS = (BinaryClassHead.kind, MultiLabelHead.kind, PoissonRegressionHead.kind)
