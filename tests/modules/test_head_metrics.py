"""The thresholds, multi-label and Poisson heads evaluate in bounded memory, exactly.

Each head's metrics are streamed batch by batch through ``MetricAccumulator.for_head``
(what ``evaluate`` does) and compared with scikit-learn on random weighted data.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    mean_poisson_deviance,
    precision_score,
    recall_score,
    roc_auc_score,
)

from trainrun.exceptions import InputError
from trainrun.modules import metrics
from trainrun.modules.heads_extra import BinaryClassHead, MultiLabelHead, PoissonRegressionHead
from trainrun.modules.metrics import MetricAccumulator

REL = 1e-10


@pytest.fixture
def small_steps(monkeypatch):
    """Columns in chunks of 5 float32 values and curve passes of 7: chunk, step and tie
    borders are crossed many times."""
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", 20)
    monkeypatch.setattr(metrics, "_PASS", 7)


def stream(head, z, y, w, batch=37, loss=0.25):
    acc = MetricAccumulator.for_head(head)
    assert acc is not None
    for s in range(0, len(z), batch):
        acc.update(
            z[s : s + batch], y[s : s + batch], None if w is None else w[s : s + batch], loss
        )
    return acc.result()


def weights(rng, n, weighted):
    return (
        torch.from_numpy(rng.uniform(0.0, 3.0, size=(n, 1)).astype(np.float32))
        if weighted
        else None
    )


def sk_w(w):
    return None if w is None else w.reshape(-1).double().numpy()


def at(prob, hard, t, w):
    pred = prob > t
    return (
        accuracy_score(hard, pred, sample_weight=w),
        precision_score(hard, pred, sample_weight=w, zero_division=0),
        recall_score(hard, pred, sample_weight=w, zero_division=0),
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_thresholds_head_streamed_equals_scikit_learn(weighted, small_steps):
    rng = np.random.default_rng(1)
    n = 500
    y = (rng.random(n) < 0.4).astype(np.float32)
    z = torch.from_numpy(np.round((rng.normal(size=n) + y) * 4) / 4).float().reshape(n, 1)
    w = weights(rng, n, weighted)
    head = BinaryClassHead(thresholds=[0.2, 0.5, 0.8])
    got = stream(head, z, torch.from_numpy(y).reshape(n, 1), w)
    prob = torch.sigmoid(z.double()).numpy().ravel()
    sw = sk_w(w)
    for t in head.thresholds:
        acc, prec, rec = at(prob, y > 0.5, t, sw)
        assert got[f"accuracy/positive_threshold_{t:g}"] == pytest.approx(acc, rel=REL)
        assert got[f"precision/positive_threshold_{t:g}"] == pytest.approx(prec, rel=REL)
        assert got[f"recall/positive_threshold_{t:g}"] == pytest.approx(rec, rel=REL)
    assert got["auc"] == pytest.approx(
        roc_auc_score(y, z.numpy().ravel(), sample_weight=sw), rel=REL
    )
    ap = average_precision_score(y, z.numpy().ravel(), sample_weight=sw)
    assert got["auc_precision_recall"] == pytest.approx(ap, rel=REL)
    one_shot = head.metrics(z, torch.from_numpy(y).reshape(n, 1), w, 0.25)
    assert one_shot.keys() == got.keys()
    for key, value in got.items():
        assert one_shot[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize("weighted", [False, True])
def test_multi_label_head_streamed_equals_scikit_learn_per_class(weighted, small_steps):
    rng = np.random.default_rng(2)
    n, c = 400, 3
    y = (rng.random((n, c)) < [0.2, 0.5, 0.7]).astype(np.float32)
    z = torch.from_numpy((np.round(rng.normal(size=(n, c)) * 3) / 3 + 1.2 * y).astype(np.float32))
    w = weights(rng, n, weighted)
    head = MultiLabelHead(c, label_vocabulary=["red", "green", "blue"], thresholds=[0.3, 0.6])
    got = stream(head, z, torch.from_numpy(y), w)
    sw = sk_w(w)
    zn = z.numpy()
    for j, name in enumerate(["red", "green", "blue"]):
        auc = roc_auc_score(y[:, j], zn[:, j], sample_weight=sw)
        ap = average_precision_score(y[:, j], zn[:, j], sample_weight=sw)
        assert got[f"auc/{name}"] == pytest.approx(auc, rel=REL), name
        assert got[f"auc_precision_recall/{name}"] == pytest.approx(ap, rel=REL), name
    wide = None if sw is None else np.repeat(sw, c)
    assert got["auc"] == pytest.approx(
        roc_auc_score(y.ravel(), zn.ravel(), sample_weight=wide), rel=REL
    )
    ap = average_precision_score(y.ravel(), zn.ravel(), sample_weight=wide)
    assert got["auc_precision_recall"] == pytest.approx(ap, rel=REL)
    prob = torch.sigmoid(z.double()).numpy()
    for t in head.thresholds:
        acc, prec, rec = at(prob.ravel(), y.ravel() > 0.5, t, wide)
        assert got[f"accuracy/positive_threshold_{t:g}"] == pytest.approx(acc, rel=REL)
        assert got[f"precision/positive_threshold_{t:g}"] == pytest.approx(prec, rel=REL)
        assert got[f"recall/positive_threshold_{t:g}"] == pytest.approx(rec, rel=REL)
    per = F.binary_cross_entropy_with_logits(
        z.double(), torch.from_numpy(y).double(), reduction="none"
    )
    per = per.sum(dim=1).numpy()
    assert got["average_loss"] == pytest.approx(np.average(per, weights=sw), rel=REL)
    assert got["loss"] == 0.25
    one_shot = head.metrics(z, torch.from_numpy(y), w, 0.25)
    assert one_shot.keys() == got.keys()
    for key, value in got.items():
        assert one_shot[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dims", [1, 2])
def test_poisson_head_streamed_equals_scikit_learn_deviance(weighted, dims):
    rng = np.random.default_rng(3)
    n = 300
    z = torch.from_numpy(rng.normal(0.5, 0.7, size=(n, dims)).astype(np.float32))
    y = torch.from_numpy(rng.poisson(np.exp(z.numpy())).astype(np.float32))
    w = weights(rng, n, weighted)
    head = PoissonRegressionHead(dims)
    got = stream(head, z, y, w)
    sw = sk_w(w)
    wide = None if sw is None else np.repeat(sw, dims)
    mu, yn = np.exp(z.double().numpy()).ravel(), y.double().numpy().ravel()
    assert got["poisson_deviance"] == pytest.approx(
        mean_poisson_deviance(yn, mu, sample_weight=wide), rel=REL
    )
    nll = F.poisson_nll_loss(z.double(), y.double(), log_input=True, full=True, reduction="none")
    assert got["average_loss"] == pytest.approx(
        np.average(nll.numpy().ravel(), weights=wide), rel=REL
    )
    assert got["prediction/mean"] == pytest.approx(np.average(mu, weights=wide), rel=REL)
    assert got["label/mean"] == pytest.approx(np.average(yn, weights=wide), rel=REL)
    one_shot = head.metrics(z, y, w, 0.25)
    assert one_shot.keys() == got.keys()
    for key, value in got.items():
        assert one_shot[key] == pytest.approx(value, rel=1e-12), key


def test_the_loss_defaults_to_the_heads_own_batch_loss():
    z, y = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    head = MultiLabelHead(2)
    acc = MetricAccumulator.for_head(head)
    acc.update(z, y)
    assert acc.result()["loss"] == pytest.approx(float(head.loss(z, y, None)), rel=1e-6)
    assert acc.kind == "multi_label"


def test_a_non_finite_logit_makes_the_multi_label_aucs_nan_and_keeps_the_rest():
    head = MultiLabelHead(2)
    acc = MetricAccumulator.for_head(head)
    acc.update(torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, 0.0]]), loss=0.1)
    acc.update(torch.tensor([[math.inf, 0.0]]), torch.tensor([[0.0, 1.0]]), loss=0.1)
    r = acc.result()
    assert math.isnan(r["auc"]) and math.isnan(r["auc/0"])
    assert r["precision/positive_threshold_0.5"] == pytest.approx(0.5)


def test_multi_label_mistakes_are_named():
    acc = MetricAccumulator.for_head(MultiLabelHead(3))
    with pytest.raises(InputError, match=r"shape \[N, 3\]"):
        acc.update(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(InputError, match="must be 0 or 1"):
        acc.update(torch.zeros(1, 3), torch.tensor([[0.0, 2.0, 1.0]]))
    with pytest.raises(InputError, match="kind"):
        acc.result("binary")
    poisson = MetricAccumulator.for_head(PoissonRegressionHead())
    with pytest.raises(InputError, match="must be >= 0"):
        poisson.update(torch.zeros(2, 1), torch.tensor([[1.0], [-1.0]]))


# ---------------------------------------------------------------- bounded memory


def _feed(head, n, batch, make):
    """Feed ``n`` examples in batches made by ``make`` (each made and dropped here);
    returns (bytes kept after the last batch, peak bytes while computing the result,
    the result)."""
    acc = MetricAccumulator.for_head(head)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        for _ in range(n // batch):
            acc.update(*make(rng, batch), loss=0.1)
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        r = acc.result()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return kept, peak, r


N = 1_000_000
MB = 1 << 20


@pytest.mark.parametrize("weighted", [False, True])
def test_thresholds_head_memory_is_the_binary_heads(weighted, monkeypatch):
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", MB)

    def make(rng, b):
        y = torch.from_numpy((rng.random(b) < 0.3).astype(np.float32))
        z = torch.from_numpy(rng.normal(size=b).astype(np.float32)) + y
        w = torch.from_numpy(rng.uniform(0, 2, b).astype(np.float32)) if weighted else None
        return z, y, w

    kept, peak, r = _feed(BinaryClassHead(thresholds=[0.1, 0.3, 0.5, 0.7, 0.9]), N, 20_000, make)
    assert kept <= (9 if weighted else 5) * N + 3 * MB  # the thresholds add 4 sums each
    assert peak <= 32 * N, f"{peak / N:.1f} bytes an example"
    assert 0.0 < r["precision/positive_threshold_0.9"] < 1.0


@pytest.mark.parametrize("weighted", [False, True])
def test_multi_label_memory_per_score_stays_under_32_bytes(weighted, monkeypatch):
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", MB)
    c, n = 3, N // 3  # a million scores

    def make(rng, b):
        y = torch.from_numpy((rng.random((b, c)) < 0.3).astype(np.float32))
        z = torch.from_numpy(rng.normal(size=(b, c)).astype(np.float32)) + y
        w = torch.from_numpy(rng.uniform(0, 2, b).astype(np.float32)) if weighted else None
        return z, y, w

    kept, peak, r = _feed(MultiLabelHead(c), n, 20_000, make)
    scores = n * c
    assert kept <= 5 * scores + (4 * n if weighted else 0) + 4 * MB
    assert peak <= 32 * scores, f"{peak / scores:.1f} bytes a score"
    assert 0.7 < r["auc/2"] < 0.9


def test_poisson_memory_does_not_grow_with_the_examples():
    def make(rng, b):
        z = torch.from_numpy(rng.normal(size=(b, 1)).astype(np.float32))
        y = torch.from_numpy(rng.poisson(np.exp(z.numpy())).astype(np.float32))
        return z, y, torch.from_numpy(rng.uniform(0, 2, b).astype(np.float32))

    kept, peak, r = _feed(PoissonRegressionHead(), N, 20_000, make)
    assert kept < 64 * 1024, kept  # running sums only
    assert peak < 64 * 1024, peak
    assert 0.5 < r["poisson_deviance"] < 2.0


# ---------------------------------------------------------------- pieces (several processes)


def _piece_cases():
    rng = np.random.default_rng(7)
    n = 230
    y = (rng.random(n) < 0.4).astype(np.float32)
    z = torch.from_numpy(np.round((rng.normal(size=n) + y) * 4) / 4).float()
    tags = torch.from_numpy((rng.random((n, 3)) < 0.4).astype(np.float32))
    counts = torch.from_numpy(rng.poisson(2.0, size=(n, 1)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(0.0, 3.0, size=(n, 1)).astype(np.float32))
    from trainrun.modules.heads import BinaryHead, MultiClassHead, RegressionHead

    multi = torch.from_numpy(rng.integers(0, 4, size=n))
    return [
        (BinaryHead(), z.reshape(n, 1), torch.from_numpy(y).reshape(n, 1), w),
        (BinaryClassHead(thresholds=[0.3, 0.7]), z.reshape(n, 1), torch.from_numpy(y), w),
        (
            MultiLabelHead(3),
            z.reshape(n, 1) + torch.randn(n, 3, generator=torch.Generator().manual_seed(0)),
            tags,
            w,
        ),
        (
            MultiClassHead(4),
            torch.randn(n, 4, generator=torch.Generator().manual_seed(1)),
            multi,
            None,
        ),
        (RegressionHead(1), counts + 0.5, counts, w),
        (PoissonRegressionHead(), torch.log(counts + 0.5), counts, w),
    ]


@pytest.mark.parametrize("case", range(6))
def test_pieces_folded_in_batch_order_equal_one_pass_to_the_last_bit(case, small_steps):
    from trainrun.training.distributed import fold_pieces

    head, z, y, w = _piece_cases()[case]
    batches = [(s, min(s + 16, len(z))) for s in range(0, len(z), 16)]
    one = MetricAccumulator.for_head(head)
    for lo, hi in batches:
        one.update(z[lo:hi], y[lo:hi], None if w is None else w[lo:hi], loss=0.1 * lo)
    want = one.result()
    # two "ranks" made pieces of alternate batches; they arrive out of order
    acc = MetricAccumulator.for_head(head)
    pieces = []
    for i, (lo, hi) in enumerate(batches):
        part = acc.piece(z[lo:hi], y[lo:hi], None if w is None else w[lo:hi], loss=0.1 * lo)
        pieces.append((i, part, part.take_columns()))
    assert acc.num_batches == 0  # a piece is kept apart
    shuffled = pieces[1::2] + pieces[::2]
    got = fold_pieces(acc, shuffled)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert (math.isnan(value) and math.isnan(got[key])) or got[key] == value, key


def test_a_piece_of_another_kind_is_refused():
    acc = MetricAccumulator.for_head(MultiLabelHead(2))
    other = MetricAccumulator("binary").piece(torch.tensor([1.0]), torch.tensor([1.0]))
    with pytest.raises(InputError, match="pieces of this accumulator's kind"):
        acc.fold(other)
