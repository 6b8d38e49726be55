"""Heads on plain tensors: labels, losses (weights, reductions), predictions, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainrun.exceptions import InputError
from trainrun.modules.heads import (
    BinaryHead,
    MultiClassHead,
    RegressionHead,
    head_from_config,
    make_classification_head,
)


def test_binary_labels_and_loss():
    head = BinaryHead(label_vocabulary=["No", "Yes"])
    labels = head.label_fn(np.array(["Yes", "No", "Yes", "Yes"], dtype=object))
    assert labels.tolist() == [1.0, 0.0, 1.0, 1.0]
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-0.5]])
    per = F.binary_cross_entropy_with_logits(logits[:, 0], labels, reduction="none")
    assert torch.allclose(head.loss(logits, labels, None), per.mean())
    w = torch.tensor([1.0, 2.0, 0.0, 1.0])
    # SUM_OVER_BATCH_SIZE divides the weighted sum by the batch size, as tf.estimator does.
    assert torch.allclose(head.loss(logits, labels, w), (per * w).sum() / 4)
    summed = BinaryHead(loss_reduction="SUM")
    assert torch.allclose(summed.loss(logits, labels, w), (per * w).sum())
    assert head.average_loss(logits, labels, w) == pytest.approx(float((per * w).sum() / 4.0))


def test_binary_labels_numeric_and_bool():
    head = BinaryHead()
    assert head.label_fn(np.array([0, 1, 1])).tolist() == [0.0, 1.0, 1.0]
    assert head.label_fn(np.array([True, False])).tolist() == [1.0, 0.0]
    assert head.label_fn(np.array([[1.0], [0.0]])).tolist() == [1.0, 0.0]
    with pytest.raises(InputError, match="non-integer values"):
        head.label_fn(np.array([1.5, 1.0]))
    with pytest.raises(InputError, match="missing values"):
        head.label_fn(np.array([np.nan, 1.0]))
    # A vocabulary of digits still maps integer labels.
    assert BinaryHead(label_vocabulary=["1", "0"]).label_fn(np.array([0, 1])).tolist() == [1.0, 0.0]


def test_binary_predictions():
    head = BinaryHead(label_vocabulary=["No", "Yes"])
    out = head.predictions(torch.tensor([[0.0], [3.0], [-2.0]]))
    assert set(out) == set(head.prediction_keys)
    assert out["logits"].shape == (3, 1)
    assert out["probabilities"].shape == (3, 2)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
    assert out["class_ids"][:, 0].tolist() == [0, 1, 0]
    assert out["classes"][:, 0].tolist() == ["No", "Yes", "No"]
    assert out["all_classes"][0].tolist() == ["No", "Yes"]
    assert out["all_class_ids"][2].tolist() == [0, 1]


def test_multiclass():
    head = make_classification_head(3)
    assert isinstance(head, MultiClassHead) and head.logits_dimension == 3
    labels = head.label_fn(np.array([2, 0, 1]))
    assert labels.dtype == torch.int64
    logits = torch.tensor([[0.1, 0.2, 3.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(head.loss(logits, labels, None), F.cross_entropy(logits, labels))
    out = head.predictions(logits)
    assert out["class_ids"][:, 0].tolist() == [2, 0, 1]
    assert out["classes"][:, 0].tolist() == ["2", "0", "1"]
    assert "logistic" not in out
    with pytest.raises(InputError, match=r"Labels must be in \[0, n_classes=3\); got \[3, 7\]"):
        head.label_fn(np.array([0, 3, 7]))
    with pytest.raises(InputError, match=r"Labels \['d'\] are not in label_vocabulary"):
        MultiClassHead(3, ["a", "b", "c"]).label_fn(np.array(["a", "d"]))


def test_regression():
    head = RegressionHead(label_dimension=2)
    labels = head.label_fn(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert labels.shape == (2, 2)
    logits = torch.tensor([[1.0, 1.0], [3.0, 5.0]])
    # As tf.estimator: averaged over every (example, label dimension) element,
    # weights per example; "sum" adds every element.
    assert head.loss(logits, labels, None).item() == pytest.approx((0 + 1 + 0 + 1) / 4)
    w = torch.tensor([2.0, 1.0])
    assert head.loss(logits, labels, w).item() == pytest.approx((2 * 1 + 1 * 1) / 4)
    assert RegressionHead(2, loss_reduction="sum").loss(logits, labels, w).item() == 3.0
    from trainrun.modules.metrics import regression_metrics

    metrics = regression_metrics(logits, labels, None, head.loss(logits, labels, None).item())
    assert metrics["average_loss"] == pytest.approx(head.loss(logits, labels, None).item())
    assert head.predictions(logits)["predictions"].shape == (2, 2)
    with pytest.raises(InputError, match="label_dimension=2"):
        head.label_fn(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="must be numbers"):
        RegressionHead().label_fn(np.array(["1.5", "abc"], dtype=object))


def test_configs_round_trip():
    for head in (BinaryHead(["n", "y"], "sum"), MultiClassHead(4), RegressionHead(3)):
        again = head_from_config(head.to_config())
        assert type(again) is type(head) and again.to_config() == head.to_config()
    assert repr(BinaryHead()) == (
        "BinaryHead(n_classes=2, label_vocabulary=None, loss_reduction='sum_over_batch_size')"
    )
    with pytest.raises(ValueError, match="loss_reduction must be one of"):
        BinaryHead(loss_reduction="mean")


def test_missing_string_labels():
    head = BinaryHead(label_vocabulary=["No", "Yes"])
    with pytest.raises(InputError, match="missing values \\(first at row 1\\)"):
        head.label_fn(np.array(["No", None, "Yes"], dtype=object))
