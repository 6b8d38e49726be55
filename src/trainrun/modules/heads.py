"""Heads: what a model's logits mean — labels in, loss, predictions and metrics out.

A head owns everything that depends on the kind of problem and nothing that
depends on the network: the estimator's network produces ``logits`` of width
``head.logits_dimension``, and the head turns them into a loss, tf.estimator's
prediction dictionaries, and evaluation metrics (through
:mod:`trainrun.modules.metrics`).

=====================  ==========  ============================  ==============================
head                   logits      loss                          predictions
=====================  ==========  ============================  ==============================
``BinaryHead``         ``[N, 1]``  sigmoid cross-entropy         logits, logistic, probabilities,
                                                                 class_ids, classes, all_class_ids,
                                                                 all_classes
``MultiClassHead``     ``[N, C]``  softmax cross-entropy         logits, probabilities, class_ids,
                                                                 classes, all_class_ids, all_classes
``RegressionHead``     ``[N, d]``  mean squared error            predictions
=====================  ==========  ============================  ==============================

``loss_reduction`` follows tf.estimator: ``"sum_over_batch_size"`` (default:
the weighted sum of per-example losses divided by the number of examples in the
batch) or ``"sum"`` (the weighted sum).

>>> import numpy as np, torch
>>> head = BinaryHead(label_vocabulary=["No", "Yes"])
>>> head.label_fn(np.array(["No", "Yes", "Yes"]))
tensor([0., 1., 1.])
>>> head.loss(torch.zeros(3, 1), head.label_fn(np.array(["No", "Yes", "Yes"])), None)
tensor(0.6931)
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainrun.exceptions import InputError

__all__ = [
    "LOSS_REDUCTIONS",
    "BinaryHead",
    "Head",
    "MultiClassHead",
    "RegressionHead",
    "head_from_config",
    "make_classification_head",
]

#: tf.estimator's names (``tf.losses.Reduction``) lower-cased; both spellings accepted.
LOSS_REDUCTIONS = ("sum_over_batch_size", "sum")


def normalize_loss_reduction(value: Any) -> str:
    """``"SUM_OVER_BATCH_SIZE"`` / ``"sum"`` ... -> the canonical lower-case name."""
    name = getattr(value, "name", value)  # an Enum-like from user code
    if isinstance(name, str) and name.lower() in LOSS_REDUCTIONS:
        return name.lower()
    raise ValueError(
        f"loss_reduction must be one of {list(LOSS_REDUCTIONS)} (tf.estimator's "
        f"SUM_OVER_BATCH_SIZE or SUM). Received: loss_reduction={value!r}"
    )


def _show(values: np.ndarray, limit: int = 5) -> str:
    shown = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
    more = "" if len(values) <= limit else f" ... ({len(values)} distinct)"
    return f"{shown}{more}"


class Head(abc.ABC):
    """Base class. Subclasses set ``kind`` and ``logits_dimension``."""

    kind: str = ""
    logits_dimension: int = 1
    prediction_keys: tuple[str, ...] = ()

    def __init__(self, loss_reduction: str = "sum_over_batch_size") -> None:
        self.loss_reduction = normalize_loss_reduction(loss_reduction)

    # ---------------------------------------------------------------- labels
    @abc.abstractmethod
    def label_fn(self, labels: np.ndarray) -> torch.Tensor: ...

    # ---------------------------------------------------------------- loss
    @abc.abstractmethod
    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-example loss, shape ``[N]``."""
        ...

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """The training loss of one batch, reduced as ``loss_reduction`` says."""
        per_example = self.unreduced_loss(logits, labels)
        if weights is not None:
            per_example = per_example * weights.reshape(-1)
        if self.loss_reduction == "sum":
            return per_example.sum()
        return per_example.mean()

    # ---------------------------------------------------------------- outputs
    def check_predict_keys(self, keys: Sequence[str] | str | None) -> list[str] | None:
        """Validate ``predict_keys`` (None: all keys)."""
        if keys is None:
            return None
        keys = [keys] if isinstance(keys, str) else list(keys)
        bad = [k for k in keys if k not in self.prediction_keys]
        if bad or not keys:
            raise ValueError(
                f"predict_keys must be some of {list(self.prediction_keys)}. "
                f"Received: predict_keys={keys!r}"
            )
        return keys

    @abc.abstractmethod
    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        """tf.estimator's prediction dictionary for a batch: each value has N rows."""
        ...

    @abc.abstractmethod
    def metrics(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None,
        loss: float,
    ) -> dict[str, float]:
        """Evaluation metrics over the whole evaluation set (tf.estimator's keys)."""
        ...

    def average_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> float:
        """Weighted mean per-example loss (tf.estimator's ``average_loss``)."""
        per_example = self.unreduced_loss(logits, labels)
        if weights is None:
            return float(per_example.mean())
        w = weights.reshape(-1)
        return float((per_example * w).sum() / w.sum().clamp_min(1e-12))

    # ---------------------------------------------------------------- config
    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]: ...

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class _ClassHead(Head):
    """Shared label handling for the two classification heads."""

    n_classes: int = 2

    def __init__(
        self,
        n_classes: int,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
    ) -> None:
        super().__init__(loss_reduction)
        self.n_classes = n_classes
        self.label_vocabulary = list(label_vocabulary) if label_vocabulary is not None else None
        if self.label_vocabulary is not None:
            if len(self.label_vocabulary) != n_classes:
                raise ValueError(
                    f"label_vocabulary must have n_classes={n_classes} entries. "
                    f"Received: label_vocabulary={self.label_vocabulary!r}"
                )
            if len(set(self.label_vocabulary)) != n_classes:
                raise ValueError(
                    "label_vocabulary must not repeat a label. "
                    f"Received: label_vocabulary={self.label_vocabulary!r}"
                )
        self._class_names = (
            [str(v) for v in self.label_vocabulary]
            if self.label_vocabulary is not None
            else [str(i) for i in range(n_classes)]
        )

    def class_ids(self, labels: np.ndarray) -> np.ndarray:
        """Raw labels -> int64 class ids in ``[0, n_classes)``, or a clear InputError."""
        labels = np.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise InputError(
                f"Labels must be one value per example; got an array of shape {labels.shape}."
            )
        if labels.dtype.kind == "O":
            import pandas as pd

            missing = pd.isna(labels)
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                raise InputError(
                    f"Labels contain missing values (first at row {row}). Drop those rows or "
                    "fill the labels."
                )
        if self.label_vocabulary is not None:
            import pandas as pd

            # Hash the distinct values once (fast on millions of rows), then map each as a
            # string, so that a vocabulary ["0", "1"] works on integer labels too.
            codes, uniques = pd.factorize(labels)
            index = {str(v): i for i, v in enumerate(self.label_vocabulary)}
            names = np.array([str(u) for u in uniques], dtype=object)
            mapped = np.array([index.get(u, -1) for u in names], dtype=np.int64)
            if (mapped < 0).any():
                bad = np.sort(names[mapped < 0].astype(str))
                raise InputError(
                    f"Labels {_show(bad)} are not in label_vocabulary {self.label_vocabulary}. "
                    "Fix the data or add the labels to label_vocabulary."
                )
            return mapped[codes]
        if labels.dtype.kind in "OUS":
            uniques = np.unique(labels.astype(str))
            raise InputError(
                f"Labels are strings ({_show(uniques)}) but no label_vocabulary was given. "
                f"Pass label_vocabulary={list(uniques.tolist())[: self.n_classes]!r} (in class "
                "order) or encode the labels as integers 0 .. n_classes-1."
            )
        if labels.dtype.kind == "b":
            labels = labels.astype(np.int64)
        if labels.dtype.kind == "f":
            if np.isnan(labels).any():
                raise InputError(
                    "Labels contain missing values (NaN). Drop those rows or fill the labels."
                )
            if not np.all(labels == np.round(labels)):
                bad = np.unique(labels[labels != np.round(labels)])
                raise InputError(
                    f"Labels must be integer class ids in [0, {self.n_classes}); got "
                    f"non-integer values {_show(bad)}."
                )
        ids = labels.astype(np.int64)
        out = (ids < 0) | (ids >= self.n_classes)
        if out.any():
            bad = np.unique(ids[out])
            raise InputError(
                f"Labels must be in [0, n_classes={self.n_classes}); got {_show(bad)}. "
                "Set n_classes to the number of classes, or pass label_vocabulary to map "
                "the labels."
            )
        return ids

    def _class_outputs(self, ids: torch.Tensor) -> dict[str, np.ndarray]:
        n = ids.shape[0]
        ids_np = ids.cpu().numpy().astype(np.int64).reshape(n, 1)
        names = np.asarray(self._class_names, dtype=object)
        return {
            "class_ids": ids_np,
            "classes": names[ids_np],
            "all_class_ids": np.broadcast_to(
                np.arange(self.n_classes, dtype=np.int64), (n, self.n_classes)
            ),
            "all_classes": np.broadcast_to(names, (n, self.n_classes)),
        }

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "n_classes": self.n_classes,
            "label_vocabulary": self.label_vocabulary,
            "loss_reduction": self.loss_reduction,
        }


