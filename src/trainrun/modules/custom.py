"""A user's torch module between trainrun's feature columns and a head.

:class:`CustomModel` is the network of ``trainrun.Estimator(model_fn=...)``: the dense
feature columns become one ``[N, in_features]`` tensor (``DenseFeatures``), sequence
columns a ``[N, T, d]`` tensor and its lengths (``SequenceFeatures``), and the user's
module maps them to ``[N, units]`` logits for the head.

Shared-embedding columns join the dense features (``SharedEmbeddings``).

``model_fn`` is either a ``torch.nn.Module`` (used as is; deep-copied per build) or a
builder called as ``model_fn(in_features=..., units=..., **params)`` (plus
``context_features=`` when there are sequence columns). Given sequence columns, the
module is called as ``module(sequence, lengths, context)`` with ``context`` the dense
features (or None); otherwise as ``module(dense)``.

A builder defined at the top level of an importable module is stored by reference
(``"package.module:Name"``) in checkpoints and exports, so :func:`trainrun.load_exported`
rebuilds the model by importing it: no pickle, and no code inside the export.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from trainrun.exceptions import ModelDirError, UsageError

__all__ = ["CustomModel", "build_custom", "model_fn_reference", "resolve_model_fn"]


def model_fn_reference(model_fn: Any) -> str | None:
    """``"module:qualname"`` for a top-level function or class, None for anything else."""
    if isinstance(model_fn, nn.Module) or not callable(model_fn):
        return None
    module = getattr(model_fn, "__module__", None)
    qualname = getattr(model_fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    try:
        if resolve_model_fn(f"{module}:{qualname}") is not model_fn:
            return None
    except ModelDirError:
        return None
    return f"{module}:{qualname}"


def resolve_model_fn(reference: str) -> Callable[..., nn.Module]:
    """Import the builder a checkpoint or export names."""
    module_name, _, qualname = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ModelDirError(
            f"This model's model_fn {reference!r} cannot be imported ({exc}). Make the module "
            "that defines it importable (on sys.path) where the model is loaded."
        ) from None
    return target  # type: ignore[no-any-return]


def _split_columns(columns: Sequence[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    from trainrun.feature_columns._sequence import is_sequence_column
    from trainrun.feature_columns._shared import SharedEmbeddingColumn

    seq = [c for c in columns if is_sequence_column(c)]
    shared = [c for c in columns if isinstance(c, SharedEmbeddingColumn)]
    dense = [c for c in columns if c not in seq and c not in shared]
    return dense, shared, seq


class CustomModel(nn.Module):
    """Feature columns -> the user's module -> logits ``[N, units]``."""

    def __init__(
        self,
        columns: Sequence[Any],
        units: int,
        model_fn: Any,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        from trainrun.feature_columns import DenseFeatures

        dense, shared, seq = _split_columns(list(columns))
        self.units = int(units)
        self.params = dict(params or {})
        self.reference = model_fn_reference(model_fn)
        self.features = DenseFeatures(dense) if dense else None
        self.shared: nn.Module | None = None
        self.sequence: nn.Module | None = None
        dense_width = self.features.output_dim if self.features is not None else 0
        if shared:
            from trainrun.feature_columns._extra_layers import SharedEmbeddings

            self.shared = SharedEmbeddings(shared)
            dense_width += self.shared.output_dim
        if seq:
            from trainrun.feature_columns._extra_layers import SequenceFeatures

            self.sequence = SequenceFeatures(seq)
        if isinstance(model_fn, nn.Module):
            if self.params:
                raise UsageError(
                    "params go to a model_fn builder; model_fn here is a module instance. "
                    f"Pass a builder (a function or nn.Module class) or drop params. "
                    f"Received: params={self.params!r}"
                )
            self.body = copy.deepcopy(model_fn)
        else:
            kwargs: dict[str, Any] = {"units": self.units, **self.params}
            if self.sequence is not None:
                kwargs["in_features"] = self.sequence.output_dim
                kwargs["context_features"] = dense_width
            else:
                kwargs["in_features"] = dense_width
            body = model_fn(**_accepted(model_fn, kwargs))
            if not isinstance(body, nn.Module):
                raise TypeError(
                    "model_fn must return a torch.nn.Module mapping the features to "
                    f"[N, {self.units}] logits. Received: {type(body).__name__} from {model_fn!r}"
                )
            self.body = body

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [] if self.features is None else [self.features(encoded)]
        if self.shared is not None:
            parts.append(self.shared(encoded))
        dense = None if not parts else parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        if self.sequence is not None:
            seq, lengths = self.sequence(encoded)
            out = self.body(seq, lengths, dense)
        else:
            out = self.body(dense)
        if out.dim() == 1 and self.units == 1:
            out = out[:, None]
        if out.dim() != 2 or out.shape[1] != self.units:
            raise UsageError(
                f"The custom model must return logits of shape [N, {self.units}] for its head. "
                f"Received: a tensor of shape {list(out.shape)}"
            )
        return out

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "custom",
            "units": self.units,
            "model_fn": self.reference,
            "params": self.params,
            "body": type(self.body).__name__,
        }


def _accepted(fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``fn`` takes (all of them when it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return kwargs
    names = set(sig.parameters)
    missing = [k for k in kwargs if k not in names and k not in ("context_features",)]
    if missing:
        raise TypeError(
            f"model_fn {getattr(fn, '__qualname__', fn)!r} must accept the keyword arguments "
            f"{sorted(kwargs)}; it lacks {missing}. Received signature: {sig}"
        )
    return {k: v for k, v in kwargs.items() if k in names}


def build_custom(config: Mapping[str, Any], columns: Mapping[str, Sequence[Any]]) -> nn.Module:
    """Rebuild a CustomModel from its ``to_config()`` (checkpoints, load_exported)."""
    reference = config.get("model_fn")
    if not reference:
        raise ModelDirError(
            "This custom model was built from a module instance or a local function, which a "
            "saved config cannot name; pass model_fn as a top-level builder to save or export it."
        )
    return CustomModel(
        columns["all"], config["units"], resolve_model_fn(reference), config.get("params")
    )
