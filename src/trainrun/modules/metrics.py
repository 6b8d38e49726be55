"""Evaluation metrics with tf.estimator's names and meanings, computed exactly.

Three functions turn a whole evaluation set (logits, labels, optional weights)
into the dictionary ``evaluate()`` returns, and :class:`MetricAccumulator`
collects that set batch by batch in bounded memory:

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

Memory. Every metric but the two AUCs is a running sum. The exact AUCs need each
example's score, label and weight: a binary accumulator keeps them in preallocated
chunks as float32 score (float64 only for float64 logits), uint8 label and, when
there are weights, float32 weight: 5 bytes an example, 9 with weights. The final
sort adds an int64 index per example: the peak is about 14 (18 with weights) bytes
an example. Multi-class and regression heads keep no per-example state at all; the
multi-label head keeps ``5 C + 4`` bytes an example (peak about 15 bytes a score).

>>> import torch
>>> m = binary_metrics(torch.tensor([2.0, -1.0, 0.5, -3.0]), torch.tensor([1, 0, 0, 0]), None, 0.4)
>>> m["auc"], m["accuracy"], m["precision"]
(1.0, 0.75, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainrun.exceptions import InputError

__all__ = [
    "METRIC_KINDS",
    "MetricAccumulator",
    "Piece",
    "average_precision",
    "binary_metrics",
    "binary_threshold_metrics",
    "multi_label_metrics",
    "multiclass_metrics",
    "poisson_metrics",
    "regression_metrics",
    "roc_auc",
]

#: The kinds :meth:`MetricAccumulator.result` understands.
METRIC_KINDS = ("binary", "multiclass", "regression")

#: Bytes per chunk of a growing per-example column: above glibc's largest mmap
#: threshold (32 MiB), so that a chunk is its own mapping, returned to the system when
#: freed, and its pages count only once written.
_CHUNK_BYTES = 64 << 20
#: Examples per step of the curve pass.
_PASS = 1 << 16


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
        raise InputError(
            f"weights must hold one value per example ({n}). Received: weights of shape "
            f"{tuple(_as_tensor(weights, 'weights').shape)}"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        bad = w[~torch.isfinite(w) | (w < 0)][:3].tolist()
        raise InputError(
            "weights must be finite and non-negative; fix or drop those rows of the weight "
            f"column. Received: weights containing {bad}"
        )
    return w


def _check_rows(n_labels: int, n_logits: int, what: str) -> None:
    if n_labels != n_logits:
        raise InputError(
            f"labels and {what} must have the same number of examples. Received: "
            f"{n_labels} labels and {n_logits} {what}"
        )


def _check_some(n: int) -> None:
    if n == 0:
        raise InputError(
            "Cannot compute metrics over zero examples; the evaluation input gave no rows. "
            "Received: 0 examples"
        )


def _ratio(num: float, den: float) -> float:
    # tf.estimator's precision/recall report 0 when nothing was predicted/present.
    return num / den if den > 0 else 0.0


class _Sum:
    """Running weighted sums of per-example values, for weighted means.

    ``add(values, w)`` adds ``sum(values * w)`` (``sum(values)`` when unweighted);
    ``mean(key)`` divides by the summed weights (the count when unweighted), and is
    nan when weights sum to zero, as a mean over no weight.
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.weight = 0.0
        self.weighted = False

    def add_rows(self, n: int, w: torch.Tensor | None) -> None:
        self.count += n
        if w is not None:
            self.weighted = True
            self.weight += float(w.sum())

    def add(self, key: str, values: torch.Tensor, w: torch.Tensor | None) -> None:
        values = values.to(torch.float64)
        total = float(values.sum() if w is None else (values * w).sum())
        self.sums[key] = self.sums.get(key, 0.0) + total

    def mean(self, key: str) -> float:
        if not self.weighted:
            return self.sums[key] / self.count
        return self.sums[key] / self.weight if self.weight > 0 else math.nan


# ---------------------------------------------------------------- growing columns


def _exact_dtype(t: torch.Tensor) -> np.dtype:
    """float32 when it holds every value of ``t`` exactly, else float64."""
    small = (torch.float32, torch.float16, torch.bfloat16, torch.bool, torch.uint8, torch.int8)
    return (
        np.dtype(np.float32) if t.dtype in small or t.dtype == torch.int16 else np.dtype(np.float64)
    )


