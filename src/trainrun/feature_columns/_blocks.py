"""How encoded features are laid out, so that a batch is a few large tensors, not many small ones.

Per batch, every tensor costs a slice, a device copy and a few small ops in the layers;
on CPU those fixed costs, not arithmetic, dominate a small DNN's step. So
:meth:`FeatureTransform.encode` packs:

* all top-level numeric columns (sorted by name) into one float32 block,
  keyed ``"#numeric" + json([[name, dimension, fingerprint], ...])``;
* all top-level single-valued, unweighted categorical columns (bare, bucketized, or
  wrapped in an indicator; sorted by name) into one int64 block of ids already shifted
  into one id space (column i's ids + the sum of earlier columns' num_buckets, "no
  value" = the total), keyed ``"#ids" + json([[name, num_buckets, fingerprint], ...])``.

Everything else (embedding inputs, multi-valent and weighted columns) has one entry per
column, keyed ``"<name>@<fingerprint>"`` (weights under ``"<name>@<fingerprint>/weights"``).

The fingerprint is a short hash of the column's config: a layer built from a column that
differs from the one the data was encoded with (same name, other vocabulary or
normalizer) gets a clear error instead of silently reading the wrong values. The layers
take a block whole when its key is exactly the one their own columns give (the usual
case: one model, one transform) and otherwise read single columns out of whatever is
there (:func:`numeric_of`, :func:`ids_of`); hand-built dicts keyed by plain column names
work too.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from trainrun.exceptions import FeatureColumnError

__all__ = [
    "IDS",
    "NUMERIC",
    "WEIGHTS_SUFFIX",
    "block_key",
    "encoded_column",
    "entry_key",
    "fingerprint",
    "find_block",
    "ids_of",
    "numeric_of",
    "weights_of",
]

NUMERIC = "#numeric"
IDS = "#ids"
WEIGHTS_SUFFIX = "/weights"


def fingerprint(column: Any) -> str:
    """8 hex digits identifying a column's full definition (computed once per column)."""
    fp = column.__dict__.get("_fingerprint")
    if fp is None:
        text = json.dumps(column.to_config(), sort_keys=True, default=str)
        fp = hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()
        # kept on the (frozen) column itself: hashing a large vocabulary per batch is slow
        object.__setattr__(column, "_fingerprint", fp)
    return fp


def entry_key(column: Any) -> str:
    return f"{column.name}@{fingerprint(column)}"


def block_key(prefix: str, layout: Sequence[tuple[Any, int]]) -> str:
    """The key of a block holding ``layout``'s (column, width) pairs in order."""
    return prefix + json.dumps(
        [[c.name, int(d), fingerprint(c)] for c, d in layout], separators=(",", ":")
    )


@functools.lru_cache(maxsize=512)
def _parse(key: str) -> dict[str, tuple[int, int, str]]:
    """{name: (start, width, fingerprint)} of a block key."""
    prefix = NUMERIC if key.startswith(NUMERIC) else IDS
    out, pos = {}, 0
    for name, size, fp in json.loads(key[len(prefix) :]):
        out[name] = (pos, size, fp)
        pos += size
    return out


def _blocks(encoded: dict[str, torch.Tensor], prefix: str) -> Iterator[tuple[dict, torch.Tensor]]:
    for key, value in encoded.items():
        if key.startswith(prefix + "["):
            yield _parse(key), value


def _missing(encoded: dict[str, torch.Tensor], name: str) -> FeatureColumnError:
    shown = sorted(k.split("[")[0] if k.startswith("#") else k for k in encoded)
    return FeatureColumnError(
        f"The encoded batch has no entry for feature column '{name}'. Encode the data with a "
        f"FeatureTransform built from the same columns as this layer. Received keys: {shown[:20]}"
    )


def _conflict(name: str) -> FeatureColumnError:
    return FeatureColumnError(
        f"Feature column '{name}' was encoded with a different definition than this layer's "
        f"(two columns named '{name}' differ, e.g. in vocabulary, shape or normalizer_fn). "
        f"Use one definition of '{name}' for every part of the model. Received: a column "
        f"'{name}' whose config does not match"
    )


