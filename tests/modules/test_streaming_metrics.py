"""Metrics streamed batch by batch in bounded memory equal the whole-set computation.

``_reference`` below is the whole-set implementation evaluate() used before the
streaming accumulator (every batch kept, float64 copies of the whole set, one sort):
the streamed results must equal it, and scikit-learn, on random data.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score

import trainrun
from trainrun.modules import metrics
from trainrun.modules.heads import BinaryHead, MultiClassHead, RegressionHead
from trainrun.modules.heads_extra import BinaryClassHead, MultiLabelHead
from trainrun.modules.metrics import MetricAccumulator

# ---------------------------------------------------------------- the whole-set reference


def _ref_mean(values, w):
    values = values.to(torch.float64)
    if w is None:
        return float(values.mean())
    total = float(w.sum())
    return math.nan if total <= 0 else float((values * w).sum()) / total


def _ref_curve(scores, labels, w):
    w = np.ones_like(scores) if w is None else w
    if not np.isfinite(scores).all():
        return None
    order = np.argsort(-scores, kind="stable")
    scores, labels, w = scores[order], labels[order], w[order]
    tp, fp = np.cumsum(w * labels), np.cumsum(w * (1.0 - labels))
    ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    return tp[ends], fp[ends]


def _ref_auc(scores, labels, w):
    curve = _ref_curve(scores, labels, w)
    if curve is None or curve[0][-1] <= 0 or curve[1][-1] <= 0:
        return math.nan
    tp, fp = curve
    pos, neg = tp[-1], fp[-1]
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1])) / 2.0 / (pos * neg))


def _ref_ap(scores, labels, w):
    curve = _ref_curve(scores, labels, w)
    if curve is None or curve[0][-1] <= 0:
        return math.nan
    tp, fp = curve
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.ones_like(tp), where=predicted > 0)
    return float(np.sum(np.diff(np.r_[0.0, tp / tp[-1]]) * precision))


def _reference(kind, out, y, w, loss):
    """The pre-streaming binary/multiclass/regression_metrics (weights [N] or [N, d])."""
    out = out.to(torch.float64)
    w = None if w is None else w.to(torch.float64)
    if kind == "binary":
        z, y = out.reshape(-1), y.reshape(-1).to(torch.float64)
        hard = (y > 0.5).to(torch.float64)
        predicted = (z > 0).to(torch.float64)
        ww = torch.ones_like(y) if w is None else w
        tp = float((ww * predicted * hard).sum())
        label_mean = _ref_mean(y, w)
        nw = None if w is None else w.numpy()
        den_p, den_r = float((ww * predicted).sum()), float((ww * hard).sum())
        return {
            "accuracy": _ref_mean((predicted == hard).to(torch.float64), w),
            "accuracy_baseline": max(label_mean, 1.0 - label_mean),
            "auc": _ref_auc(z.numpy(), hard.numpy(), nw),
            "auc_precision_recall": _ref_ap(z.numpy(), hard.numpy(), nw),
            "average_loss": _ref_mean(
                F.binary_cross_entropy_with_logits(z, y, reduction="none"), w
            ),
            "label/mean": label_mean,
            "loss": loss,
            "precision": tp / den_p if den_p > 0 else 0.0,
            "prediction/mean": _ref_mean(torch.sigmoid(z), w),
            "recall": tp / den_r if den_r > 0 else 0.0,
        }
    if kind == "multiclass":
        y = y.reshape(-1).to(torch.int64)
        return {
            "accuracy": _ref_mean((out.argmax(dim=1) == y).to(torch.float64), w),
            "average_loss": _ref_mean(F.cross_entropy(out, y, reduction="none"), w),
            "loss": loss,
        }
    p, y = out.reshape(out.shape[0], -1), y.to(torch.float64).reshape(out.shape[0], -1)
    wide = None
    if w is not None:
        wide = (w if w.dim() == 2 and w.shape[1] > 1 else w.reshape(-1, 1).expand_as(y)).reshape(-1)
    return {
        "average_loss": _ref_mean(((p - y) ** 2).reshape(-1), wide),
        "label/mean": _ref_mean(y.reshape(-1), wide),
        "loss": loss,
        "prediction/mean": _ref_mean(p.reshape(-1), wide),
    }


# ---------------------------------------------------------------- data


def _data(kind, seed, n, weighted, ties=False, dims=1):
    rng = np.random.default_rng(seed)
    if kind == "binary":
        y = (rng.random(n) < 0.3).astype(np.float32)
        out = (rng.normal(size=n) + 1.1 * y).astype(np.float32)
        if ties:
            out = np.round(out * 2) / 2
    elif kind == "multiclass":
        y = rng.integers(0, 4, size=n)
        out = rng.normal(size=(n, 4)).astype(np.float32)
    else:
        y = rng.normal(3.0, 2.0, size=(n, dims)).astype(np.float32)
        out = (y + rng.normal(size=(n, dims))).astype(np.float32)
    w = rng.uniform(0.0, 3.0, size=n).astype(np.float32) if weighted else None
    return torch.from_numpy(out), torch.from_numpy(y), None if w is None else torch.from_numpy(w)


def _stream(kind, out, y, w, batch):
    acc = MetricAccumulator(kind)
    losses = []
    for s in range(0, len(y), batch):
        loss = float(np.random.default_rng(s).random())
        losses.append(loss)
        acc.update(
            out[s : s + batch], y[s : s + batch], None if w is None else w[s : s + batch], loss
        )
    return acc.result(), sum(losses) / len(losses)


def _assert_same(got, want, rel=1e-12):
    assert set(got) == set(want)
    for key, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=rel, abs=1e-15), key


@pytest.fixture
def small_steps(monkeypatch):
    """Columns in chunks of 5 float32 values and curve passes of 7: every tie run,
    chunk and step border of a few hundred examples is crossed many times."""
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", 20)
    monkeypatch.setattr(metrics, "_PASS", 7)


# ---------------------------------------------------------------- equal to the whole set


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch", [1, 37, 1000])
def test_streamed_metrics_equal_the_whole_set_implementation(kind, weighted, batch, small_steps):
    out, y, w = _data(kind, seed=batch, n=600, weighted=weighted, ties=batch == 37)
    got, loss = _stream(kind, out, y, w, batch)
    _assert_same(got, _reference(kind, out, y, w, loss))


def test_unweighted_aucs_are_bitwise_the_whole_set_values(small_steps):
    out, y, _ = _data("binary", seed=3, n=997, weighted=False, ties=True)
    got, loss = _stream("binary", out, y, None, 64)
    want = _reference("binary", out, y, None, loss)
    assert got["auc"] == want["auc"]  # integer counts: no rounding to differ in


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_streamed_aucs_equal_scikit_learn(weighted, ties, small_steps):
    out, y, w = _data("binary", seed=11, n=800, weighted=weighted, ties=ties)
    got, _ = _stream("binary", out, y, w, 50)
    sw = None if w is None else w.numpy()
    assert got["auc"] == pytest.approx(roc_auc_score(y, out, sample_weight=sw), abs=1e-12)
    ap = average_precision_score(y, out, sample_weight=sw)
    assert got["auc_precision_recall"] == pytest.approx(ap, abs=1e-12)


def test_regression_weights_per_label_dimension_streamed(small_steps):
    out, y, _ = _data("regression", seed=5, n=300, weighted=False, dims=3)
    w = torch.from_numpy(np.random.default_rng(6).uniform(0, 2, size=(300, 3)).astype(np.float32))
    got, loss = _stream("regression", out, y, w, 32)
    _assert_same(got, _reference("regression", out, y, w, loss))


def test_soft_binary_labels_enter_the_means_and_are_thresholded_for_the_curves(small_steps):
    rng = np.random.default_rng(8)
    y = torch.from_numpy(rng.random(400))
    out = torch.from_numpy(rng.normal(size=400) + y.numpy())
    got, loss = _stream("binary", out, y, None, 33)
    _assert_same(got, _reference("binary", out, y, None, loss))


def test_float64_scores_are_kept_in_float64():
    # two scores float32 cannot tell apart: a float32 copy would tie them (auc 0.5)
    z = torch.tensor([1.0 + 1e-12, 1.0], dtype=torch.float64)
    acc = MetricAccumulator("binary")
    acc.update(z[:1], torch.tensor([1]))
    acc.update(z[1:], torch.tensor([0]))
    assert acc.result()["auc"] == 1.0
    mixed = MetricAccumulator("binary")  # a float32 batch, then a float64 one: promoted
    mixed.update(torch.tensor([1.0]), torch.tensor([0]))
    mixed.update(z[:1], torch.tensor([1]))
    assert mixed.result()["auc"] == 1.0


def test_a_non_finite_score_makes_the_aucs_nan_and_leaves_the_rest():
    acc = MetricAccumulator("binary")
    acc.update(torch.tensor([1.0, -1.0]), torch.tensor([1, 0]))
    acc.update(torch.tensor([float("inf"), 0.5]), torch.tensor([1, 1]))
    r = acc.result()
    assert math.isnan(r["auc"]) and math.isnan(r["auc_precision_recall"])
    assert r["accuracy"] == 1.0 and r["recall"] == 1.0


def test_result_can_be_read_mid_stream_and_again(small_steps):
    out, y, w = _data("binary", seed=9, n=120, weighted=True)
    acc = MetricAccumulator("binary")
    acc.update(out[:50], y[:50], w[:50], loss=0.5)
    first = acc.result()
    _assert_same(first, _reference("binary", out[:50], y[:50], w[:50], 0.5))
    assert acc.result() == first
    acc.update(out[50:], y[50:], w[50:], loss=0.5)
    _assert_same(acc.result(), _reference("binary", out, y, w, 0.5))


def test_kind_mistakes_are_named():
    with pytest.raises(ValueError, match="Unknown metric kind.*kind='ranking'"):
        MetricAccumulator("ranking")
    acc = MetricAccumulator("binary")
    acc.update(torch.tensor([1.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="sums binary metrics.*kind='regression'"):
        acc.result("regression")
    loose = MetricAccumulator()
    loose.update(torch.tensor([1.0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="needs the metric kind"):
        loose.result()
    multi = MetricAccumulator("multiclass")
    multi.update(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_classes=3.*shape \\(1, 4\\)"):
        multi.update(torch.zeros(1, 4), torch.tensor([0]))


# ---------------------------------------------------------------- bounded memory


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_accumulator_peak_memory_stays_under_32_bytes_an_example(weighted, monkeypatch):
    # tracemalloc counts a chunk's full size when allocated (the system only once its
    # pages are written): chunks of 1 MiB keep that slack small beside 1M examples
    monkeypatch.setattr(metrics, "_CHUNK_BYTES", 1 << 20)
    n, batch = 1_000_000, 20_000
    rng = np.random.default_rng(0)
    acc = MetricAccumulator("binary")
    tracemalloc.start()  # numpy's buffers are traced; each batch is made and dropped here
    try:
        for _ in range(n // batch):
            y = torch.from_numpy((rng.random(batch) < 0.3).astype(np.float32))
            z = torch.from_numpy(rng.normal(size=batch).astype(np.float32)) + y
            w = torch.from_numpy(rng.uniform(0, 2, batch).astype(np.float32)) if weighted else None
            acc.update(z, y, w)
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        r = acc.result()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    per_example = 9 if weighted else 5
    assert kept <= per_example * n + 3 * (1 << 20)  # plus a partly filled chunk each
    assert peak <= 32 * n, f"{peak / n:.1f} bytes an example"
    assert 0.7 < r["auc"] < 0.9


# ---------------------------------------------------------------- heads and evaluate


def _head_cases():
    reg = RegressionHead(2, label_mean=[10.0, -1.0], label_scale=[3.0, 0.5])
    return [
        (BinaryHead(), "binary", 1),
        (MultiClassHead(4), "multiclass", 1),
        (reg, "regression", 2),
    ]


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("weighted", [False, True])
def test_a_head_accumulator_equals_the_heads_own_metrics(case, weighted, small_steps):
    head, kind, dims = _head_cases()[case]
    out, y, w = _data(kind, seed=case, n=250, weighted=weighted, dims=dims)
    out = out.reshape(250, -1)
    y = y.reshape(250, -1) if kind != "multiclass" else y
    w = None if w is None else w.reshape(250, 1)  # the [N, 1] weight column of an input_fn
    acc = MetricAccumulator.for_head(head)
    for s in range(0, 250, 40):
        acc.update(out[s : s + 40], y[s : s + 40], None if w is None else w[s : s + 40], 0.25)
    _assert_same(acc.result(), head.metrics(out, y, w, 0.25))


def test_a_users_head_subclass_that_may_override_metrics_gets_no_accumulator():
    class MyHead(MultiLabelHead):
        def metrics(self, logits, labels, weights, loss):
            return {"loss": loss}

    assert MetricAccumulator.for_head(MyHead(3)) is None
    assert MetricAccumulator.for_head(BinaryClassHead(thresholds=[0.3])) is not None
    assert MetricAccumulator.for_head(MultiLabelHead(3)) is not None


def test_evaluate_over_parquet_equals_the_whole_set_metrics(tmp_path):
    rng = np.random.default_rng(2)
    n = 3_000
    df = pd.DataFrame({"x": rng.normal(size=n), "w": rng.uniform(0.5, 2, size=n)})
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-2 * df["x"]))).astype(int)
    path = tmp_path / "eval.parquet"
    df.to_parquet(path, row_group_size=700)
    est = trainrun.LinearClassifier(
        feature_columns=[trainrun.numeric_column("x")], weight_column="w",
        model_dir=tmp_path / "model", config=trainrun.RunConfig(seed=0, progress=False),
    )  # fmt: skip
    est.train(trainrun.input_fn(df, response="y", epochs=None, seed=0), steps=30)
    got = est.evaluate(trainrun.input_fn(path, response="y", batch_size=128, shuffle=False))
    logits = torch.from_numpy(
        np.concatenate([p["logits"] for p in est.predict(trainrun.input_fn(df, shuffle=False))])
    )
    want = _reference(
        "binary",
        logits,
        torch.tensor(df["y"].values),
        torch.tensor(df["w"].values.astype(np.float32)),
        got["loss"],
    )
    _assert_same({k: v for k, v in got.items() if k != "global_step"}, want, rel=1e-6)
    assert got["auc"] == pytest.approx(want["auc"], rel=1e-12)
    assert 0.5 < got["auc"] < 1.0