class _Column:
    """A growing 1-D array in preallocated fixed-size chunks: no object per batch, no
    copy as it grows, and one contiguous copy only when read from several chunks (each
    chunk freed as soon as it is copied, so the copy's peak is the data plus one chunk).

    A chunk is ``np.empty`` of ``_CHUNK_BYTES``: the pages of its unused tail are never
    written, so they take no memory; the memory kept is the values' own bytes.
    """

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._chunks: list[np.ndarray] = []
        self._room = 0  # free slots at the end of the last chunk

    def extend(self, values: np.ndarray) -> None:
        if np.result_type(values.dtype, self.dtype) != self.dtype:
            self._promote(np.result_type(values.dtype, self.dtype))  # float32 -> float64
        pos = 0
        while pos < values.size:
            if self._room == 0:
                room = max(1, _CHUNK_BYTES // self.dtype.itemsize)
                self._chunks.append(np.empty(room, self.dtype))
                self._room = room
            last = self._chunks[-1]
            used = last.size - self._room
            k = min(self._room, values.size - pos)
            last[used : used + k] = values[pos : pos + k]
            pos += k
            self._room -= k
        self.size += values.size

    def _promote(self, dtype: np.dtype) -> None:
        chunks = []
        for i, chunk in enumerate(self._chunks):
            wider = np.empty(chunk.size, dtype)
            used = chunk.size - (self._room if i == len(self._chunks) - 1 else 0)
            wider[:used] = chunk[:used]  # the unused tail is uninitialised: not converted
            chunks.append(wider)
        self._chunks, self.dtype = chunks, dtype

    def array(self) -> np.ndarray:
        """The values as one array (a view of the first chunk when it holds them all;
        else a copy, which then becomes the column's only chunk)."""
        if len(self._chunks) == 1:
            return self._chunks[0][: self.size]
        out = np.empty(self.size, self.dtype)
        pos = 0
        while self._chunks:  # each chunk freed as soon as it is copied
            chunk = self._chunks.pop(0)
            used = chunk.size - (self._room if not self._chunks else 0)
            out[pos : pos + used] = chunk[:used]
            pos += used
            del chunk
        self._chunks, self._room = [out], 0
        return out


# ---------------------------------------------------------------- exact curves


def _areas(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, per_weight: int = 1
) -> tuple[float, float]:
    """The exact ROC AUC and average precision of ``scores`` (higher = more positive).

    One sort of the scores, high to low; then one pass in steps of ``_PASS``
    examples accumulates the weighted true and false positives (a running cumulative
    sum), closes a point of the curves at the last example of each run of tied scores,
    and sums the trapezoids (ROC) and the precision-weighted recall steps (average
    precision). The pass holds only a step's temporaries, so the cost beyond the
    columns is the sort's int64 index. ``scores`` is negated in place during the sort
    and restored. nan when a score is not finite, or a class is absent.

    ``per_weight`` scores share each weight: score ``i`` has weight
    ``weights[i // per_weight]`` (a multi-label head's ``[N, C]`` scores, flattened,
    with one weight per example), so no widened copy of the weights is made.
    """
    n = scores.size
    if n == 0 or not np.isfinite(scores).all():
        return math.nan, math.nan
    np.negative(scores, out=scores)  # ascending order of -s: highest score first
    try:
        # not a stable sort: a run of tied scores is one point of the curves, whatever
        # its order inside, and introsort needs no buffer beside the index (timsort
        # takes half an index more: 4 bytes an example) and takes a third of the time
        order = np.argsort(scores)
        area = ap = 0.0
        tp_run = fp_run = 0.0  # cumulative sums up to the previous step
        tp_end = fp_end = 0.0  # the curve's last closed point
        for start in range(0, n, _PASS):
            idx = order[start : start + _PASS]
            lab = labels[idx].astype(np.float64)
            pos_part, neg_part = lab, 1.0 - lab
            if weights is not None:
                w = weights[idx if per_weight == 1 else idx // per_weight].astype(np.float64)
                pos_part, neg_part = w * lab, w * neg_part
            tp = np.cumsum(np.r_[tp_run, pos_part])[1:]
            fp = np.cumsum(np.r_[fp_run, neg_part])[1:]
            tp_run, fp_run = float(tp[-1]), float(fp[-1])
            # one score past the step decides whether its last example ends a tie run
            sorted_scores = scores[order[start : start + _PASS + 1]]
            ends = np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1])
            if start + _PASS >= n:
                ends = np.r_[ends, idx.size - 1]
            if ends.size == 0:
                continue
            tp_e, fp_e = tp[ends], fp[ends]
            tp_prev, fp_prev = np.r_[tp_end, tp_e[:-1]], np.r_[fp_end, fp_e[:-1]]
            area += float(np.sum((fp_e - fp_prev) * (tp_e + tp_prev)))
            predicted = tp_e + fp_e
            # a threshold that admits only zero-weight rows has no precision; its recall step is 0
            precision = np.divide(tp_e, predicted, out=np.ones_like(tp_e), where=predicted > 0)
            ap += float(np.sum((tp_e - tp_prev) * precision))
            tp_end, fp_end = float(tp_e[-1]), float(fp_e[-1])
        del order
    finally:
        np.negative(scores, out=scores)
    pos, neg = tp_run, fp_run
    auc = area / 2.0 / (pos * neg) if pos > 0 and neg > 0 else math.nan
    return auc, (ap / pos if pos > 0 else math.nan)


