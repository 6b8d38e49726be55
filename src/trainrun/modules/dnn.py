"""The deep network: dense features, then hidden layers, then a logits layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainrun.modules._activations import activation_name, get_activation

__all__ = ["DNNModel"]


class _Activation(nn.Module):
    """A plain function as a module, so the hidden stack is one nn.Sequential."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that accepts a training batch of one example.

    An epoch's last batch can hold a single example; torch refuses batch
    statistics over one value, so that batch is normalised with the running
    statistics instead (and leaves them unchanged).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class DNNModel(nn.Module):
    """``DenseFeatures(columns)`` -> hidden layers -> logits ``[N, units]``.

    ``shared_embeddings`` columns are accepted (as tf's canned DNN): their blocks follow
    the DenseFeatures output in the first layer's input.

    Each hidden layer is, as in tf.estimator: dense with ``activation_fn``, then
    dropout (training only), then batch normalisation when ``batch_norm``.

    >>> import numpy as np
    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> cols = [numeric_column("x", shape=(3,))]
    >>> model = DNNModel(cols, hidden_units=[8, 4], units=1)
    >>> model(FeatureTransform(cols).encode({"x": np.ones((5, 3))})).shape
    torch.Size([5, 1])
    """

    def __init__(
        self,
        columns: Sequence[Any],
        hidden_units: Sequence[int],
        units: int,
        activation_fn: Any = "relu",
        dropout: float | None = None,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        from trainrun.feature_columns import DenseFeatures
        from trainrun.modules.dropout import FastDropout

        self.hidden_units = [int(u) for u in hidden_units]
        self.units = units
        self.activation = activation_name(activation_fn)
        self.dropout = dropout
        self.batch_norm = batch_norm
        from trainrun.feature_columns._shared import SharedEmbeddingColumn

        columns = list(columns)
        shared = [c for c in columns if isinstance(c, SharedEmbeddingColumn)]
        dense = [c for c in columns if not isinstance(c, SharedEmbeddingColumn)]
        # As tf's canned DNN: shared_embedding_columns join the dense input, after the
        # DenseFeatures block (one table per collection, one [N, dimension] block per column).
        self.features = DenseFeatures(dense) if dense else None
        self.shared: nn.Module | None = None
        width = self.features.output_dim if self.features is not None else 0
        if shared:
            from trainrun.feature_columns._extra_layers import SharedEmbeddings

            self.shared = SharedEmbeddings(shared)
            width += self.shared.output_dim
        layers: list[nn.Module] = []
        for size in self.hidden_units:
            layers.append(nn.Linear(width, size))
            # Two slots after each dense layer (a placeholder where there is no dropout)
            # keep the weights' names the same either way, so a checkpoint restores
            # whatever dropout the next session uses.
            if dropout and self.activation == "relu":
                # relu(h) * mask == relu(h * mask) for a mask >= 0, so drop first, in place
                # on the dense output (its backward does not need it), then relu in place:
                # the same values, masks and gradients as relu then dropout, without two
                # fresh tensors per layer and step (docs/metrics-and-optimizers.md has figures).
                layers.append(FastDropout(dropout, inplace=True))
                layers.append(_Activation(torch.relu_))
            else:
                layers.append(_Activation(get_activation(activation_fn)))
                layers.append(FastDropout(dropout) if dropout else nn.Identity())
            if batch_norm:
                # tf.keras' BatchNormalization defaults: momentum 0.99, epsilon 1e-3.
                layers.append(_BatchNorm(size, eps=1e-3, momentum=0.01))
            width = size
        layers.append(nn.Linear(width, units))
        self.layers = nn.Sequential(*layers)

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.shared is None:
            return self.layers(self.features(encoded))  # type: ignore[misc]
        parts = [self.shared(encoded)]
        if self.features is not None:
            parts.insert(0, self.features(encoded))
        return self.layers(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "dnn",
            "hidden_units": self.hidden_units,
            "units": self.units,
            "activation_fn": self.activation,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
        }
