"""Optimizers by name, as tf.estimator takes them, and FTRL-Proximal for torch.

:func:`get_optimizer` resolves what an estimator's ``optimizer=`` argument may be:

- a name, case-insensitive: the table below;
- a ``torch.optim.Optimizer`` subclass, built as ``cls(params, lr=learning_rate)``
  (or with its own default learning rate when ``learning_rate`` is None);
- a callable taking the parameters and returning an optimizer, e.g.
  ``lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)``; a given
  ``learning_rate`` then overrides the learning rate of every parameter group.

An optimizer *instance* is refused: it is already bound to other parameters and
the estimator builds its model (so its parameters) only when training starts;
pass its class or a callable instead.

========  ====================  =========  ===============================================
name      torch class           default lr other settings (tf's defaults, where torch's differ)
========  ====================  =========  ===============================================
Adadelta  torch.optim.Adadelta  0.001      rho=0.95, eps=1e-7
Adagrad   torch.optim.Adagrad   0.05       initial_accumulator_value=0.1, eps=1e-7
Adam      torch.optim.Adam      0.001      eps=1e-7
Adamax    torch.optim.Adamax    0.001      eps=1e-7
AdamW     torch.optim.AdamW     0.001      eps=1e-7, weight_decay=0.004
Ftrl      :class:`Ftrl`         0.2        learning_rate_power=-0.5, initial_accumulator_value=0.1
Nadam     torch.optim.NAdam     0.001      eps=1e-7
RMSProp   torch.optim.RMSprop   0.001      alpha=0.9 (tf's rho), eps=1e-7
SGD       torch.optim.SGD       0.01
========  ====================  =========  ===============================================

Learning rates are tf.estimator's defaults for Adagrad (0.05, its DNN default)
and Ftrl (0.2, its linear-model default) and Keras' for the others. Adagrad,
Adam, AdamW and SGD by name use torch's fused kernels where torch has them for the
parameters (``fused=False`` to opt out): one kernel for every parameter instead of
a Python loop over them, which makes Adam's step about 3.5 times cheaper on a CPU.
``GradientDescent`` is accepted as another name for SGD and ``RMSprop`` for RMSProp.

>>> import torch
>>> opt = get_optimizer("adagrad", torch.nn.Linear(3, 1).parameters())
>>> type(opt).__name__, opt.param_groups[0]["lr"]
('Adagrad', 0.05)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from trainrun.exceptions import UsageError

__all__ = ["Ftrl", "get_optimizer", "optimizer_names"]


# ---------------------------------------------------------------- FTRL


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise UsageError(f"Ftrl's {name} must be a number >= 0. Received: {name}={value!r}")
    return float(value)


class Ftrl(torch.optim.Optimizer):
    """FTRL-Proximal (McMahan et al., 2013) with TensorFlow's arguments and update.

    For each weight ``w`` with gradient ``g``, accumulator ``n`` and linear term ``z``:

    .. code-block:: text

        g_s   = g + 2 * l2_shrinkage * w            (shrinkage touches z only)
        n_new = n + g ** 2
        sigma = (n_new ** -power - n ** -power) / learning_rate
        z     = z + g_s - sigma * w
        w     = 0                                   if |z| <= l1
              = -(z - sign(z) * l1) / q             otherwise,
        q     = n_new ** -power / learning_rate + 2 * l2 + beta / learning_rate

    with ``power = learning_rate_power`` (``-0.5``: per-coordinate rates
    ``learning_rate / sqrt(n)``, as AdaGrad). A weight whose ``|z|`` stays under
    ``l1`` is exactly zero: L1 gives sparse models, the point of FTRL.

    Args:
        params: parameters or parameter groups.
        learning_rate: step size, > 0 (also readable as ``param_groups[i]["lr"]``,
            so torch's learning-rate schedulers work).
        learning_rate_power: <= 0; how the rate falls as gradients accumulate.
        initial_accumulator_value: >= 0, the starting ``n``.
        l1_regularization_strength, l2_regularization_strength: >= 0.
        l2_shrinkage_regularization_strength: >= 0, an L2 penalty in the gradient
            (tf's "online L2") rather than in the closed-form step.
        beta: >= 0, Keras' extra stabiliser of the denominator (0 in tf.estimator).

    >>> import torch
    >>> w = torch.zeros(2, requires_grad=True)
    >>> opt = Ftrl([w], learning_rate=0.5, l1_regularization_strength=0.01)
    >>> for _ in range(200):
    ...     opt.zero_grad()
    ...     loss = ((w - torch.tensor([1.0, 0.0])) ** 2).sum()
    ...     loss.backward()
    ...     opt.step()
    >>> w = w.detach()
    >>> round(float(w[0]), 2), float(w[1])   # w[1] is exactly zero: l1 at work
    (1.0, 0.0)
    """

    def __init__(
        self,
        params: Iterable[Any],
        learning_rate: float = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        *,
        lr: float | None = None,
    ) -> None:
        # ``lr`` is accepted so code written for torch optimizers (cls(params, lr=...)) works
        if lr is not None:
            learning_rate = lr
        if (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, (int, float))
            or not learning_rate > 0
            or not math.isfinite(learning_rate)
        ):
            raise UsageError(
                f"Ftrl's learning_rate must be a positive number. Received: "
                f"learning_rate={learning_rate!r}"
            )
        if (
            isinstance(learning_rate_power, bool)
            or not isinstance(learning_rate_power, (int, float))
            or not learning_rate_power <= 0
        ):
            raise UsageError(
                "Ftrl's learning_rate_power must be a number <= 0 (-0.5 is the usual "
                f"choice). Received: learning_rate_power={learning_rate_power!r}"
            )
        defaults = {
            "lr": float(learning_rate),
            "learning_rate_power": float(learning_rate_power),
            "initial_accumulator_value": _non_negative(
                "initial_accumulator_value", initial_accumulator_value
            ),
            "l1_regularization_strength": _non_negative(
                "l1_regularization_strength", l1_regularization_strength
            ),
            "l2_regularization_strength": _non_negative(
                "l2_regularization_strength", l2_regularization_strength
            ),
            "l2_shrinkage_regularization_strength": _non_negative(
                "l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength
            ),
            "beta": _non_negative("beta", beta),
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One FTRL update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            power = group["learning_rate_power"]
            l1 = group["l1_regularization_strength"]
            l2 = group["l2_regularization_strength"]
            shrink = group["l2_shrinkage_regularization_strength"]
            extra = 2.0 * l2 + group["beta"] / lr
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad
                if g.is_sparse:
                    raise RuntimeError(
                        "Ftrl does not support sparse gradients; build the embedding with "
                        "sparse=False. Received: a sparse gradient"
                    )
                state = self.state[w]
                if not state:
                    state["accumulator"] = torch.full_like(
                        w, group["initial_accumulator_value"], memory_format=torch.preserve_format
                    )
                    state["linear"] = torch.zeros_like(w, memory_format=torch.preserve_format)
                    state["step"] = 0
                n, z = state["accumulator"], state["linear"]
                state["step"] += 1
                n_new = n + g * g
                if power == -0.5:  # the usual case: sqrt is cheaper and exact
                    rate_old, rate_new = n.sqrt(), n_new.sqrt()
                else:
                    rate_old, rate_new = n.pow(-power), n_new.pow(-power)
                # sigma * w, with sigma = (rate_new - rate_old) / lr
                z.add_(g).sub_((rate_new - rate_old).div_(lr).mul_(w))
                if shrink:
                    z.add_(w, alpha=2.0 * shrink)
                quadratic = rate_new.div_(lr).add_(extra)
                # w = (sign(z) * l1 - z) / quadratic where |z| > l1, else exactly 0
                shrunk = z.sign().mul_(l1).sub_(z).div_(quadratic)
                w.copy_(shrunk.masked_fill_(z.abs() <= l1, 0.0))
                n.copy_(n_new)
        return loss


# ---------------------------------------------------------------- by name

# canonical name -> (torch class path, default learning rate, extra constructor settings)
_OPTIMIZERS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "Adadelta": ("Adadelta", 0.001, {"rho": 0.95, "eps": 1e-7}),
    "Adagrad": ("Adagrad", 0.05, {"initial_accumulator_value": 0.1, "eps": 1e-7}),
    "Adam": ("Adam", 0.001, {"eps": 1e-7}),
    "Adamax": ("Adamax", 0.001, {"eps": 1e-7}),
    "AdamW": ("AdamW", 0.001, {"eps": 1e-7, "weight_decay": 0.004}),
    "Ftrl": ("Ftrl", 0.2, {}),
    "Nadam": ("NAdam", 0.001, {"eps": 1e-7}),
    "RMSProp": ("RMSprop", 0.001, {"alpha": 0.9, "eps": 1e-7}),
    "SGD": ("SGD", 0.01, {}),
}
_ALIASES = {"gradientdescent": "SGD"}
_BY_LOWER = {name.lower(): name for name in _OPTIMIZERS} | _ALIASES


def optimizer_names() -> list[str]:
    """The optimizer names :func:`get_optimizer` accepts (any letter case).

    >>> optimizer_names()[:3]
    ['Adadelta', 'Adagrad', 'Adam']
    """
    return sorted(_OPTIMIZERS, key=str.lower)


def _check_learning_rate(learning_rate: float | None) -> float | None:
    if learning_rate is None:
        return None
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not math.isfinite(learning_rate)
        or learning_rate <= 0
    ):
        raise UsageError(
            f"learning_rate must be a positive number. Received: learning_rate={learning_rate!r}"
        )
    return float(learning_rate)


def _class_kwargs(cls: type, learning_rate: float) -> dict[str, float]:
    try:
        names = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {"lr": learning_rate}
    if "lr" in names or "learning_rate" not in names:
        return {"lr": learning_rate}
    return {"learning_rate": learning_rate}


def _bad_identifier(identifier: Any) -> ValueError:
    return ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. Valid names: "
        f"{', '.join(optimizer_names())} (any letter case); or pass a torch.optim.Optimizer "
        "subclass, or a callable that takes the parameters and returns an optimizer."
    )


def _fusable(params: list[Any]) -> bool:
    tensors: list[torch.Tensor] = []
    for item in params:
        if isinstance(item, dict):
            group = item.get("params", [])
            tensors.extend([group] if isinstance(group, torch.Tensor) else group)
        else:
            tensors.append(item)
    # CPU and CUDA only: the devices whose fused kernels every supported torch has
    return bool(tensors) and all(
        isinstance(t, torch.Tensor)
        and t.is_floating_point()
        and t.layout == torch.strided
        and t.device.type in ("cpu", "cuda")
        for t in tensors
    )


def _build_named(cls: type, params: Iterable[Any], lr: float, settings: dict, fused: bool | None):
    """Build a torch optimizer by name, with its fused kernel when asked or when it applies."""
    if fused is False or "fused" not in inspect.signature(cls).parameters:
        return cls(params, lr=lr, **settings)
    params = list(params)
    if fused is None and not _fusable(params):
        return cls(params, lr=lr, **settings)
    try:
        return cls(params, lr=lr, fused=True, **settings)
    except (RuntimeError, ValueError, TypeError):
        if fused:
            raise
        # torch too old for fused kernels on this device, or parameters they refuse
        return cls(params, lr=lr, **settings)


def get_optimizer(
    identifier: str | type | Callable[..., torch.optim.Optimizer],
    params: Iterable[Any],
    learning_rate: float | None = None,
    *,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """Build the optimizer ``identifier`` names over ``params`` (see the module's table).

    Args:
        identifier: a name (case-insensitive), an optimizer class, or a callable
            ``f(params) -> Optimizer``.
        params: the parameters (or parameter groups) to optimise.
        learning_rate: overrides the name's default learning rate (or the class's,
            or the callable's); None keeps the default.
        fused: for the names Adagrad, Adam, AdamW and SGD, whether to use torch's fused
            kernel (one kernel for all parameters instead of a Python loop over them:
            Adam's step is about 3.5x cheaper on a CPU). None (the default) uses it when
            torch supports it for these parameters; pass False for parameters that get
            sparse gradients (``nn.EmbeddingBag(sparse=True)`` with Adagrad). Classes and
            callables are built as given.

    Raises:
        ValueError: an unknown name, or a learning rate that is not a positive number.
        TypeError: an optimizer instance, or a callable that returns no optimizer.

    >>> import torch
    >>> p = torch.nn.Linear(2, 1).parameters()
    >>> get_optimizer(torch.optim.SGD, p, learning_rate=0.3).param_groups[0]["lr"]
    0.3
    """
    learning_rate = _check_learning_rate(learning_rate)
    if isinstance(identifier, str):
        name = _BY_LOWER.get(identifier.strip().lower())
        if name is None:
            raise _bad_identifier(identifier)
        cls_name, default_lr, settings = _OPTIMIZERS[name]
        lr = default_lr if learning_rate is None else learning_rate
        if cls_name == "Ftrl":
            return Ftrl(params, learning_rate=lr, **settings)
        return _build_named(getattr(torch.optim, cls_name), params, lr, settings, fused)
    if isinstance(identifier, torch.optim.Optimizer):
        raise TypeError(
            "An optimizer instance cannot be used: it is bound to the parameters it was "
            "built with, and the estimator creates its model's parameters when training "
            f"starts. Pass its class ({type(identifier).__name__}), a name such as 'Adam', or "
            "a callable such as `lambda params: torch.optim.SGD(params, lr=0.1)`. "
            f"Received: optimizer={type(identifier).__name__}(...)"
        )
    if isinstance(identifier, type):
        if not issubclass(identifier, torch.optim.Optimizer):
            raise _bad_identifier(identifier)
        # called with the subclass's own signature (SGD(params, lr=...)), not the base's
        make: Callable[..., torch.optim.Optimizer] = identifier
        if learning_rate is None:
            return make(params)
        return make(params, **_class_kwargs(identifier, learning_rate))
    if callable(identifier):
        optimizer = identifier(params)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "An optimizer callable must take the parameters and return a "
                f"torch.optim.Optimizer. Received: {identifier!r} returned "
                f"{type(optimizer).__name__}"
            )
        if learning_rate is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
        return optimizer
    raise _bad_identifier(identifier)
