"""Exact metrics against scikit-learn, on random data with weights and ties."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from trainrun.modules.metrics import (
    MetricAccumulator,
    average_precision,
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
    roc_auc,
)

BINARY_KEYS = {
    "accuracy",
    "accuracy_baseline",
    "auc",
    "auc_precision_recall",
    "average_loss",
    "label/mean",
    "loss",
    "precision",
    "prediction/mean",
    "recall",
}


def _binary_data(seed, n=500, ties=False, weighted=False):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.35).astype(np.int64)
    logits = rng.normal(size=n) + 1.2 * labels
    if ties:  # few distinct scores: many ties, including across classes
        logits = np.round(logits * 2) / 2
    weights = rng.uniform(0.0, 3.0, size=n) if weighted else None
    return logits, labels, weights


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_metrics_match_sklearn(seed, ties, weighted):
    logits, labels, w = _binary_data(seed, ties=ties, weighted=weighted)
    tw = None if w is None else torch.from_numpy(w)
    m = binary_metrics(torch.from_numpy(logits), torch.from_numpy(labels), tw, loss=0.123)
    assert set(m) == BINARY_KEYS
    prob = 1 / (1 + np.exp(-logits))
    pred = (logits > 0).astype(np.int64)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, prob, sample_weight=w), abs=1e-12)
    assert m["auc_precision_recall"] == pytest.approx(
        average_precision_score(labels, prob, sample_weight=w), abs=1e-12
    )
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred, sample_weight=w))
    assert m["precision"] == pytest.approx(precision_score(labels, pred, sample_weight=w))
    assert m["recall"] == pytest.approx(recall_score(labels, pred, sample_weight=w))
    assert m["average_loss"] == pytest.approx(log_loss(labels, prob, sample_weight=w), rel=1e-9)
    label_mean = np.average(labels, weights=w)
    assert m["label/mean"] == pytest.approx(label_mean)
    assert m["accuracy_baseline"] == pytest.approx(max(label_mean, 1 - label_mean))
    assert m["prediction/mean"] == pytest.approx(np.average(prob, weights=w))
    assert m["loss"] == 0.123
    assert all(isinstance(v, float) for v in m.values())


def test_auc_ties_count_one_half():
    # one positive and one negative share a score: that pair counts 1/2
    assert roc_auc(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == 0.5
    assert roc_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0])) == 0.875


def test_integer_weights_equal_repeated_rows():
    logits, labels, _ = _binary_data(5, n=60, ties=True)
    reps = np.random.default_rng(5).integers(0, 4, size=60)
    weighted = binary_metrics(
        torch.from_numpy(logits), torch.from_numpy(labels), torch.from_numpy(reps), 0.0
    )
    repeated = binary_metrics(
        torch.from_numpy(np.repeat(logits, reps)),
        torch.from_numpy(np.repeat(labels, reps)),
        None,
        0.0,
    )
    for key in BINARY_KEYS:
        assert weighted[key] == pytest.approx(repeated[key], abs=1e-12), key


def test_single_class_auc_is_nan_and_no_positive_predictions_give_zero_precision():
    m = binary_metrics(torch.tensor([-1.0, -2.0]), torch.tensor([0, 0]), None, 0.0)
    assert math.isnan(m["auc"]) and math.isnan(m["auc_precision_recall"])
    assert m["precision"] == 0.0 and m["recall"] == 0.0
    assert m["accuracy"] == 1.0 and m["accuracy_baseline"] == 1.0
    assert math.isnan(average_precision(np.array([np.nan, 1.0]), np.array([1.0, 0.0])))


def test_auc_ranks_by_logit_where_probabilities_round_to_one():
    # sigmoid(40) and sigmoid(50) are both exactly 1.0 in float64; the logits still differ
    m = binary_metrics(torch.tensor([50.0, 40.0, 45.0]), torch.tensor([1, 0, 1]), None, 0.0)
    assert m["auc"] == 1.0 and m["auc_precision_recall"] == 1.0


def test_binary_accepts_column_logits_and_float_labels():
    m1 = binary_metrics(torch.tensor([[1.0], [-1.0]]), torch.tensor([1.0, 0.0]), None, 0.0)
    m2 = binary_metrics(torch.tensor([1.0, -1.0]), torch.tensor([1, 0]), None, 0.0)
    assert m1 == m2


@pytest.mark.parametrize(
    ("logits", "labels", "weights", "match"),
    [
        (torch.zeros(3), torch.tensor([0, 1, 2]), None, r"0 or 1.*Received: labels containing \[2"),
        (torch.zeros(3), torch.tensor([0, 1]), None, "same number of examples.*3 logits"),
        (torch.zeros(0), torch.zeros(0), None, "zero examples"),
        (torch.zeros(2, 2), torch.tensor([0, 1]), None, r"one logit per example.*\(2, 2\)"),
        (torch.zeros(2), torch.tensor([0, 1]), torch.tensor([1.0, -1.0]), "non-negative"),
        (torch.zeros(2), torch.tensor([0, 1]), torch.tensor([1.0]), "one value per example"),
    ],
)
def test_binary_bad_input_names_the_problem(logits, labels, weights, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(logits, labels, weights, 0.0)


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_metrics_match_sklearn(weighted):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[labels]
    w = rng.uniform(0.1, 2.0, size=300) if weighted else None
    m = multiclass_metrics(
        torch.from_numpy(logits),
        torch.from_numpy(labels),
        None if w is None else torch.from_numpy(w),
        0.5,
    )
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert set(m) == {"accuracy", "average_loss", "loss"}
    assert m["accuracy"] == pytest.approx(
        accuracy_score(labels, logits.argmax(axis=1), sample_weight=w)
    )
    assert m["average_loss"] == pytest.approx(
        log_loss(labels, prob, sample_weight=w, labels=[0, 1, 2, 3]), rel=1e-9
    )
    with pytest.raises(ValueError, match=r"lie in \[0, 3\].*Received: labels containing \[7\]"):
        multiclass_metrics(torch.zeros(2, 4), torch.tensor([0, 7]), None, 0.0)


@pytest.mark.parametrize("dims", [1, 3])
def test_regression_metrics(dims):
    rng = np.random.default_rng(4)
    p = rng.normal(size=(200, dims))
    y = rng.normal(size=(200, dims))
    w = rng.uniform(0, 2, size=200)
    m = regression_metrics(torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(w), 0.7)
    ww = np.repeat(w[:, None], dims, axis=1)
    assert set(m) == {"average_loss", "label/mean", "loss", "prediction/mean"}
    assert m["average_loss"] == pytest.approx(np.average((p - y) ** 2, weights=ww))
    assert m["label/mean"] == pytest.approx(np.average(y, weights=ww))
    assert m["prediction/mean"] == pytest.approx(np.average(p, weights=ww))
    with pytest.raises(ValueError, match="same shape"):
        regression_metrics(torch.zeros(3, 2), torch.zeros(3, 1), None, 0.0)


def test_accumulator_equals_one_shot_and_defines_loss_as_mean_batch_loss():
    logits, labels, w = _binary_data(7, n=250, weighted=True)
    acc = MetricAccumulator()
    losses = []
    for start in range(0, 250, 64):  # uneven last batch
        sl = slice(start, start + 64)
        z, y, ww = (torch.from_numpy(a[sl]) for a in (logits, labels, w))
        per = torch.nn.functional.binary_cross_entropy_with_logits(z, y.double(), reduction="none")
        losses.append(float((per * ww).sum() / len(y)))
        acc.update(z, y, ww)  # no loss given: the default reduction is computed
    r = acc.result("binary")
    one = binary_metrics(
        torch.from_numpy(logits),
        torch.from_numpy(labels),
        torch.from_numpy(w),
        float(np.mean(losses)),
    )
    assert r == pytest.approx(one, abs=1e-12)
    assert acc.num_examples == 250 and acc.num_batches == 4
    # the two losses differ: mean of batch means vs weighted mean per example
    assert r["loss"] != pytest.approx(r["average_loss"])


def test_accumulator_given_losses_and_kinds():
    acc = MetricAccumulator()
    acc.append(torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1]), loss=torch.tensor(1.0))
    acc.append(torch.randn(2, 3), torch.tensor([2, 2]), loss=2.0)
    assert acc.result("multiclass")["loss"] == 1.5
    with pytest.raises(ValueError, match="Unknown metric kind.*kind='ranking'"):
        acc.result("ranking")
    with pytest.raises(ValueError, match="weights for every batch or for none"):
        acc.update(torch.randn(1, 3), torch.tensor([0]), torch.tensor([1.0]))
    acc.reset()
    with pytest.raises(ValueError, match="No batches"):
        acc.result("binary")
    reg = MetricAccumulator()
    reg.update(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [0.0]]))
    assert reg.result("regression")["loss"] == pytest.approx(2.0)
