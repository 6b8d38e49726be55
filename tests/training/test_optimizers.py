"""FTRL against its published update, convergence and L1 sparsity; optimizers by name."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from trainrun.training.optimizers import Ftrl, get_optimizer, optimizer_names


def _reference_ftrl(w0, grads, lr, power, init, l1, l2, shrink):
    """The FTRL-Proximal recurrence written out in numpy, one coordinate array at a time."""
    w, n, z = w0.copy(), np.full_like(w0, init), np.zeros_like(w0)
    for g in grads:
        n_new = n + g * g
        sigma = (n_new ** (-power) - n ** (-power)) / lr
        z = z + g + 2 * shrink * w - sigma * w
        q = n_new ** (-power) / lr + 2 * l2
        w = np.where(np.abs(z) > l1, (np.sign(z) * l1 - z) / q, 0.0)
        n = n_new
    return w


@pytest.mark.parametrize("power", [-0.5, -0.3])
def test_ftrl_follows_the_published_update(power):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]
    settings = dict(lr=0.3, power=power, init=0.1, l1=0.2, l2=0.05, shrink=0.01)
    w = torch.tensor(w0, requires_grad=True)
    opt = Ftrl(
        [w],
        learning_rate=0.3,
        learning_rate_power=power,
        initial_accumulator_value=0.1,
        l1_regularization_strength=0.2,
        l2_regularization_strength=0.05,
        l2_shrinkage_regularization_strength=0.01,
    )
    for g in grads:
        w.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(
        w.detach().numpy(), _reference_ftrl(w0, grads, **settings), rtol=1e-12
    )


def _logistic_data(n=2000, d=20, informative=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    beta = torch.zeros(d)
    beta[:informative] = torch.tensor([2.0, -1.5, 1.0, 0.8, -0.6])[:informative]
    y = (torch.rand(n, generator=g) < torch.sigmoid(x @ beta + 0.3)).float()
    return x, y


def _fit(opt_fn, x, y, epochs=8, batch=100):
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], 1)
    opt = opt_fn(model.parameters())
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(x[i : i + batch])[:, 0], y[i : i + batch]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def test_ftrl_converges_on_logistic_regression():
    x, y = _logistic_data()
    model = _fit(lambda p: Ftrl(p, learning_rate=0.2), x, y)
    with torch.no_grad():
        z = model(x)[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    start = torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros_like(y), y)
    assert float(loss) < 0.75 * float(start)
    assert roc_auc_score(y.numpy(), z.numpy()) > 0.85
    w = model.weight.detach()[0]
    assert float(w[0]) > 1.0 and float(w[1]) < -0.7  # the signs and sizes of the truth


def test_ftrl_l1_gives_exact_zeros_for_noise_features():
    x, y = _logistic_data()
    dense = _fit(lambda p: Ftrl(p, learning_rate=0.2), x, y).weight.detach()[0]
    sparse = _fit(
        lambda p: Ftrl(p, learning_rate=0.2, l1_regularization_strength=2.0), x, y
    ).weight.detach()[0]
    assert int((dense == 0).sum()) == 0
    assert int((sparse[5:] == 0).sum()) >= 12  # most of the 15 noise weights exactly 0.0
    assert bool((sparse[:3] != 0).all())  # the strong signals survive


def test_ftrl_state_round_trips_and_validates():
    w = torch.zeros(3, requires_grad=True)
    opt = Ftrl([w], lr=0.5)  # torch's keyword works too
    assert opt.param_groups[0]["lr"] == 0.5
    w.grad = torch.ones(3)
    opt.step()
    opt2 = Ftrl([w])
    opt2.load_state_dict(opt.state_dict())
    assert torch.equal(opt2.state[w]["linear"], opt.state[w]["linear"])
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        Ftrl([w], learning_rate=0)
    with pytest.raises(ValueError, match="Received: learning_rate_power=0.5"):
        Ftrl([w], learning_rate_power=0.5)
    with pytest.raises(ValueError, match="Received: l1_regularization_strength=-1"):
        Ftrl([w], l1_regularization_strength=-1)


EXPECTED = {
    "Adadelta": (torch.optim.Adadelta, 0.001),
    "Adagrad": (torch.optim.Adagrad, 0.05),
    "Adam": (torch.optim.Adam, 0.001),
    "Adamax": (torch.optim.Adamax, 0.001),
    "AdamW": (torch.optim.AdamW, 0.001),
    "Ftrl": (Ftrl, 0.2),
    "Nadam": (torch.optim.NAdam, 0.001),
    "RMSProp": (torch.optim.RMSprop, 0.001),
    "SGD": (torch.optim.SGD, 0.01),
}


def test_optimizer_names_lists_every_tf_name():
    assert sorted(optimizer_names()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_resolves_in_any_case_and_takes_a_step(name):
    cls, lr = EXPECTED[name]
    for spelling in (name, name.lower(), name.upper()):
        model = torch.nn.Linear(3, 1)
        opt = get_optimizer(spelling, model.parameters())
        assert type(opt) is cls and opt.param_groups[0]["lr"] == lr
    before = model.weight.detach().clone()
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight.detach())
    assert get_optimizer(name, torch.nn.Linear(3, 1).parameters(), 0.7).param_groups[0]["lr"] == 0.7


def test_tf_defaults_and_aliases():
    p = list(torch.nn.Linear(2, 1).parameters())
    assert get_optimizer("adagrad", p).defaults["initial_accumulator_value"] == 0.1
    assert get_optimizer("rmsprop", p).defaults["alpha"] == 0.9
    assert type(get_optimizer("GradientDescent", p)) is torch.optim.SGD


def test_classes_and_callables():
    p = list(torch.nn.Linear(2, 1).parameters())
    assert get_optimizer(torch.optim.Adam, p).param_groups[0]["lr"] == 0.001
    assert get_optimizer(torch.optim.Adam, p, learning_rate=0.01).param_groups[0]["lr"] == 0.01
    assert get_optimizer(Ftrl, p, learning_rate=0.3).param_groups[0]["lr"] == 0.3
    opt = get_optimizer(lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9), p)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["lr"] == 0.1
    opt = get_optimizer(lambda params: torch.optim.SGD(params, lr=0.1), p, learning_rate=0.02)
    assert opt.param_groups[0]["lr"] == 0.02


def test_bad_identifiers_say_what_is_valid():
    p = list(torch.nn.Linear(2, 1).parameters())
    with pytest.raises(
        ValueError,
        match=r"Could not interpret optimizer identifier: 'x'\. Valid "
        r"names: Adadelta, Adagrad, Adam, Adamax, AdamW, Ftrl, Nadam, RMSProp, SGD",
    ):
        get_optimizer("x", p)
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier: 3"):
        get_optimizer(3, p)
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier: <class 'int'>"):
        get_optimizer(int, p)
    with pytest.raises(TypeError, match=r"instance cannot be used.*Pass its class \(SGD\)"):
        get_optimizer(torch.optim.SGD(p, lr=0.1), p)
    with pytest.raises(TypeError, match="returned str"):
        get_optimizer(lambda params: "adam", p)
    with pytest.raises(ValueError, match="Received: learning_rate=-1"):
        get_optimizer("adam", p, learning_rate=-1)


def test_ftrl_works_with_torch_lr_schedulers_and_param_groups():
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    opt = Ftrl([{"params": [a]}, {"params": [b], "lr": 0.05}], learning_rate=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        (a.sum() + b.sum()).backward()
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.125, 0.0125]
    assert float(a.detach()[0]) < float(b.detach()[0]) < 0  # the larger rate moved further


@pytest.mark.parametrize("name", ["Adagrad", "Adam", "AdamW", "SGD"])
def test_fused_kernels_when_available_give_the_same_steps(name):
    def run(fused):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        opt = get_optimizer(name, model.parameters(), fused=fused)
        x, y = torch.randn(32, 6), torch.randn(32, 1)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        return opt, torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    auto, w_auto = run(None)
    plain, w_plain = run(False)
    assert not plain.defaults.get("fused")
    torch_has_cpu_fused = tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4)
    if torch_has_cpu_fused:
        assert auto.defaults.get("fused") is True
    torch.testing.assert_close(w_auto, w_plain, rtol=1e-5, atol=1e-6)


def test_fused_with_param_groups_and_names_without_a_fused_kernel():
    a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    opt = get_optimizer("adam", [{"params": [a]}, {"params": b, "lr": 0.1}])
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.1]
    (a.sum() + b.sum()).backward()
    opt.step()
    assert float(b.detach()[0]) == pytest.approx(-0.1)
    # names without a fused kernel ignore the request
    assert not get_optimizer("rmsprop", [a], fused=True).defaults.get("fused")
