"""FastDropout: the statistics and semantics of nn.Dropout, repeatable under manual_seed."""

import copy
import pickle
import threading

import numpy as np
import pytest
import torch

from trainrun.modules.dropout import FastDropout, _random_words, fast_dropout

N = 400_000


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_keep_rate_and_scale(p):
    torch.manual_seed(1)
    y = FastDropout(p)(torch.ones(N))
    kept = y != 0
    # binomial standard error is at most 0.0008 at this N: 5 sigma
    assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.004)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4)


def test_unbiased_output_and_every_lane_uniform():
    torch.manual_seed(2)
    drop = FastDropout(0.3)
    x = torch.rand(N) + 0.5
    y = drop(x)
    assert float(y.sum() / x.sum()) == pytest.approx(1.0, abs=0.005)
    assert drop.keep_probability * float(1 / (1 - 0.3)) == pytest.approx(1.0, abs=2e-5)
    # each 16-bit lane of a 64-bit random word feeds every 4th value: no lane may be biased
    kept = (y != 0).float().reshape(-1, 4).mean(dim=0)
    assert torch.allclose(kept, torch.full((4,), 0.7), atol=0.006)
    # neighbours are independent: P(both kept) = 0.49
    pair = ((y[:-1] != 0) & (y[1:] != 0)).float().mean()
    assert float(pair) == pytest.approx(0.49, abs=0.006)


def test_masks_differ_between_calls_and_repeat_under_seed():
    drop = FastDropout(0.5)
    x = torch.ones(64, 32)
    torch.manual_seed(3)
    a, b = drop(x), drop(x)
    assert not torch.equal(a, b)  # every call draws a fresh key
    torch.manual_seed(3)
    assert torch.equal(drop(x), a) and torch.equal(drop(x), b)
    torch.manual_seed(3)
    assert torch.equal(fast_dropout(x, 0.5), a)  # functional form: the same stream


def test_gradient_is_the_mask():
    torch.manual_seed(4)
    x = torch.randn(50, 20, requires_grad=True)
    y = FastDropout(0.25)(x)
    y.sum().backward()
    expected = torch.where(y != 0, torch.tensor(1 / 0.75), torch.tensor(0.0))
    assert torch.allclose(x.grad, expected, rtol=1e-4)


def test_eval_and_edge_probabilities():
    x = torch.randn(10, 10)
    drop = FastDropout(0.5).eval()
    assert drop(x) is x
    assert FastDropout(0.0)(x) is x
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))
    assert fast_dropout(x, 0.5, training=False) is x
    # within 1/65536 of 0 or 1 the mask resolution rounds to "keep all" or "drop all"
    assert FastDropout(1e-6)(x) is x
    assert FastDropout(1 - 1e-6).keep_probability == 0.0
    assert torch.equal(FastDropout(1 - 1e-6)(x), torch.zeros_like(x))
    ints = torch.arange(10)
    # non-float input follows F.dropout, which refuses integers just as nn.Dropout does
    with pytest.raises(RuntimeError):
        FastDropout(0.5)(ints)


def test_inplace_and_dtypes():
    torch.manual_seed(5)
    x = torch.ones(1000)
    out = FastDropout(0.5, inplace=True)(x)
    assert out.data_ptr() == x.data_ptr() and float((x == 0).float().mean()) > 0.3
    for dtype in (torch.float64, torch.bfloat16):
        y = FastDropout(0.5)(torch.ones(1000, dtype=dtype))
        assert y.dtype == dtype


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.2", None, True])
def test_bad_probability(p):
    with pytest.raises(ValueError, match="between 0 and 1. Received: p="):
        FastDropout(p)


def test_copy_pickle_threads_and_repr():
    drop = FastDropout(0.2)
    drop(torch.ones(100))
    clone = pickle.loads(pickle.dumps(drop))
    assert clone.p == 0.2 and clone.inplace is False
    assert copy.deepcopy(drop).p == 0.2
    assert "p=0.2" in repr(drop)
    # another thread has its own expander, keyed by the same torch generator:
    # the same seed gives it the same mask as this thread
    torch.manual_seed(7)
    here = drop(torch.ones(100_000))
    results = []

    def other():
        torch.manual_seed(7)
        results.append(drop(torch.ones(100_000)))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert float((results[0] != 0).float().mean()) == pytest.approx(0.8, abs=0.01)
    assert torch.equal(results[0], here)


