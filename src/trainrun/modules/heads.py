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

from trainrun.exceptions import InputError, ModelDirError, UsageError

__all__ = [
    "LOSS_REDUCTIONS",
    "label_vocabulary_problem",
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
    raise UsageError(
        f"loss_reduction must be one of {list(LOSS_REDUCTIONS)} (tf.estimator's "
        f"SUM_OVER_BATCH_SIZE or SUM). Received: loss_reduction={value!r}"
    )


def label_vocabulary_problem(vocabulary: Any, n_classes: Any) -> str | None:
    """What ``label_vocabulary`` must be, when it is not that (None when it is fine).

    The one owner of this rule: the heads and the classifiers' settings checks call it.

    >>> label_vocabulary_problem(["No", "Yes", "Maybe"], 2)
    'a list of n_classes=2 distinct strings'
    """
    if vocabulary is None:
        return None
    if (
        not isinstance(vocabulary, (list, tuple))
        or not all(isinstance(v, str) for v in vocabulary)
        or len(set(vocabulary)) != len(vocabulary)
    ):
        return "a list of distinct strings or None"
    if len(vocabulary) != n_classes:
        return f"a list of n_classes={n_classes} distinct strings"
    return None


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
            per_example = per_example * self.example_weights(weights, per_example.shape[0])
        if self.loss_reduction == "sum":
            return per_example.sum()
        return per_example.mean()

    def reported_loss(
        self,
        objective: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """The loss shown to people (progress, history, ``evaluate``): by default the objective.

        A head that optimises in other units (a regression head on a standardised target)
        reports the loss in the target's own units instead.
        """
        return objective

    #: The widths a weight column may have: 1 (one weight per example), or more.
    def weight_widths(self) -> tuple[int, ...]:
        return (1,)

    def example_weights(self, weights: torch.Tensor, n: int) -> torch.Tensor:
        """Weights ``[N]``, ``[N, 1]`` (or ``[N, k]`` where the head allows) as ``[N]`` / ``[N, k]``.

        Any other shape is refused: applying weights to the wrong rows would give a
        silently wrong loss.
        """
        w = weights
        if w.dim() == 2 and w.shape[1] == 1:
            w = w[:, 0]
        ok = w.shape[0] == n and (
            w.dim() == 1 or (w.dim() == 2 and w.shape[1] in self.weight_widths())
        )
        if not ok:
            widths = " or ".join(f"[N, {k}]" for k in self.weight_widths())
            raise InputError(
                f"The weight column must hold one weight per example ([N]) or per label "
                f"dimension ({widths}) for {n} examples. Fix the weight column's shape. "
                f"Received: weights of shape {list(weights.shape)}"
            )
        return w

    # ---------------------------------------------------------------- outputs
    def check_predict_keys(self, keys: Sequence[str] | str | None) -> list[str] | None:
        """Validate ``predict_keys`` (None: all keys)."""
        if keys is None:
            return None
        keys = [keys] if isinstance(keys, str) else list(keys)
        bad = [k for k in keys if k not in self.prediction_keys]
        if bad or not keys:
            raise UsageError(
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
        w = self.example_weights(weights, per_example.shape[0])
        if w.dim() < per_example.dim():
            w = w[:, None].expand_as(per_example)
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
        problem = label_vocabulary_problem(self.label_vocabulary, n_classes)
        if problem is not None:
            raise UsageError(
                f"label_vocabulary must be {problem}. "
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
        """Class ids 0 / 1 as floats; without a vocabulary, float labels in ``[0, 1]`` are
        *soft labels* (probabilities of class 1), as tf.estimator's sigmoid cross-entropy
        accepts them."""
        soft = _soft_labels(labels) if self.label_vocabulary is None else None
        if soft is not None:
            return torch.from_numpy(soft)
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

        w = None if weights is None else self.example_weights(weights, logits.shape[0])
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

        w = None if weights is None else self.example_weights(weights, logits.shape[0])
        return multiclass_metrics(logits, labels.reshape(-1), w, loss)


class RegressionHead(Head):
    """Real-valued targets of width ``label_dimension``: mean squared error.

    With ``label_mean`` and ``label_scale`` (one value per label dimension) the network
    learns the *standardised* target ``(y - label_mean) / label_scale``: the optimiser
    then sees the same problem whatever the target's units, so the defaults (FTRL 0.2,
    Adam 0.001) work on a target such as a price in dollars. Everything a person sees
    stays in the target's own units: predictions are ``logits * label_scale +
    label_mean``, and the loss reported by training and ``evaluate`` is the squared
    error of those predictions. Without them (tf.estimator's behaviour) the logits are
    the predictions. The regressors fit both from the training data (see
    ``standardize_labels``), and checkpoints and exports store them in this head's
    config.

    >>> head = RegressionHead(label_mean=[100.0], label_scale=[10.0])
    >>> head.predictions(torch.tensor([[0.5]]))["predictions"].tolist()
    [[105.0]]
    """

    kind = "regression"
    prediction_keys = ("predictions",)

    def __init__(
        self,
        label_dimension: int = 1,
        loss_reduction: str = "sum_over_batch_size",
        *,
        label_mean: Sequence[float] | None = None,
        label_scale: Sequence[float] | None = None,
    ) -> None:
        super().__init__(loss_reduction)
        self.label_dimension = label_dimension
        self.logits_dimension = label_dimension
        self.set_label_scaling(label_mean, label_scale)

    # ---------------------------------------------------------------- scaling
    @property
    def scaled(self) -> bool:
        return self.label_mean is not None

    def set_label_scaling(
        self, mean: Sequence[float] | None, scale: Sequence[float] | None
    ) -> None:
        """Set (or with ``None``, remove) the target standardisation."""
        if (mean is None) != (scale is None):
            raise UsageError(
                "label_mean and label_scale go together: give both or neither. "
                f"Received: label_mean={mean!r}, label_scale={scale!r}"
            )
        if mean is None or scale is None:
            self.label_mean: list[float] | None = None
            self.label_scale: list[float] | None = None
            self._mean = self._scale = None
            return
        m = [float(v) for v in mean]
        sc = [float(v) for v in scale]
        if len(m) != self.label_dimension or len(sc) != self.label_dimension:
            raise UsageError(
                f"label_mean and label_scale need label_dimension={self.label_dimension} "
                f"values each. Received: label_mean={m}, label_scale={sc}"
            )
        if not all(np.isfinite(m)) or not all(np.isfinite(v) and v > 0 for v in sc):
            raise UsageError(
                "label_mean must be finite and label_scale finite and positive. "
                f"Received: label_mean={m}, label_scale={sc}"
            )
        self.label_mean, self.label_scale = m, sc
        self._mean = torch.tensor(m, dtype=torch.float32)
        self._scale = torch.tensor(sc, dtype=torch.float32)

    def fit_label_scaling(self, labels: torch.Tensor) -> None:
        """Standardise with the mean and standard deviation of ``labels`` (``[N, d]``);
        a constant dimension keeps scale 1."""
        y = labels.to(torch.float64).reshape(labels.shape[0], -1)
        mean = y.mean(dim=0)
        std = y.std(dim=0, unbiased=False) if y.shape[0] > 1 else torch.zeros_like(mean)
        std = torch.where(std > 1e-12 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        self.set_label_scaling(mean.tolist(), std.tolist())

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._mean is not None and self._scale is not None
        if self._mean.device != like.device:
            self._mean, self._scale = self._mean.to(like.device), self._scale.to(like.device)
        return self._mean, self._scale

    def to_target_units(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> predictions in the target's own units."""
        if not self.scaled:
            return logits
        mean, scale = self._stats(logits)
        return logits * scale + mean

    # ---------------------------------------------------------------- labels and loss
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

    def weight_widths(self) -> tuple[int, ...]:
        return (1, self.label_dimension)

    def unreduced_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Squared error per (example, label dimension), ``[N, d]``, in the target's units."""
        diff = self.to_target_units(logits) - labels.reshape(logits.shape)
        return diff * diff

    def _reduce(self, err: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        # As tf.estimator: over every (example, label dimension) element, so
        # sum_over_batch_size divides by batch size x label_dimension, and weights of
        # shape [N] (or [N, 1]) weigh each example, [N, d] each element.
        if weights is not None:
            w = self.example_weights(weights, err.shape[0])
            err = err * (w[:, None] if w.dim() == 1 else w)
        return err.sum() if self.loss_reduction == "sum" else err.sum() / err.numel()

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """The training objective: squared error of the logits against the (standardised) target."""
        target = labels.reshape(logits.shape)
        if self.scaled:
            mean, scale = self._stats(logits)
            target = (target - mean) / scale
        if weights is None and self.loss_reduction == "sum_over_batch_size":
            return F.mse_loss(logits, target)
        diff = logits - target
        return self._reduce(diff * diff, weights)

    def reported_loss(self, objective, logits, labels, weights):
        if not self.scaled:
            return objective
        with torch.no_grad():
            return self._reduce(self.unreduced_loss(logits.detach(), labels), weights)

    def average_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
    ) -> float:
        err = self.unreduced_loss(logits, labels)
        if weights is None:
            return float(err.mean())
        w = self.example_weights(weights, err.shape[0])
        w = (w[:, None] if w.dim() == 1 else w).expand_as(err)
        return float((err * w).sum() / w.sum().clamp_min(1e-12))

    # ---------------------------------------------------------------- outputs
    def predictions(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        return {"predictions": self.to_target_units(logits.detach()).cpu().numpy()}

    def metrics(self, logits, labels, weights, loss):
        from trainrun.modules.metrics import regression_metrics

        if weights is not None:
            weights = self.example_weights(weights, logits.shape[0])
        preds = self.to_target_units(logits)
        return regression_metrics(preds, labels.reshape(logits.shape), weights, loss)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "label_dimension": self.label_dimension,
            "loss_reduction": self.loss_reduction,
            "label_mean": self.label_mean,
            "label_scale": self.label_scale,
        }


def _soft_labels(labels: np.ndarray) -> np.ndarray | None:
    """Float labels in ``[0, 1]`` with at least one strictly between: soft labels as
    float32 ``[N]``; None for anything else (hard labels are checked as class ids)."""
    arr = np.asarray(labels)
    if arr.dtype.kind != "f":
        return None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or np.isnan(arr).any():
        return None
    if not ((arr >= 0) & (arr <= 1)).all() or np.all((arr == 0) | (arr == 1)):
        return None
    return arr.astype(np.float32)


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
        return RegressionHead(
            config["label_dimension"],
            config["loss_reduction"],
            label_mean=config.get("label_mean"),
            label_scale=config.get("label_scale"),
        )
    from trainrun.modules.heads_extra import extra_head_from_config

    extra = extra_head_from_config(config)  # multi-label, Poisson, binary with thresholds
    if extra is not None:
        return extra
    raise ModelDirError(f"Unknown head type in a saved config. Received: type={kind!r}")
