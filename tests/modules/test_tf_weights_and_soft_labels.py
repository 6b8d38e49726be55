"""The metric functions on tf's cases: per-dimension weights, soft binary labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainrun.modules.metrics import MetricAccumulator, binary_metrics, regression_metrics

PRED = torch.tensor([[45.0, 41.0, 44.0]])
LABEL = torch.tensor([[35.0, 42.0, 45.0]])
W = torch.tensor([[1.0, 0.1, 1.5]])


def test_regression_metrics_weigh_each_label_dimension():
    m = regression_metrics(PRED, LABEL, W, loss=0.0)
    assert m["average_loss"] == pytest.approx(101.6 / 2.6)  # tf: 39.0769231
    assert m["label/mean"] == pytest.approx((35 + 4.2 + 67.5) / 2.6)
    with pytest.raises(ValueError, match=r"\[N\], \[N, 1\] or \[N, 3\]"):
        regression_metrics(PRED, LABEL, torch.ones(1, 2), loss=0.0)


def test_the_accumulator_takes_per_dimension_weights_batch_by_batch():
    acc = MetricAccumulator()
    acc.update(PRED, LABEL, W)
    acc.update(LABEL, LABEL, torch.tensor([[2.0, 2.0, 2.0]]))  # a perfect second batch
    m = acc.result("regression")
    assert m["average_loss"] == pytest.approx(101.6 / (2.6 + 6.0))
    # tf's default batch loss: weighted sum / (batch size x label_dimension), then the mean
    assert m["loss"] == pytest.approx((101.6 / 3 + 0.0) / 2)


def test_binary_metrics_take_soft_labels_and_threshold_them_at_a_half():
    z = torch.tensor([-1.0, 2.0, -3.0, 5.0])
    y = torch.tensor([0.8, 0.3, 0.6, 0.1])
    m = binary_metrics(z, y, None, loss=0.0)
    p = 1 / (1 + np.exp(-z.numpy().astype(np.float64)))
    yy = y.numpy().astype(np.float64)
    bce = -(yy * np.log(p) + (1 - yy) * np.log(1 - p))
    assert m["average_loss"] == pytest.approx(bce.mean())
    assert m["label/mean"] == pytest.approx(yy.mean())
    assert m["accuracy"] == 0.0 and m["precision"] == 0.0 and m["recall"] == 0.0
    with pytest.raises(ValueError, match=r"soft labels in \[0, 1\]"):
        binary_metrics(z, torch.tensor([0.0, 1.0, 1.5, 0.0]), None, loss=0.0)
