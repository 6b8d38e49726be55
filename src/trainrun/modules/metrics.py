"""Evaluation metrics with tf.estimator's names and meanings, computed exactly.

Three functions turn a whole evaluation set (logits, labels, optional weights)
into the dictionary ``evaluate()`` returns, and :class:`MetricAccumulator`
collects that set batch by batch:

=========================  ======  ==========  ==========  ==============================
key                        binary  multiclass  regression  meaning
=========================  ======  ==========  ==========  ==============================
``accuracy``               yes     yes                     weighted share of correct classes
``accuracy_baseline``      yes                             ``max(label/mean, 1 - label/mean)``
``auc``                    yes                             exact area under the ROC curve
``auc_precision_recall``   yes                             exact average precision (see below)
``average_loss``           yes     yes         yes         weighted mean per-example loss
``label/mean``             yes                 yes         weighted mean label
``loss``                   yes     yes         yes         mean of the per-batch losses
``precision``              yes                             ``TP / (TP + FP)`` at threshold 0.5
``prediction/mean``        yes                 yes         weighted mean probability / prediction
``recall``                 yes                             ``TP / (TP + FN)`` at threshold 0.5
=========================  ======  ==========  ==========  ==============================

``global_step`` is added by the estimator.

Exactness. tf.estimator approximates both AUCs with 200 fixed thresholds; here
every distinct score is a threshold. ``auc`` sorts the scores once and sums
trapezoids between consecutive distinct scores, so tied scores form one step
(a tie between a positive and a negative counts one half), which is the
Mann-Whitney statistic and equals scikit-learn's ``roc_auc_score``.
``auc_precision_recall`` is the non-interpolated *average precision*,
``sum_k (R_k - R_{k-1}) * P_k`` over distinct thresholds, which equals
scikit-learn's ``average_precision_score``; it does not interpolate linearly
between points of the precision-recall curve (that over-estimates the area).

Weights. Each example's weight multiplies its count in every metric (accuracy,
the ROC and precision-recall curves, the means, the loss); weights must be
finite and non-negative. A metric that is undefined for the data (an AUC when
every label is the same class) is ``nan``; run records store it as ``null``.

Cost. Exact AUCs need every score: the accumulator keeps the logits, labels and
weights of the whole evaluation set, O(N) memory (about 12 bytes an example
for a binary head), and one O(N log N) sort at the end.

>>> import torch
>>> m = binary_metrics(torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([1, 0, 0, 0]), None, 0.4)
>>> m["auc"], m["accuracy"], m["precision"]
(1.0, 0.75, 0.5)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "METRIC_KINDS",
    "MetricAccumulator",
    "average_precision",
    "binary_metrics",
    "multiclass_metrics",
    "regression_metrics",
    "roc_auc",
]

#: The kinds :meth:`MetricAccumulator.result` understands.
METRIC_KINDS = ("binary", "multiclass", "regression")


# ---------------------------------------------------------------- checks


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a tensor or an array of numbers. Received: {name}={value!r:.80}"
        ) from exc


def _weights(weights: Any, n: int) -> torch.Tensor | None:
    """Weights as a float64 vector of length ``n``, or None for "all ones"."""
    if weights is None:
        return None
    w = _as_tensor(weights, "weights").to(torch.float64).reshape(-1)
    if w.numel() != n:
        raise ValueError(
            f"weights must hold one value per example ({n}). Received: weights of shape "
            f"{tuple(_as_tensor(weights, 'weights').shape)}"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        bad = w[~torch.isfinite(w) | (w < 0)][:3].tolist()
        raise ValueError(
            "weights must be finite and non-negative; fix or drop those rows of the weight "
            f"column. Received: weights containing {bad}"
        )
    return w


def _check_rows(n_labels: int, n_logits: int, what: str) -> None:
    if n_labels != n_logits:
        raise ValueError(
            f"labels and {what} must have the same number of examples. Received: "
            f"{n_labels} labels and {n_logits} {what}"
        )
    if n_labels == 0:
        raise ValueError(
            "Cannot compute metrics over zero examples; the evaluation input gave no rows. "
            "Received: 0 examples"
        )


def _mean(values: torch.Tensor, w: torch.Tensor | None) -> float:
    """Weighted mean; nan when the weights sum to zero."""
    values = values.to(torch.float64)
    if w is None:
        return float(values.mean())
    total = float(w.sum())
    if total <= 0:
        return math.nan
    return float((values * w).sum()) / total


def _ratio(num: float, den: float) -> float:
    # tf.estimator's precision/recall report 0 when nothing was predicted/present.
    return num / den if den > 0 else 0.0


# ---------------------------------------------------------------- exact curves


def _curve(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cumulative weighted true and false positives at each distinct score, high to low.

    None when a score is not finite (the curve is then undefined).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    w = np.ones_like(scores) if weights is None else np.asarray(weights, dtype=np.float64)
    if not np.isfinite(scores).all():
        return None
    order = np.argsort(-scores, kind="stable")
    scores, labels, w = scores[order], labels[order], w[order]
    tp = np.cumsum(w * labels)
    fp = np.cumsum(w * (1.0 - labels))
    # the last index of each run of equal scores: ties enter the curve together
    ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    return tp[ends], fp[ends]


def roc_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Exact (tie-aware, weighted) area under the ROC curve; nan if one class is absent.

    >>> roc_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1.0, 1.0, 0.0, 0.0]))
    0.875
    """
    curve = _curve(scores, labels, weights)
    if curve is None:
        return math.nan
    tp, fp = curve
    pos, neg = tp[-1], fp[-1]
    if pos <= 0 or neg <= 0:
        return math.nan
    tp = np.r_[0.0, tp]
    fp = np.r_[0.0, fp]
    area = np.sum(np.diff(fp) * (tp[1:] + tp[:-1])) / 2.0
    return float(area / (pos * neg))