class BinaryHead(_ClassHead):
    """Two classes, one logit: sigmoid cross-entropy (tf.estimator's BinaryClassHead)."""

    kind = "binary"
    logits_dimension = 1
    prediction_keys = (
        "logits", "logistic", "probabilities", "class_ids", "classes", "all_class_ids", "all_classes",
    )  # fmt: skip

    def __init__(
        self,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
    ) -> None:
        super().__init__(2, label_vocabulary, loss_reduction)

    def label_fn(self, labels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.class_ids(labels).astype(np.float32))

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            logits.reshape(-1), labels.reshape(-1), reduction="none"
        )

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        # The common case in one fused kernel: this sits on the training hot path.
        if weights is None and self.loss_reduction == "sum_over_batch_size":
            return F.binary_cross_entropy_with_logits(logits.reshape(-1), labels.reshape(-1))
        return super().loss(logits, labels, weights)

    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        logits = logits.detach().reshape(-1, 1)
        logistic = torch.sigmoid(logits)
        out = {
            "logits": logits.cpu().numpy(),
            "logistic": logistic.cpu().numpy(),
            "probabilities": torch.cat([1 - logistic, logistic], dim=1).cpu().numpy(),
        }
        out.update(self._class_outputs((logits[:, 0] > 0).long()))
        return out

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import binary_metrics

        w = None if weights is None else weights.reshape(-1)
        return binary_metrics(logits.reshape(-1), labels.reshape(-1), w, loss)