def roc_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Exact (tie-aware, weighted) area under the ROC curve; nan if one class is absent.

    >>> roc_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1.0, 1.0, 0.0, 0.0]))
    0.875
    """
    s = np.array(scores, dtype=np.float64).reshape(-1)  # a copy: _areas negates in place
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    return _areas(s, np.asarray(labels, dtype=np.float64).reshape(-1), w)[0]


def average_precision(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Exact (step-wise, weighted) area under the precision-recall curve; nan with no positives.

    >>> average_precision(np.array([0.9, 0.8, 0.3]), np.array([1.0, 0.0, 1.0]))
    0.8333333333333333
    """
    s = np.array(scores, dtype=np.float64).reshape(-1)
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    return _areas(s, np.asarray(labels, dtype=np.float64).reshape(-1), w)[1]


# ---------------------------------------------------------------- per head, streamed


def _keep_scores(
    state: Any, raw: torch.Tensor, z: torch.Tensor, y: torch.Tensor, w: Any, weights: Any
) -> None:
    """Append a batch's scores, hard labels (0/1 bytes) and weights to ``state``'s columns
    (``scores``, ``hard``, ``weights``), the exact curves' input; the binary and multi-label
    states share it. A non-finite logit makes the curves undefined: from then on no scores
    are kept (``state.finite`` turns False)."""
    if state.finite and not bool(torch.isfinite(z).all()):
        state.finite = False
        state.scores, state.hard, state.weights = _Column(np.float32), _Column(np.uint8), None
    if not state.finite:
        return
    # rank by logit, not probability: sigmoid is monotone but rounds large logits
    # to exactly 1.0, which would tie examples the model ranks apart
    exact = torch.float32 if _exact_dtype(raw) == np.float32 else torch.float64
    state.scores.extend(raw.to(exact).contiguous().numpy().reshape(-1))
    state.hard.extend((y > 0.5).to(torch.uint8).numpy().reshape(-1))
    if w is not None:
        if state.weights is None:
            state.weights = _Column(np.float32)
        raw_w = _as_tensor(weights, "weights").reshape(-1)
        state.weights.extend(w.numpy().astype(_exact_dtype(raw_w)))