def average_precision(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Exact (step-wise, weighted) area under the precision-recall curve; nan with no positives.

    >>> average_precision(np.array([0.9, 0.8, 0.3]), np.array([1.0, 0.0, 1.0]))
    0.8333333333333333
    """
    curve = _curve(scores, labels, weights)
    if curve is None:
        return math.nan
    tp, fp = curve
    pos = tp[-1]
    if pos <= 0:
        return math.nan
    predicted = tp + fp
    # a threshold that admits only zero-weight rows has no precision; its recall step is 0
    precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)
    recall = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# ---------------------------------------------------------------- per head


def binary_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
) -> dict[str, float]:
    """tf.estimator's binary-classification metrics over a whole evaluation set.

    Args:
        logits: ``[N]`` (or ``[N, 1]``) raw scores; probability is ``sigmoid(logit)``.
        labels: ``[N]`` class ids 0 or 1.
        weights: ``[N]`` non-negative example weights, or None.
        loss: the value reported as ``loss`` (the mean of the per-batch training losses).

    The predicted class is 1 when the probability exceeds 0.5 (``logit > 0``).

    >>> import torch
    >>> m = binary_metrics(torch.tensor([1.0, -1.0]), torch.tensor([1, 0]), None, 0.31)
    >>> sorted(m)[:4], m["accuracy_baseline"]
    (['accuracy', 'accuracy_baseline', 'auc', 'auc_precision_recall'], 0.5)
    """
    z = _as_tensor(logits, "logits").to(torch.float64)
    if z.dim() == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.dim() != 1:
        raise ValueError(
            "A binary head needs one logit per example ([N] or [N, 1]). Received: logits of "
            f"shape {tuple(z.shape)}"
        )
    y = _as_tensor(labels, "labels").reshape(-1).to(torch.float64)
    _check_rows(y.numel(), z.numel(), "logits")
    if not bool(((y >= 0) & (y <= 1)).all()):
        bad = torch.unique(y[~((y >= 0) & (y <= 1))])[:5].tolist()
        raise ValueError(
            f"Binary labels must be 0 or 1 (or soft labels in [0, 1]); map the classes with "
            f"label_vocabulary. Received: labels containing {bad}"
        )
    w = _weights(weights, y.numel())

    prob = torch.sigmoid(z)
    predicted = (z > 0).to(torch.float64)
    # Soft labels enter the loss and label/mean as they are; the metrics that compare
    # classes threshold them at 0.5, as tf.estimator's binary head does.
    hard = (y > 0.5).to(torch.float64)
    per_example = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    ww = torch.ones_like(y) if w is None else w
    tp = float((ww * predicted * hard).sum())
    label_mean = _mean(y, w)
    np_w = None if w is None else w.numpy()
    return {
        "accuracy": _mean((predicted == hard).to(torch.float64), w),
        "accuracy_baseline": max(label_mean, 1.0 - label_mean),
        # rank by logit, not probability: sigmoid is monotone but rounds large logits
        # to exactly 1.0, which would tie examples the model ranks apart
        "auc": roc_auc(z.numpy(), hard.numpy(), np_w),
        "auc_precision_recall": average_precision(z.numpy(), hard.numpy(), np_w),
        "average_loss": _mean(per_example, w),
        "label/mean": label_mean,
        "loss": float(loss),
        "precision": _ratio(tp, float((ww * predicted).sum())),
        "prediction/mean": _mean(prob, w),
        "recall": _ratio(tp, float((ww * hard).sum())),
    }


def multiclass_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
) -> dict[str, float]:
    """tf.estimator's multi-class metrics: accuracy, average_loss (cross-entropy), loss.

    >>> import torch
    >>> multiclass_metrics(torch.eye(3) * 5, torch.tensor([0, 1, 1]), None, 0.1)["accuracy"]
    0.6666666666666666
    """
    z = _as_tensor(logits, "logits").to(torch.float64)
    if z.dim() != 2 or z.shape[1] < 2:
        raise ValueError(
            "A multi-class head needs logits of shape [N, n_classes] with n_classes >= 2. "
            f"Received: logits of shape {tuple(z.shape)}"
        )
    y = _as_tensor(labels, "labels").reshape(-1)
    _check_rows(y.numel(), z.shape[0], "logits")
    if y.is_floating_point():
        if not bool((y == torch.round(y)).all()):
            raise ValueError(
                "Multi-class labels must be integer class ids. Received: labels containing "
                f"{y[y != torch.round(y)][:3].tolist()}"
            )
    y = y.to(torch.int64)
    if bool(((y < 0) | (y >= z.shape[1])).any()):
        bad = torch.unique(y[(y < 0) | (y >= z.shape[1])])[:5].tolist()
        raise ValueError(
            f"Class ids must lie in [0, {z.shape[1] - 1}] for {z.shape[1]} classes. "
            f"Received: labels containing {bad}"
        )
    w = _weights(weights, y.numel())
    per_example = F.cross_entropy(z, y, reduction="none")
    return {
        "accuracy": _mean((z.argmax(dim=1) == y).to(torch.float64), w),
        "average_loss": _mean(per_example, w),
        "loss": float(loss),
    }


def regression_metrics(
    predictions: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
) -> dict[str, float]:
    """tf.estimator's regression metrics: average_loss (squared error), label/mean,
    loss, prediction/mean.

    With ``d`` label dimensions, means run over all ``N * d`` values and each
    example's weight applies to its ``d`` values, as tf.estimator's regression head;
    weights of shape ``[N, d]`` weigh each value on its own.

    >>> import torch
    >>> regression_metrics(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 1.0]), None, 2.0)["average_loss"]
    2.0
    """
    p = _as_tensor(predictions, "predictions").to(torch.float64)
    y = _as_tensor(labels, "labels").to(torch.float64)
    if p.dim() == 1:
        p = p[:, None]
    if y.dim() == 1:
        y = y[:, None]
    if p.dim() != 2 or p.shape != y.shape:
        raise ValueError(
            "predictions and labels must have the same shape [N, label_dimension]. Received: "
            f"predictions of shape {tuple(p.shape)} and labels of shape {tuple(y.shape)}"
        )
    _check_rows(y.shape[0], p.shape[0], "predictions")
    if weights is not None and _as_tensor(weights, "weights").dim() == 2 and y.shape[1] > 1:
        # one weight per (example, label dimension), as tf.estimator's regression head
        per_dim = _as_tensor(weights, "weights")
        if tuple(per_dim.shape) != tuple(y.shape):
            raise ValueError(
                f"weights must have shape [N], [N, 1] or [N, {y.shape[1]}] (the labels'). "
                f"Received: weights of shape {tuple(per_dim.shape)}"
            )
        wide = _weights(per_dim, y.numel())
    else:
        w = _weights(weights, y.shape[0])
        wide = None if w is None else w[:, None].expand_as(y).reshape(-1)
    return {
        "average_loss": _mean(((p - y) ** 2).reshape(-1), wide),
        "label/mean": _mean(y.reshape(-1), wide),
        "loss": float(loss),
        "prediction/mean": _mean(p.reshape(-1), wide),
    }


_METRIC_FNS = {
    "binary": binary_metrics,
    "multiclass": multiclass_metrics,
    "regression": regression_metrics,
}


def _batch_loss(
    kind: str, out: torch.Tensor, labels: torch.Tensor, w: torch.Tensor | None
) -> float:
    """tf.estimator's default training loss of one batch: weighted sum / batch size."""
    out = out.to(torch.float64)
    if kind == "binary":
        per = F.binary_cross_entropy_with_logits(
            out.reshape(-1), labels.reshape(-1).to(torch.float64), reduction="none"
        )
    elif kind == "multiclass":
        per = F.cross_entropy(out, labels.reshape(-1).to(torch.int64), reduction="none")
    else:
        per = ((out - labels.to(torch.float64).reshape(out.shape)) ** 2).reshape(out.shape[0], -1)
        if w is not None:
            w = w.to(torch.float64).reshape(per.shape[0], -1)  # [N, 1] or [N, d]
            per = per * w
        return float(per.sum()) / max(per.numel(), 1)
    if w is not None:
        per = per * w.to(torch.float64).reshape(-1)
    return float(per.sum()) / max(per.numel(), 1)


