"""How encoded features are packed, so that a batch is a few large tensors, not many small ones.

Per batch, every tensor costs a slice, a device copy and a few small ops in the layers;
on CPU those fixed costs, not arithmetic, dominate a small DNN's step. So
:meth:`FeatureTransform.encode` packs:

* all top-level numeric columns (sorted by name) into one float32 block,
  keyed ``"#numeric" + json([[name, dimension], ...])``;
* all top-level single-valued, unweighted categorical columns (bare, bucketized, or
  wrapped in an indicator; sorted by name) into one int64 block of ids already shifted
  into one id space (column i's ids + the sum of earlier columns' num_buckets, "no
  value" = the total), keyed ``"#ids" + json([[name, num_buckets], ...])``.

Everything else (embedding inputs, multi-valent and weighted columns) keeps one entry
per column name. The layers take a block whole when its key is exactly the one their
own columns give (the usual case: one model, one transform), and otherwise read single
columns out of whatever is there (:func:`numeric_of`, :func:`ids_of`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import torch

from trainrun.exceptions import FeatureColumnError

__all__ = ["IDS", "NUMERIC", "block_key", "encoded_column", "ids_of", "numeric_of", "parse_key"]

NUMERIC = "#numeric"
IDS = "#ids"


def block_key(prefix: str, layout: Sequence[tuple[str, int]]) -> str:
    return prefix + json.dumps([[n, int(d)] for n, d in layout], separators=(",", ":"))


@functools.lru_cache(maxsize=512)
def parse_key(key: str) -> dict[str, tuple[int, int]]:
    """{name: (start, size)} of a block key."""
    prefix = NUMERIC if key.startswith(NUMERIC) else IDS
    out, pos = {}, 0
    for name, size in json.loads(key[len(prefix) :]):
        out[name] = (pos, size)
        pos += size
    return out


def _missing(encoded: dict[str, torch.Tensor], name: str) -> FeatureColumnError:
    shown = sorted(k if not k.startswith("#") else k.split("[")[0] for k in encoded)
    return FeatureColumnError(
        f"The encoded batch has no entry for feature column '{name}'. Encode the data with a "
        f"FeatureTransform built from the same columns as this layer. Received keys: {shown[:20]}"
    )


def _blocks(encoded: dict[str, torch.Tensor], prefix: str):
    for key, value in encoded.items():
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1] == "[":
            yield parse_key(key), value


def numeric_of(encoded: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """Column ``name``'s float values ``[B, dimension]``, from its entry or a numeric block."""
    value = encoded.get(name)
    if value is not None:
        return value
    for layout, block in _blocks(encoded, NUMERIC):
        if name in layout:
            start, size = layout[name]
            return block[:, start : start + size]
    raise _missing(encoded, name)


def ids_of(encoded: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """Column ``name``'s ids (-1 = no value), from its entry or an ids block."""
    value = encoded.get(name)
    if value is not None:
        return value
    for layout, block in _blocks(encoded, IDS):
        if name in layout:
            pad = sum(size for _, size in layout.values())
            offset = layout[name][0]
            col = block[:, list(layout).index(name)]
            return torch.where(col == pad, -1, col - offset)
    raise _missing(encoded, name)


def encoded_column(encoded: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """One column out of :meth:`FeatureTransform.encode`'s result, whatever the packing:
    float values ``[N, dimension]`` for a numeric column, ids (-1 = no value) for a
    categorical one (weights under ``name + "/weights"``).

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> enc = FeatureTransform([numeric_column("x")]).encode({"x": [1.0, 2.0]})
    >>> encoded_column(enc, "x").tolist()
    [[1.0], [2.0]]
    """
    value = encoded.get(name)
    if value is not None:
        return value
    for prefix, read in ((NUMERIC, numeric_of), (IDS, ids_of)):
        for layout, _ in _blocks(encoded, prefix):
            if name in layout:
                return read(encoded, name)
    raise _missing(encoded, name)