def test_random_words_follow_torch_seed_only():
    torch.manual_seed(8)
    np.random.seed(1)
    a = _random_words(1000)
    torch.manual_seed(8)
    np.random.seed(2)  # numpy's global state plays no part
    assert torch.equal(_random_words(1000), a)
    assert not torch.equal(_random_words(1000), a)  # each call takes a fresh key
    # the key advances torch's generator by exactly four words, whatever the size
    torch.manual_seed(8)
    _random_words(10)
    after_small = torch.empty(1, dtype=torch.int64).random_()
    torch.manual_seed(8)
    _random_words(100_000)
    assert torch.equal(torch.empty(1, dtype=torch.int64).random_(), after_small)


def test_random_words_have_uniform_independent_bits():
    torch.manual_seed(9)
    words = _random_words(50_000)
    bits = (words.unsqueeze(1) >> torch.arange(64)) & 1
    # every one of the 64 bit positions is set half the time (5 sigma at this size: 0.011)
    assert torch.allclose(
        bits.double().mean(0), torch.full((64,), 0.5, dtype=torch.float64), atol=0.011
    )
    # consecutive words are uncorrelated
    pair = (bits[:-1, 5] & bits[1:, 5]).double().mean()
    assert float(pair) == pytest.approx(0.25, abs=0.01)


def test_trains_like_nn_dropout_in_a_model():
    torch.manual_seed(6)
    x = torch.randn(512, 8)
    y = (x[:, 0] + x[:, 1] > 0).float()
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 32), torch.nn.ReLU(), FastDropout(0.2), torch.nn.Linear(32, 1)
    )
    opt = torch.optim.Adam(model.parameters(), 0.01)
    for _ in range(100):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    acc = ((model(x)[:, 0] > 0).float() == y).float().mean()
    assert float(acc) > 0.9


def _dnn(dropout, activation="relu", batch_norm=False):
    from trainrun.feature_columns import numeric_column
    from trainrun.modules.dnn import DNNModel

    torch.manual_seed(10)
    cols = [numeric_column("x", shape=(6,))]
    return DNNModel(cols, [16, 8], 1, activation, dropout=dropout, batch_norm=batch_norm)


def _reference_forward(model, x, activation=torch.relu):
    """Dense, then activation, then an out-of-place FastDropout: the plain order."""
    h = x
    for layer in model.layers:
        if isinstance(layer, torch.nn.Linear):
            h = layer(h)
            if layer is not model.layers[-1]:
                h = activation(h)
                h = FastDropout(model.dropout)(h) if model.training else h
        elif isinstance(layer, torch.nn.BatchNorm1d):
            h = layer(h)
    return h


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dnn_relu_dropout_in_place_matches_the_plain_order(batch_norm):
    model = _dnn(0.3, batch_norm=batch_norm)
    # the same weight names as a model without dropout: checkpoints stay compatible
    assert list(model.state_dict()) == list(_dnn(None, batch_norm=batch_norm).state_dict())
    x = torch.randn(64, 6)
    grads = []
    outs = []
    for forward in (lambda m: m.layers(x), lambda m: _reference_forward(m, x)):
        model.zero_grad()
        torch.manual_seed(11)  # the same masks: one key per layer, in the same order
        out = forward(model)
        (out * torch.linspace(-1, 1, 64).unsqueeze(1)).sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert isinstance(model.layers[1], FastDropout) and model.layers[1].inplace
    model.eval()  # eval: no dropout, so the training output differed
    assert torch.equal(model.layers(x), _reference_forward(model, x))
    assert not torch.equal(model.layers(x), outs[0])


def test_dnn_other_activations_keep_the_plain_order():
    model = _dnn(0.3, activation="tanh")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[1:3] == ["_Activation", "FastDropout"]
    assert not model.layers[2].inplace
    x = torch.randn(32, 6)
    torch.manual_seed(12)
    a = model.layers(x)
    torch.manual_seed(12)
    assert torch.equal(a, _reference_forward(model, x, torch.tanh))