# ---------------------------------------------------------------- streaming


class MetricAccumulator:
    """Collects an evaluation set batch by batch, then computes the metrics exactly.

    ``update`` (alias ``append``) keeps each batch's outputs, labels and
    weights (detached, on the CPU) and adds the batch loss to a running sum.
    ``result(kind)`` concatenates them and calls the function for ``kind``
    ("binary", "multiclass" or "regression").

    - ``loss`` is the mean of the per-batch losses, tf.estimator's ``loss``:
      pass each batch's training loss as ``loss=``; when omitted it is computed
      as tf.estimator's default reduction, the batch's weighted loss summed
      and divided by the batch size.
    - ``average_loss`` is the weighted mean per-example loss over all examples,
      so the two differ when batches differ in size or weights vary.

    Memory is O(N): exact AUCs need every score (about 12 bytes an example for
    a binary head, 12 MB per million examples).

    >>> import torch
    >>> acc = MetricAccumulator()
    >>> acc.update(torch.tensor([2.0, -2.0]), torch.tensor([1, 0]), loss=0.2)
    >>> acc.update(torch.tensor([1.0]), torch.tensor([0]), loss=0.4)
    >>> r = acc.result("binary")
    >>> r["loss"], r["auc"], acc.num_examples, acc.num_batches
    (0.30000000000000004, 1.0, 3, 2)
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch."""
        self._outputs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._weights: list[torch.Tensor | None] = []
        self._losses: list[float | None] = []
        self.num_examples = 0

    @property
    def num_batches(self) -> int:
        return len(self._outputs)

    def update(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None = None,
        loss: float | torch.Tensor | None = None,
    ) -> None:
        """Add one batch: logits (or regression predictions), labels, weights, batch loss."""
        out = _as_tensor(logits, "logits")
        lab = _as_tensor(labels, "labels")
        if out.dim() == 0 or lab.dim() == 0 or out.shape[0] != lab.shape[0]:
            raise ValueError(
                "Each batch needs as many labels as outputs. Received: outputs of shape "
                f"{tuple(out.shape)} and labels of shape {tuple(lab.shape)}"
            )
        w = None if weights is None else _as_tensor(weights, "weights")
        if w is not None and w.dim() == 2 and w.shape[1] == 1:
            w = w[:, 0]
        per_dim = w is not None and w.dim() == 2 and out.dim() == 2 and w.shape == out.shape
        if w is not None and not per_dim:
            w = w.reshape(-1)
            if w.numel() != lab.shape[0]:
                raise ValueError(
                    f"weights must hold one value per example ({lab.shape[0]}), or per "
                    f"regression output ({tuple(out.shape)}). Received: weights of shape "
                    f"{tuple(w.shape)}"
                )
        if self._outputs and (w is None) != (self._weights[0] is None):
            raise ValueError(
                "Give weights for every batch or for none; mixing them leaves the metrics "
                f"undefined. Received: weights={'None' if w is None else 'a tensor'} for batch "
                f"{self.num_batches + 1}"
            )
        self._outputs.append(out)
        self._labels.append(lab)
        self._weights.append(w)
        self._losses.append(None if loss is None else float(loss))
        self.num_examples += int(lab.shape[0])

    append = update

    def result(self, kind: str) -> dict[str, float]:
        """The metrics of every batch so far for a ``kind`` head (see :data:`METRIC_KINDS`)."""
        fn = _METRIC_FNS.get(kind)
        if fn is None:
            raise ValueError(
                f"Unknown metric kind; expected one of {', '.join(METRIC_KINDS)}. "
                f"Received: kind={kind!r}"
            )
        if not self._outputs:
            raise ValueError(
                "No batches were added, so there is nothing to evaluate; check that the "
                "evaluation input yields data. Received: 0 batches"
            )
        losses = [
            _batch_loss(kind, o, y, w) if loss is None else loss
            for o, y, w, loss in zip(
                self._outputs, self._labels, self._weights, self._losses, strict=True
            )
        ]
        weights = None if self._weights[0] is None else torch.cat(self._weights)  # type: ignore[arg-type]
        return fn(
            torch.cat(self._outputs),
            torch.cat(self._labels),
            weights,
            sum(losses) / len(losses),
        )