def _entry(encoded: dict[str, torch.Tensor], column: Any) -> torch.Tensor | None:
    value = encoded.get(entry_key(column))
    if value is None:
        value = encoded.get(column.name)  # a hand-built dict
    if value is None:
        prefix = column.name + "@"
        if any(k.startswith(prefix) and "/" not in k[len(prefix) :] for k in encoded):
            raise _conflict(column.name)
    return value


def _in_block(encoded: dict[str, torch.Tensor], prefix: str, column: Any):
    for layout, block in _blocks(encoded, prefix):
        found = layout.get(column.name)
        if found is not None:
            if found[2] != fingerprint(column):
                raise _conflict(column.name)
            return layout, found, block
    raise _missing(encoded, column.name)


def numeric_of(encoded: dict[str, torch.Tensor], column: Any) -> torch.Tensor:
    """A numeric column's values ``[B, dimension]``, from its entry or a numeric block."""
    value = _entry(encoded, column)
    if value is not None:
        return value
    _, (start, size, _), block = _in_block(encoded, NUMERIC, column)
    return block[:, start : start + size]


def ids_of(encoded: dict[str, torch.Tensor], column: Any) -> torch.Tensor:
    """A categorical column's ids (-1 = no value), from its entry or an ids block."""
    value = _entry(encoded, column)
    if value is not None:
        return value
    layout, (offset, _, _), block = _in_block(encoded, IDS, column)
    pad = sum(size for _, size, _ in layout.values())
    col = block[:, list(layout).index(column.name)]
    return torch.where(col == pad, -1, col - offset)


def weights_of(encoded: dict[str, torch.Tensor], column: Any) -> torch.Tensor:
    """A weighted categorical column's weights, the shape of its ids."""
    value = encoded.get(entry_key(column) + WEIGHTS_SUFFIX)
    if value is None:
        value = encoded.get(column.name + WEIGHTS_SUFFIX)
    if value is None:
        raise _missing(encoded, column.name + WEIGHTS_SUFFIX)
    return value


def encoded_column(encoded: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """One column out of :meth:`FeatureTransform.encode`'s result, whatever the packing:
    float values ``[N, dimension]`` for a numeric column, ids (-1 = no value) for a
    categorical one (``name + "/weights"`` gives a weighted column's weights).

    >>> from trainrun.feature_columns import FeatureTransform, numeric_column
    >>> enc = FeatureTransform([numeric_column("x")]).encode({"x": [1.0, 2.0]})
    >>> encoded_column(enc, "x").tolist()
    [[1.0], [2.0]]
    """
    if name in encoded:
        return encoded[name]
    base, _, suffix = name.partition("/")
    for key, value in encoded.items():
        if key.startswith("#"):
            continue
        key_name, _, rest = key.rpartition("@")
        fp, _, key_suffix = rest.partition("/")
        if key_name == base and key_suffix == suffix:
            return value
    for prefix in (NUMERIC, IDS):
        for layout, block in _blocks(encoded, prefix):
            if name in layout:
                start, size, _ = layout[name]
                if prefix == NUMERIC:
                    return block[:, start : start + size]
                pad = sum(s for _, s, _ in layout.values())
                col = block[:, list(layout).index(name)]
                return torch.where(col == pad, -1, col - start)
    raise _missing(encoded, name)


def find_block(
    encoded: dict[str, torch.Tensor], prefix: str, columns: Sequence[Any]
) -> tuple[str, dict[str, tuple[int, int, str]]] | None:
    """A block (key, layout) holding every one of ``columns``, fingerprints matching."""
    for key in encoded:
        if not key.startswith(prefix + "["):
            continue
        layout = _parse(key)
        if all(c.name in layout and layout[c.name][2] == fingerprint(c) for c in columns):
            return key, layout
    return None