class _Binary:
    """Running sums for a binary head, plus the score, label and weight columns the
    exact AUCs need."""

    kind = "binary"

    def __init__(self) -> None:
        self.sums = _Sum()
        self.finite = True
        self.scores = _Column(np.float32)
        self.hard = _Column(np.uint8)
        self.weights: _Column | None = None

    def update(
        self, logits: Any, labels: Any, weights: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Fold a batch in; returns its checked float64 logits, labels and weights (or None)."""
        raw = _as_tensor(logits, "logits")
        z = raw.to(torch.float64)
        if z.dim() == 2 and z.shape[1] == 1:
            z, raw = z[:, 0], raw[:, 0]
        if z.dim() != 1:
            raise InputError(
                "A binary head needs one logit per example ([N] or [N, 1]). Received: logits of "
                f"shape {tuple(z.shape)}"
            )
        y = _as_tensor(labels, "labels").reshape(-1).to(torch.float64)
        _check_rows(y.numel(), z.numel(), "logits")
        if not bool(((y >= 0) & (y <= 1)).all()):
            bad = torch.unique(y[~((y >= 0) & (y <= 1))])[:5].tolist()
            raise InputError(
                f"Binary labels must be 0 or 1 (or soft labels in [0, 1]); map the classes with "
                f"label_vocabulary. Received: labels containing {bad}"
            )
        w = _weights(weights, y.numel())
        predicted = (z > 0).to(torch.float64)
        # Soft labels enter the loss and label/mean as they are; the metrics that compare
        # classes threshold them at 0.5, as tf.estimator's binary head does.
        hard = (y > 0.5).to(torch.float64)
        s = self.sums
        s.add_rows(y.numel(), w)
        s.add("correct", (predicted == hard).to(torch.float64), w)
        s.add("tp", predicted * hard, w)
        s.add("predicted", predicted, w)
        s.add("positive", hard, w)
        s.add("label", y, w)
        s.add("prob", torch.sigmoid(z), w)
        s.add("loss", F.binary_cross_entropy_with_logits(z, y, reduction="none"), w)
        _keep_scores(self, raw, z, y, w, weights)
        return z, y, w

    def result(self, loss: float) -> dict[str, float]:
        s = self.sums
        _check_some(s.count)
        auc = ap = math.nan
        if self.finite:
            w = None if self.weights is None else self.weights.array()
            auc, ap = _areas(self.scores.array(), self.hard.array(), w)
        label_mean = s.mean("label")
        return {
            "accuracy": s.mean("correct"),
            "accuracy_baseline": max(label_mean, 1.0 - label_mean),
            "auc": auc,
            "auc_precision_recall": ap,
            "average_loss": s.mean("loss"),
            "label/mean": label_mean,
            "loss": float(loss),
            "precision": _ratio(s.sums["tp"], s.sums["predicted"]),
            "prediction/mean": s.mean("prob"),
            "recall": _ratio(s.sums["tp"], s.sums["positive"]),
        }


class _Multiclass:
    """Running sums for a multi-class head: no per-example state."""

    kind = "multiclass"

    def __init__(self) -> None:
        self.sums = _Sum()
        self.n_classes: int | None = None

    def update(self, logits: Any, labels: Any, weights: Any) -> None:
        z = _as_tensor(logits, "logits").to(torch.float64)
        if z.dim() != 2 or z.shape[1] < 2 or z.shape[1] != (self.n_classes or z.shape[1]):
            expected = "n_classes >= 2" if self.n_classes is None else f"n_classes={self.n_classes}"
            raise InputError(
                f"A multi-class head needs logits of shape [N, n_classes] with {expected}. "
                f"Received: logits of shape {tuple(z.shape)}"
            )
        self.n_classes = int(z.shape[1])
        y = _as_tensor(labels, "labels").reshape(-1)
        _check_rows(y.numel(), z.shape[0], "logits")
        if y.is_floating_point():
            if not bool((y == torch.round(y)).all()):
                raise InputError(
                    "Multi-class labels must be integer class ids. Received: labels containing "
                    f"{y[y != torch.round(y)][:3].tolist()}"
                )
        y = y.to(torch.int64)
        if bool(((y < 0) | (y >= z.shape[1])).any()):
            bad = torch.unique(y[(y < 0) | (y >= z.shape[1])])[:5].tolist()
            raise InputError(
                f"Class ids must lie in [0, {z.shape[1] - 1}] for {z.shape[1]} classes. "
                f"Received: labels containing {bad}"
            )
        w = _weights(weights, y.numel())
        self.sums.add_rows(y.numel(), w)
        self.sums.add("correct", (z.argmax(dim=1) == y).to(torch.float64), w)
        self.sums.add("loss", F.cross_entropy(z, y, reduction="none"), w)

    def result(self, loss: float) -> dict[str, float]:
        _check_some(self.sums.count)
        return {
            "accuracy": self.sums.mean("correct"),
            "average_loss": self.sums.mean("loss"),
            "loss": float(loss),
        }


class _Regression:
    """Running sums for a regression head, over every (example, label dimension) value."""

    kind = "regression"

    def __init__(self) -> None:
        self.sums = _Sum()
        self.dims: int | None = None

    def update(self, predictions: Any, labels: Any, weights: Any) -> None:
        p = _as_tensor(predictions, "predictions").to(torch.float64)
        y = _as_tensor(labels, "labels").to(torch.float64)
        if p.dim() == 1:
            p = p[:, None]
        if y.dim() == 1:
            y = y[:, None]
        if p.dim() != 2 or p.shape != y.shape or p.shape[1] != (self.dims or p.shape[1]):
            raise InputError(
                "predictions and labels must have the same shape [N, label_dimension]"
                + ("" if self.dims is None else f" with label_dimension={self.dims}")
                + f". Received: predictions of shape {tuple(p.shape)} and labels of shape "
                f"{tuple(y.shape)}"
            )
        self.dims = int(y.shape[1])
        _check_rows(y.shape[0], p.shape[0], "predictions")
        if weights is not None and _as_tensor(weights, "weights").dim() == 2 and y.shape[1] > 1:
            # one weight per (example, label dimension), as tf.estimator's regression head
            per_dim = _as_tensor(weights, "weights")
            if tuple(per_dim.shape) != tuple(y.shape):
                raise InputError(
                    f"weights must have shape [N], [N, 1] or [N, {y.shape[1]}] (the labels'). "
                    f"Received: weights of shape {tuple(per_dim.shape)}"
                )
            wide = _weights(per_dim, y.numel())
        else:
            w = _weights(weights, y.shape[0])
            wide = None if w is None else w[:, None].expand_as(y).reshape(-1)
        self.sums.add_rows(y.numel(), wide)
        self.sums.add("squared_error", ((p - y) ** 2).reshape(-1), wide)
        self.sums.add("label", y.reshape(-1), wide)
        self.sums.add("prediction", p.reshape(-1), wide)

    def result(self, loss: float) -> dict[str, float]:
        _check_some(self.sums.count)
        return {
            "average_loss": self.sums.mean("squared_error"),
            "label/mean": self.sums.mean("label"),
            "loss": float(loss),
            "prediction/mean": self.sums.mean("prediction"),
        }


# ---------------------------------------------------------------- the extra heads' states


class _Thresholds:
    """Running weighted counts at each threshold: accuracy, precision and recall there.

    Probabilities above ``t`` are predicted positive (tf.estimator's
    ``positive_threshold_t``); each (example, label) pair counts with its example's
    weight. Four sums per threshold, whatever the number of examples.
    """

    def __init__(self, thresholds: list[float]) -> None:
        self.thresholds = list(thresholds)
        k = len(self.thresholds)
        self.correct, self.tp = np.zeros(k), np.zeros(k)
        self.predicted, self.positive = np.zeros(k), np.zeros(k)
        self.total = 0.0

    def update(self, prob: torch.Tensor, hard: torch.Tensor, w: torch.Tensor | None) -> None:
        """``prob`` and the bool ``hard`` labels ``[N]`` or ``[N, C]``; ``w`` ``[N]`` or None."""
        ww = None if w is None else (w if prob.dim() == 1 else w[:, None]).expand_as(prob)
        self.total += float(prob.numel() if ww is None else ww.sum())
        positive = hard.to(torch.float64)
        for i, t in enumerate(self.thresholds):
            pred = prob > t
            parts = (
                (pred == hard).to(torch.float64),
                (pred & hard).to(torch.float64),
                pred.to(torch.float64),
                positive,
            )
            sums = [float(p.sum() if ww is None else (p * ww).sum()) for p in parts]
            self.correct[i] += sums[0]
            self.tp[i] += sums[1]
            self.predicted[i] += sums[2]
            self.positive[i] += sums[3]

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, t in enumerate(self.thresholds):
            name = f"positive_threshold_{t:g}"
            out[f"accuracy/{name}"] = _ratio(float(self.correct[i]), self.total)
            out[f"precision/{name}"] = _ratio(float(self.tp[i]), float(self.predicted[i]))
            out[f"recall/{name}"] = _ratio(float(self.tp[i]), float(self.positive[i]))
        return out


class _BinaryThresholds(_Binary):
    """A binary head's state, plus running counts at each of ``thresholds``."""

    kind = "binary_thresholds"

    def __init__(self, thresholds: list[float]) -> None:
        super().__init__()
        self.at = _Thresholds(thresholds)

    def update(
        self, logits: Any, labels: Any, weights: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        z, y, w = super().update(logits, labels, weights)
        self.at.update(torch.sigmoid(z), y > 0.5, w)
        return z, y, w

    def result(self, loss: float) -> dict[str, float]:
        return dict(sorted({**super().result(loss), **self.at.result()}.items()))


class _MultiLabel:
    """A multi-label head's state: running sums for the loss and the thresholds, and
    each (example, class) logit and label for the exact AUCs.

    The logits are kept as one flat ``[N * C]`` column (float32; float64 only for
    float64 logits), the labels as one byte each, the weights as one float32 per
    example: ``5 C + 4`` bytes an example. Class ``j``'s AUCs read every ``C``-th
    score from ``j`` (a strided view, no copy); the AUCs over all pairs read the whole
    column, with each weight shared by its example's ``C`` scores.
    """

    kind = "multi_label"

    def __init__(self, names: list[str], thresholds: list[float]) -> None:
        self.names = list(names)
        self.sums = _Sum()
        self.at = _Thresholds(thresholds)
        self.finite = True
        self.scores = _Column(np.float32)
        self.hard = _Column(np.uint8)
        self.weights: _Column | None = None

    def update(self, logits: Any, labels: Any, weights: Any) -> None:
        raw = _as_tensor(logits, "logits")
        c = len(self.names)
        if raw.dim() != 2 or raw.shape[1] != c:
            raise InputError(
                f"A multi-label head needs logits of shape [N, {c}] (one per class). "
                f"Received: logits of shape {tuple(raw.shape)}"
            )
        z = raw.to(torch.float64)
        y = _as_tensor(labels, "labels").to(torch.float64)
        _check_rows(y.shape[0] if y.dim() else 0, z.shape[0], "logits")
        y = y.reshape(z.shape)
        if not bool(((y == 0) | (y == 1)).all()):
            bad = torch.unique(y[(y != 0) & (y != 1)])[:5].tolist()
            raise InputError(
                f"Multi-label labels must be 0 or 1 per class (multi-hot). Received: labels "
                f"containing {bad}"
            )
        w = _weights(weights, z.shape[0])
        self.sums.add_rows(z.shape[0], w)
        per_example = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1)
        self.sums.add("loss", per_example, w)
        self.at.update(torch.sigmoid(z), y > 0.5, w)
        _keep_scores(self, raw, z, y, w, weights)

    def result(self, loss: float) -> dict[str, float]:
        _check_some(self.sums.count)
        out = {"average_loss": self.sums.mean("loss"), "loss": float(loss)}
        nan = (math.nan, math.nan)
        scores = self.scores.array() if self.finite else None
        hard = self.hard.array() if self.finite else None
        w = None if self.weights is None else self.weights.array()
        c = len(self.names)
        pairs = nan if scores is None else _areas(scores, hard, w, per_weight=c)  # type: ignore[arg-type]
        out["auc"], out["auc_precision_recall"] = pairs
        for j, name in enumerate(self.names):
            areas = nan if scores is None else _areas(scores[j::c], hard[j::c], w)  # type: ignore[index]
            out[f"auc/{name}"], out[f"auc_precision_recall/{name}"] = areas
        out.update(self.at.result())
        return dict(sorted(out.items()))


class _Poisson(_Regression):
    """A Poisson head's state: the regression sums over the predicted counts
    ``exp(logits)``, plus the Poisson loss and deviance: running sums only."""

    kind = "poisson_regression"

    def update(self, logits: Any, labels: Any, weights: Any) -> None:
        z = _as_tensor(logits, "logits").to(torch.float64)
        if z.dim() == 1:
            z = z[:, None]
        y = _as_tensor(labels, "labels").to(torch.float64)
        super().update(torch.exp(z), y, weights)  # checks the shapes and weights
        y = y.reshape(z.shape)
        if bool((y < 0).any()):
            raise InputError(
                "Poisson labels are counts and must be >= 0. Received: labels containing "
                f"{torch.unique(y[y < 0])[:5].tolist()}"
            )
        w = _weights(weights, z.shape[0])
        wide = None if w is None else w[:, None].expand_as(y).reshape(-1)
        nll = F.poisson_nll_loss(z, y, log_input=True, full=True, reduction="none")
        self.sums.add("poisson_loss", nll.reshape(-1), wide)
        # the unit deviance 2 (y log(y / mu) - y + mu), with mu = exp(z) and 0 log 0 = 0
        deviance = 2.0 * (torch.xlogy(y, y) - y * z - y + torch.exp(z))
        self.sums.add("deviance", deviance.reshape(-1), wide)

    def result(self, loss: float) -> dict[str, float]:
        out = super().result(loss)
        out["average_loss"] = self.sums.mean("poisson_loss")
        out["poisson_deviance"] = self.sums.mean("deviance")
        return dict(sorted(out.items()))


_STATES: dict[str, Callable[[], Any]] = {
    "binary": _Binary,
    "multiclass": _Multiclass,
    "regression": _Regression,
}


def _one_shot(kind: Any, outputs: Any, labels: Any, weights: Any, loss: float) -> dict[str, float]:
    state = _STATES[kind]() if isinstance(kind, str) else kind
    state.update(outputs, labels, weights)
    return state.result(loss)


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
    return _one_shot("binary", logits, labels, weights, loss)


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
    return _one_shot("multiclass", logits, labels, weights, loss)


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
    return _one_shot("regression", predictions, labels, weights, loss)


def binary_threshold_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
    thresholds: list[float],
) -> dict[str, float]:
    """:func:`binary_metrics`, plus accuracy, precision and recall at each threshold
    (``precision/positive_threshold_0.7``: probability above 0.7 predicts positive).

    >>> import torch
    >>> m = binary_threshold_metrics(torch.tensor([2.0, 0.0]), torch.tensor([1, 0]), None, 0.5, [0.3])
    >>> m["precision/positive_threshold_0.3"], m["recall/positive_threshold_0.3"]
    (0.5, 1.0)
    """
    return _one_shot(_BinaryThresholds(thresholds), logits, labels, weights, loss)


