"""A stable, vectorised 64-bit hash of values' text (never Python's salted ``hash()``).

FNV-1a over the UTF-8 bytes, finished with the splitmix64 mixer so that the low bits
(used by ``% buckets``) are well spread. Only the unique values of a column are hashed;
rows then take their hash by index. The same text gives the same bucket in every
process, run and platform.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["combine_hashes", "hash_text", "hash_values", "mix64", "to_text"]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit."""
    z = z.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def hash_text(texts: np.ndarray) -> np.ndarray:
    """uint64 hashes of an array of str, vectorised over the array (one pass per byte position).

    >>> hash_text(np.array(["a", "b"])).dtype
    dtype('uint64')
    """
    texts = np.asarray(texts, dtype=str)
    if texts.size == 0:
        return np.zeros(texts.shape, dtype=np.uint64)
    raw = np.char.encode(texts.ravel(), "utf-8")
    lengths = np.char.str_len(raw)
    width = raw.dtype.itemsize
    data = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(len(raw), width)
    h = np.full(len(raw), _FNV_OFFSET, dtype=np.uint64)
    for j in range(int(lengths.max(initial=0))):
        live = lengths > j
        step = (h ^ data[:, j].astype(np.uint64)) * _FNV_PRIME
        h = np.where(live, step, h)
    # the length goes in too, so that the hash of "" differs from a missing value's
    return mix64(h ^ lengths.astype(np.uint64)).reshape(texts.shape)


def to_text(values: np.ndarray) -> np.ndarray:
    """Canonical text of non-missing values: integers (and integral floats) in decimal.

    Integral floats count as integers because a CSV column of ids with a gap is read as
    floats; ``3.0`` must hash like ``3``.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64).astype(str)
        return arr.astype(str)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).astype(str) if arr.dtype.kind != "b" else arr.astype(str)
    if arr.dtype.kind == "O":
        out = np.empty(arr.shape, dtype=object)
        for i, v in enumerate(arr.ravel()):  # per *unique* value only (callers pass uniques)
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                v = int(v)
            elif isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            out.flat[i] = str(v)
        return out.astype(str)
    return arr.astype(str)


def hash_values(values: np.ndarray) -> np.ndarray:
    """uint64 hash of each (non-missing) value's canonical text, hashing each unique once."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.uint64)
    codes, uniques = pd.factorize(arr.ravel(), use_na_sentinel=False)
    hashes = hash_text(to_text(np.asarray(uniques)))
    return hashes[codes].reshape(arr.shape)


def combine_hashes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Order-sensitive combination of two uint64 arrays (for crossed columns)."""
    left = left.astype(np.uint64, copy=False)
    right = right.astype(np.uint64, copy=False)
    return mix64(left * _FNV_PRIME ^ (right + _GOLDEN))
