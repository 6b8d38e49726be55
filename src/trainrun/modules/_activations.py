"""Activation functions by name, both ways (names are what configs and exports store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from trainrun.exceptions import UsageError

__all__ = ["ACTIVATIONS", "activation_name", "get_activation"]

#: tf.nn names, with torch's spellings where they differ.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": torch.selu,
    "gelu": F.gelu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "leaky_relu": F.leaky_relu,
    "linear": lambda x: x,
}


def activation_name(value: Any) -> str | None:
    """The registered name of ``value`` (a name, a function or an nn.Module class), else None."""
    if isinstance(value, str):
        return value.lower() if value.lower() in ACTIVATIONS else None
    if isinstance(value, type) and issubclass(value, torch.nn.Module):
        value = value.__name__.lower().replace("leakyrelu", "leaky_relu")
        return value if value in ACTIVATIONS else None
    for name, fn in ACTIVATIONS.items():
        if fn is value:
            return name
    fn_name = getattr(value, "__name__", None)
    # torch.nn.functional.relu and friends are distinct objects from torch.relu.
    if fn_name and getattr(F, fn_name, None) is value and fn_name in ACTIVATIONS:
        return fn_name
    return None


def get_activation(value: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resolve a name, function or module class to a tensor -> tensor function."""
    name = activation_name(value)
    if name is not None:
        return ACTIVATIONS[name]
    if isinstance(value, type) and issubclass(value, torch.nn.Module):
        return value()
    if callable(value) and not isinstance(value, str):
        return value
    raise UsageError(
        f"Could not interpret activation_fn: {value!r}. Valid names: {sorted(ACTIVATIONS)}, "
        "or pass a function of one tensor."
    )
