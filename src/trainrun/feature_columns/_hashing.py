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


def _fnv_tail(h: int, data: bytes) -> int:
    prime, mask = int(_FNV_PRIME), 0xFFFFFFFFFFFFFFFF
    for byte in data:
        h = ((h ^ byte) * prime) & mask
    return h


def hash_text(texts: np.ndarray) -> np.ndarray:
    """uint64 hashes of an array of strings, vectorised across strings (one pass per byte
    position, over only the strings that long), in memory proportional to the total text.

    >>> hash_text(np.array(["a", "b"])).dtype
    dtype('uint64')
    """
    arr = np.asarray(texts)
    flat = arr.ravel()
    n = flat.size
    if n == 0:
        return np.zeros(arr.shape, dtype=np.uint64)
    # callers pass distinct values, so this per-value step runs once per category
    encoded = [str(s).encode("utf-8") for s in flat.tolist()]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    buf = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # longest first: the strings still going at byte j are then a prefix
    order = np.argsort(-lengths, kind="stable")
    s_starts, s_lengths = starts[order], lengths[order]
    longest = int(s_lengths[0])
    live = np.searchsorted(-s_lengths, -np.arange(longest), side="left")
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    for j in range(longest):
        c = int(live[j])
        if c <= 4:
            # a few long outliers: finish them one by one rather than one pass per byte
            for i in range(c):
                h[i] = _fnv_tail(int(h[i]), encoded[order[i]][j:])
            break
        h[:c] = (h[:c] ^ buf[s_starts[:c] + j].astype(np.uint64)) * _FNV_PRIME
    # the length goes in too, so that the hash of "" differs from a missing value's
    out = np.empty(n, dtype=np.uint64)
    out[order] = mix64(h ^ s_lengths.astype(np.uint64))
    return out.reshape(arr.shape)


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
        # an object array, not a fixed-width one: one long value must not widen them all
        out = np.empty(arr.shape, dtype=object)
        for i, v in enumerate(arr.ravel()):  # per *unique* value only (callers pass uniques)
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                v = int(v)
            elif isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            out.flat[i] = str(v)
        return out
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