class MultiClassHead(_ClassHead):
    """``n_classes > 2`` classes: softmax cross-entropy (tf.estimator's MultiClassHead)."""

    kind = "multiclass"
    prediction_keys = (
        "logits",
        "probabilities",
        "class_ids",
        "classes",
        "all_class_ids",
        "all_classes",
    )

    def __init__(
        self,
        n_classes: int,
        label_vocabulary: Sequence[str] | None = None,
        loss_reduction: str = "sum_over_batch_size",
    ) -> None:
        super().__init__(n_classes, label_vocabulary, loss_reduction)
        self.logits_dimension = n_classes

    def label_fn(self, labels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.class_ids(labels))

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels.reshape(-1), reduction="none")

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        if weights is None and self.loss_reduction == "sum_over_batch_size":
            return F.cross_entropy(logits, labels.reshape(-1))
        return super().loss(logits, labels, weights)

    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        logits = logits.detach()
        out = {
            "logits": logits.cpu().numpy(),
            "probabilities": torch.softmax(logits, dim=1).cpu().numpy(),
        }
        out.update(self._class_outputs(logits.argmax(dim=1)))
        return out

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import multiclass_metrics

        w = None if weights is None else weights.reshape(-1)
        return multiclass_metrics(logits, labels.reshape(-1), w, loss)


class RegressionHead(Head):
    """Real-valued targets of width ``label_dimension``: mean squared error."""

    kind = "regression"
    prediction_keys = ("predictions",)

    def __init__(
        self, label_dimension: int = 1, loss_reduction: str = "sum_over_batch_size"
    ) -> None:
        super().__init__(loss_reduction)
        self.label_dimension = label_dimension
        self.logits_dimension = label_dimension

    def label_fn(self, labels: np.ndarray) -> torch.Tensor:
        labels = np.asarray(labels)
        if labels.dtype.kind in "OUSb":
            try:
                labels = labels.astype(np.float32)
            except (TypeError, ValueError):
                bad = [v for v in labels.reshape(-1)[:1000] if not _is_number(v)][:5]
                raise InputError(
                    f"Regression labels must be numbers; got values such as {bad!r}. "
                    "Convert the response column to numbers."
                ) from None
        labels = labels.astype(np.float32).reshape(len(labels), -1)
        if labels.shape[1] != self.label_dimension:
            raise InputError(
                f"Labels have {labels.shape[1]} values per example but "
                f"label_dimension={self.label_dimension}. Set label_dimension to match."
            )
        if np.isnan(labels).any():
            raise InputError(
                "Labels contain missing values (NaN). Drop those rows or fill the labels."
            )
        return torch.from_numpy(labels)

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # The squared error summed over label dimensions, one value per example.
        diff = logits - labels.reshape(logits.shape)
        return (diff * diff).sum(dim=1)

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        # As tf.estimator: the loss is taken over every (example, label dimension)
        # element, so sum_over_batch_size divides by batch size x label_dimension
        # and matches the evaluation's average_loss.
        if weights is None and self.loss_reduction == "sum_over_batch_size":
            return F.mse_loss(logits, labels.reshape(logits.shape))
        loss = super().loss(logits, labels, weights)
        if self.loss_reduction == "sum_over_batch_size":
            loss = loss / self.label_dimension
        return loss

    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        return {"predictions": logits.detach().cpu().numpy()}

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import regression_metrics

        w = None if weights is None else weights.reshape(-1)
        return regression_metrics(logits, labels.reshape(logits.shape), w, loss)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "label_dimension": self.label_dimension,
            "loss_reduction": self.loss_reduction,
        }


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def make_classification_head(
    n_classes: int,
    label_vocabulary: Sequence[str] | None = None,
    loss_reduction: str = "sum_over_batch_size",
) -> Head:
    """A binary head for ``n_classes == 2``, a multi-class head above that."""
    if n_classes == 2:
        return BinaryHead(label_vocabulary, loss_reduction)
    return MultiClassHead(n_classes, label_vocabulary, loss_reduction)


def head_from_config(config: Mapping[str, Any]) -> Head:
    """Rebuild a head from :meth:`Head.to_config` (used by checkpoints and exports)."""
    kind = config.get("type")
    if kind == "binary":
        return BinaryHead(config.get("label_vocabulary"), config["loss_reduction"])
    if kind == "multiclass":
        return MultiClassHead(
            config["n_classes"], config.get("label_vocabulary"), config["loss_reduction"]
        )
    if kind == "regression":
        return RegressionHead(config["label_dimension"], config["loss_reduction"])
    raise ValueError(f"Unknown head type in a saved config. Received: type={kind!r}")