def multi_label_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
    class_names: list[str],
    thresholds: list[float],
) -> dict[str, float]:
    """A multi-label head's metrics: ``auc`` and ``auc_precision_recall`` over every
    (example, class) pair and per class (``auc/<class>``), ``average_loss`` (sigmoid
    cross-entropy summed over the classes, weighted mean over examples), ``loss``, and
    accuracy, precision and recall over the pairs at each threshold.

    >>> import torch
    >>> z, y = torch.tensor([[2.0, -1.0], [-2.0, 1.0]]), torch.tensor([[1, 0], [0, 0]])
    >>> multi_label_metrics(z, y, None, 0.1, ["a", "b"], [0.5])["auc/a"]
    1.0
    """
    return _one_shot(_MultiLabel(class_names, thresholds), logits, labels, weights, loss)


def poisson_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    loss: float,
) -> dict[str, float]:
    """A Poisson head's metrics over counts predicted as ``exp(logits)``: the regression
    keys, ``average_loss`` the weighted mean Poisson negative log-likelihood (full, with
    Stirling's term) and ``poisson_deviance`` the weighted mean unit deviance
    ``2 (y log(y / mu) - y + mu)`` (scikit-learn's ``mean_poisson_deviance``).

    >>> import torch
    >>> poisson_metrics(torch.zeros(2), torch.tensor([1.0, 1.0]), None, 0.5)["poisson_deviance"]
    0.0
    """
    return _one_shot(_Poisson(), logits, labels, weights, loss)


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

    With ``kind`` ("binary", "multiclass" or "regression") each ``update`` (alias
    ``append``) folds the batch into running sums at once, and a binary head also
    keeps each example's score, label and weight for the exact AUCs (5 bytes an
    example, 9 with weights; see the module's "Memory"): memory stays bounded
    whatever the number of batches. Without ``kind`` the batches are kept as given
    until ``result(kind)`` names it (O(N) tensors: pass ``kind`` for large sets).

    - ``loss`` is the mean of the per-batch losses, tf.estimator's ``loss``:
      pass each batch's training loss as ``loss=``; when omitted it is computed
      as tf.estimator's default reduction, the batch's weighted loss summed
      and divided by the batch size.
    - ``average_loss`` is the weighted mean per-example loss over all examples,
      so the two differ when batches differ in size or weights vary.

    >>> import torch
    >>> acc = MetricAccumulator("binary")
    >>> acc.update(torch.tensor([2.0, -2.0]), torch.tensor([1, 0]), loss=0.2)
    >>> acc.update(torch.tensor([1.0]), torch.tensor([0]), loss=0.4)
    >>> r = acc.result()
    >>> r["loss"], r["auc"], acc.num_examples, acc.num_batches
    (0.30000000000000004, 1.0, 3, 2)
    """

    def __init__(self, kind: str | None = None) -> None:
        if kind is not None:
            _check_kind(kind)
        self.kind = kind
        self._prepare: Callable[[Any, Any, Any], tuple[Any, Any, Any]] | None = None
        self._new_state: Callable[[], Any] | None = None if kind is None else _STATES[kind]
        self._loss_of: Callable[[Any, Any, Any], float] | None = None
        self.reset()

    @classmethod
    def for_head(cls, head: Any) -> MetricAccumulator | None:
        """A bounded accumulator computing exactly what ``head.metrics`` computes over the
        whole set, fed each batch's raw network outputs, labels and weights; None for a
        head whose metrics need the whole set at once (one that overrides ``metrics``).
        """
        from trainrun.modules.heads import BinaryHead, MultiClassHead, RegressionHead
        from trainrun.modules.heads_extra import (
            BinaryClassHead,
            MultiLabelHead,
            PoissonRegressionHead,
        )

        # exact types: a user's subclass may override metrics()
        kinds: dict[type, str] = {
            BinaryHead: "binary",
            MultiClassHead: "multiclass",
            RegressionHead: "regression",
            BinaryClassHead: "binary",
            MultiLabelHead: "multi_label",
            PoissonRegressionHead: "poisson_regression",
        }
        kind = kinds.get(type(head))
        if kind is None:
            return None
        acc = cls(kind if kind in _STATES else None)
        if isinstance(head, BinaryClassHead):
            acc._new_state = lambda: _BinaryThresholds(head.thresholds)
        elif isinstance(head, MultiLabelHead):
            acc._new_state = lambda: _MultiLabel(head._names, head.thresholds)
        elif isinstance(head, PoissonRegressionHead):
            acc._new_state = _Poisson
        if acc._new_state is not _STATES.get(kind):  # an extra head: its own loss formula
            acc._loss_of = lambda out, y, w: float(
                head.loss(out.to(torch.float64), y.to(torch.float64), w)
            )
        acc.reset()
        acc.kind = getattr(acc._state, "kind", kind)

        def prepare(out: Any, labels: Any, weights: Any) -> tuple[Any, Any, Any]:
            # the same shaping as the head's own metrics(): one owner of the weights' rules
            w = None if weights is None else head.example_weights(weights, out.shape[0])
            if kind == "binary":
                return out.reshape(-1), labels.reshape(-1), w
            if kind == "multiclass":
                return out, labels.reshape(-1), w
            if kind == "regression":
                return head.to_target_units(out), labels.reshape(out.shape), w
            return out, labels.reshape(out.shape), w

        acc._prepare = prepare
        return acc

    def reset(self) -> None:
        """Forget every batch."""
        self._state = None if self._new_state is None else self._new_state()
        self._kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, float | None]] = []
        self._weighted: bool | None = None
        self._loss_sum = 0.0
        self.num_batches = 0
        self.num_examples = 0

    def update(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None = None,
        loss: float | torch.Tensor | None = None,
    ) -> None:
        """Add one batch: logits (or regression predictions), labels, weights, batch loss."""
        if self._prepare is not None:
            logits, labels, weights = self._prepare(logits, labels, weights)
        out = _as_tensor(logits, "logits")
        lab = _as_tensor(labels, "labels")
        if out.dim() == 0 or lab.dim() == 0 or out.shape[0] != lab.shape[0]:
            raise InputError(
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
                raise InputError(
                    f"weights must hold one value per example ({lab.shape[0]}), or per "
                    f"regression output ({tuple(out.shape)}). Received: weights of shape "
                    f"{tuple(w.shape)}"
                )
        if self._weighted is not None and (w is not None) != self._weighted:
            raise InputError(
                "Give weights for every batch or for none; mixing them leaves the metrics "
                f"undefined. Received: weights={'None' if w is None else 'a tensor'} for batch "
                f"{self.num_batches + 1}"
            )
        given = None if loss is None else float(loss)
        if self._state is None:
            self._kept.append((out, lab, w, given))
        else:
            self._state.update(out, lab, w)
            if given is None:
                loss_of = self._loss_of
                given = (
                    _batch_loss(self._state.kind, out, lab, w)
                    if loss_of is None
                    else loss_of(out, lab, w)
                )
            self._loss_sum += given
        self._weighted = w is not None
        self.num_batches += 1
        self.num_examples += int(lab.shape[0])

    append = update

    # ------------------------------------------------------------ several processes

    def piece(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None = None,
        loss: float | torch.Tensor | None = None,
    ) -> Piece:
        """One batch's contribution, checked as :meth:`update` checks it, but kept apart.

        A rank of a data-parallel evaluation makes a piece of each of its batches and
        sends them (:meth:`Piece.columns` and the rest, a few numbers) to be folded into
        one accumulator in the one-process batch order (:meth:`fold`): every running
        sum then adds the same per-batch totals in the same order as one process, so
        the result is the same to the last bit.
        """
        if self._new_state is None:
            raise InputError(
                "piece() needs an accumulator built with a kind (or for a head). "
                "Received: kind=None"
            )
        saved = (self._state, self._loss_sum, self.num_batches, self.num_examples)
        self._state, self._loss_sum = self._new_state(), 0.0
        try:
            self.update(logits, labels, weights, loss)
            return Piece(self._state, self._loss_sum, self.num_examples - saved[3])
        finally:
            self._state, self._loss_sum, self.num_batches, self.num_examples = saved

    def fold(self, piece: Piece) -> None:
        """Add a :meth:`piece` (of this kind) as if its batch were given to :meth:`update` now."""
        state = self._state
        if state is None or type(piece.state) is not type(state):
            raise InputError(
                f"fold() takes pieces of this accumulator's kind ({self.kind}). Received: a "
                f"piece of {getattr(piece.state, 'kind', type(piece.state).__name__)}"
            )
        _merge(state, piece.state)
        self._loss_sum += piece.loss
        self._weighted = piece.state_weighted
        self.num_batches += 1
        self.num_examples += piece.rows

    def result(self, kind: str | None = None) -> dict[str, float]:
        """The metrics of every batch so far for a ``kind`` head (see :data:`METRIC_KINDS`);
        ``kind`` defaults to (and must match) the one given to the constructor."""
        if kind is None and self.kind is None:
            raise InputError(
                "result() needs the metric kind, as the accumulator was built without one; "
                f"pass one of {', '.join(METRIC_KINDS)}. Received: kind=None"
            )
        kind = kind or self.kind
        if self.kind is not None and kind != self.kind:
            raise InputError(
                f"This accumulator sums {self.kind} metrics; build another for {kind!r}. "
                f"Received: kind={kind!r}"
            )
        if self._state is None:
            _check_kind(kind)  # type: ignore[arg-type]
        if self.num_batches == 0:
            raise InputError(
                "No batches were added, so there is nothing to evaluate; check that the "
                "evaluation input yields data. Received: 0 batches"
            )
        if self._state is not None:
            return self._state.result(self._loss_sum / self.num_batches)
        state, loss_sum = _STATES[kind](), 0.0  # type: ignore[index]
        for out, lab, w, given in self._kept:
            state.update(out, lab, w)
            loss_sum += _batch_loss(kind, out, lab, w) if given is None else given  # type: ignore[arg-type]
        return state.result(loss_sum / self.num_batches)


#: The per-example columns a state may keep, in the order a piece carries them.
_COLUMNS = ("scores", "hard", "weights")


class Piece:
    """One batch's share of a metric state: its sums (a few numbers) and, for a head
    with exact AUCs, its score, label and weight columns. Picklable when its columns
    are taken out (:meth:`take_columns`) and put back (:meth:`put_columns`) around the
    transfer, as :func:`trainrun.training.distributed.fold_pieces` does."""

    def __init__(self, state: Any, loss: float, rows: int) -> None:
        self.state, self.loss, self.rows = state, loss, rows
        self.state_weighted = bool(state.sums.weighted)

    def take_columns(self) -> dict[str, np.ndarray]:
        """The piece's columns as plain arrays, removed from it (nothing when none kept)."""
        out = {}
        for name in _COLUMNS:
            column = getattr(self.state, name, None)
            if isinstance(column, _Column):
                out[name] = column.array().copy() if column.size else column.array()[:0].copy()
                setattr(self.state, name, None)
        return out

    def put_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Give the piece its columns back (copied into its own chunks)."""
        for name, values in columns.items():
            column = _Column(values.dtype)
            column.extend(values)
            setattr(self.state, name, column)


def _merge(into: Any, part: Any) -> None:
    """Fold ``part``'s sums, counts and columns into ``into`` (same state type)."""
    a, b = into.sums, part.sums
    for key, total in b.sums.items():
        a.sums[key] = a.sums.get(key, 0.0) + total
    a.count += b.count
    a.weight += b.weight
    a.weighted = a.weighted or b.weighted
    at = getattr(into, "at", None)
    if at is not None:
        for name in ("correct", "tp", "predicted", "positive"):
            getattr(at, name)[:] += getattr(part.at, name)
        at.total += part.at.total
    for name in ("n_classes", "dims"):
        if getattr(part, name, None) is not None:
            setattr(into, name, getattr(part, name))
    if not hasattr(into, "finite"):
        return
    if into.finite and not part.finite:
        into.finite = False  # the curves are undefined: stop keeping scores
        into.scores, into.hard, into.weights = _Column(np.float32), _Column(np.uint8), None
    if not into.finite:
        return
    into.scores.extend(part.scores.array())
    into.hard.extend(part.hard.array())
    if part.weights is not None:
        if into.weights is None:
            into.weights = _Column(part.weights.dtype)
        into.weights.extend(part.weights.array())


def _check_kind(kind: str) -> None:
    if kind not in _STATES:
        raise InputError(
            f"Unknown metric kind; expected one of {', '.join(METRIC_KINDS)}. "
            f"Received: kind={kind!r}"
        )
