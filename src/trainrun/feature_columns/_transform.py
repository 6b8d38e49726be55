"""Stage 1: raw data columns -> tensors, whole arrays at a time (no torch modules).

:class:`FeatureTransform` encodes every column a model needs, once per in-memory dataset
or once per streamed chunk:

* numeric columns -> float32 ``[N, dimension]``;
* categorical columns -> int64 ids ``[N]`` (``[N, k]`` for multi-valent data), ``-1``
  meaning "no value"; vocabulary misses go to OOV buckets or ``default_value``;
* weighted columns -> ids under the column's name plus float32 weights under
  ``"<name>/weights"``.

The keys of the result are internal: numeric and single-valued categorical columns are
packed into blocks (see ``_blocks.py``); read one column with
:func:`trainrun.feature_columns.encoded_column`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from trainrun.exceptions import FeatureColumnError, InputError
from trainrun.feature_columns._blocks import IDS, NUMERIC, WEIGHTS_SUFFIX, block_key, entry_key
from trainrun.feature_columns._columns import (
    BucketizedColumn,
    CategoricalColumn,
    CrossedColumn,
    EmbeddingColumn,
    FeatureColumn,
    HashBucketColumn,
    IdentityColumn,
    IndicatorColumn,
    NumericColumn,
    VocabularyColumn,
    WeightedCategoricalColumn,
    check_columns,
    columns_from_config,
    columns_to_config,
)
from trainrun.feature_columns._hashing import combine_hashes, hash_text, mix64, to_text

__all__ = ["FeatureTransform", "WEIGHTS_SUFFIX", "encoded_columns"]


def encoded_columns(columns: Sequence[FeatureColumn]) -> list[FeatureColumn]:
    """The columns whose encodings appear in :meth:`FeatureTransform.encode`'s output.

    Indicator and embedding columns read their categorical column's encoding.
    """
    out: dict[str, FeatureColumn] = {}
    for col in columns:
        base = (
            col.categorical_column if isinstance(col, (IndicatorColumn, EmbeddingColumn)) else col
        )
        prev = out.get(base.name)
        if prev is not None and prev != base:
            raise FeatureColumnError(
                f"Two different feature columns share the name '{base.name}'; give each a "
                f"distinct key or use the same column object. Received: {prev!r} and {base!r}"
            )
        out[base.name] = base
    return list(out.values())


def _dedupe(columns: Sequence[FeatureColumn]) -> list[FeatureColumn]:
    """Drops exact repeats (a wide-and-deep model may list one column in both parts)."""
    seen: list[FeatureColumn] = []
    for col in columns:
        if col not in seen:
            seen.append(col)
    return seen


def _is_list_like(v: Any) -> bool:
    return isinstance(v, (list, tuple, np.ndarray))


def _first_valid(values: np.ndarray) -> Any:
    for v in values[:1000]:
        if _is_list_like(v) or not pd.isna(v):
            return v
    return None


def as_array(value: Any) -> np.ndarray:
    """np.asarray, except that a ragged list of lists becomes a 1-D object array."""
    try:
        return np.asarray(value)
    except ValueError:
        arr = np.empty(len(value), dtype=object)
        arr[:] = list(value)
        return arr


class _Raw:
    """Raw data access with key checking and one row count."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        if data is None or not hasattr(data, "__getitem__") or not hasattr(data, "keys"):
            raise FeatureColumnError(
                "FeatureTransform.encode() needs a mapping of column name -> array "
                f"(a dict or a pandas DataFrame). Received: {type(data).__name__}"
            )
        self.data = data
        self.keys = [str(k) for k in data.keys()]
        self.n: int | None = None

    def get(self, key: str, column: str, series: bool = False) -> Any:
        """The column as a numpy array (or as given, if it is a 1-D Series and ``series``)."""
        if key not in self.data:
            near = difflib.get_close_matches(key, self.keys, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            shown = ", ".join(repr(k) for k in self.keys[:30])
            more = f" (+{len(self.keys) - 30} more)" if len(self.keys) > 30 else ""
            raise FeatureColumnError(
                f"Feature column '{column}' needs the key {key!r}, which is not in the data.{hint} "
                f"Available keys: {shown}{more}. Received: key={key!r}"
            )
        value = self.data[key]
        if isinstance(value, pd.Series):
            arr = value if series else value.to_numpy()
        else:
            arr = value if isinstance(value, np.ndarray) else as_array(value)
        if arr.ndim == 0:
            raise FeatureColumnError(
                f"Feature {key!r} must be an array with one entry per row, not a scalar. "
                f"Received: {key}={value!r}"
            )
        n = arr.shape[0]
        if self.n is None:
            self.n = n
        elif n != self.n:
            raise FeatureColumnError(
                f"Feature {key!r} has {n} rows but other features have {self.n}; every column "
                f"must have the same number of rows. Received: len({key})={n}"
            )
        if n == 0:
            raise FeatureColumnError(
                f"The data is empty: feature {key!r} has no rows. Pass at least one row. "
                f"Received: len({key})=0"
            )
        return arr


# --------------------------------------------------------------------------- numeric


def _to_float(arr: np.ndarray, key: str) -> np.ndarray:
    """float64 copy of ``arr``; non-numeric text is an error showing the first bad value."""
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    flat = arr.ravel()
    conv = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(conv) & ~pd.isna(flat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = flat[i].item() if isinstance(flat[i], np.generic) else flat[i]
        row = i // max(1, flat.size // max(1, arr.shape[0]))
        raise FeatureColumnError(
            f"Numeric column '{key}' has non-numeric values ({int(bad.sum())} of {flat.size}), "
            f"e.g. {value!r} at row {row}. Convert or drop them, or declare the column "
            f"categorical (e.g. categorical_column_with_vocabulary_list({key!r}, ...)). "
            f"Received: {key}[{row}]={value!r}"
        )
    return conv.reshape(arr.shape)


def _rows(k: int) -> str:
    return f"{k} row" if k == 1 else f"{k} rows"


def _numeric_matrix(col: NumericColumn, raw: np.ndarray) -> np.ndarray:
    """[N, dimension] float64 from a 1-D column, a 2-D array or a column of lists."""
    n = raw.shape[0]
    if raw.ndim == 1 and raw.dtype.kind == "O" and _is_list_like(_first_valid(raw)):
        lengths = pd.Series(raw).map(lambda v: len(v) if _is_list_like(v) else 1).to_numpy()
        if (lengths != col.dimension).any():
            i = int(np.flatnonzero(lengths != col.dimension)[0])
            raise FeatureColumnError(
                f"Numeric column '{col.key}' has shape={col.shape} ({col.dimension} values per "
                f"row) but row {i} has {lengths[i]}. Fix the data or the shape. "
                f"Received: {col.key}[{i}]={raw[i]!r}"
            )
        raw = np.stack([np.asarray(v, dtype=object).ravel() for v in raw])
    mat = _to_float(raw, col.key).reshape(n, -1)
    if mat.shape[1] != col.dimension:
        raise FeatureColumnError(
            f"Numeric column '{col.key}' has shape={col.shape} ({col.dimension} values per row) "
            f"but the data has {mat.shape[1]} per row. Fix the data or declare "
            f"numeric_column({col.key!r}, shape={mat.shape[1]}). Received: data shape "
            f"{tuple(raw.shape)}"
        )
    missing = np.isnan(mat)
    if missing.any():
        if col.default_value is None:
            row = int(np.flatnonzero(missing.any(axis=1))[0])
            raise FeatureColumnError(
                f"Numeric column '{col.key}' has {_rows(int(missing.any(axis=1).sum()))} with "
                f"missing values (first at row {row}) and no default_value. Set one, e.g. "
                f"numeric_column({col.key!r}, default_value=0.0), or fill the data. "
                f"Received: {col.key}[{row}]={mat[row].tolist() if col.dimension > 1 else mat[row, 0]}"
            )
        mat = np.where(missing, np.asarray(col.default_value)[None, :], mat)
    if col.dtype in ("int32", "int64"):
        mat = np.trunc(mat)
    return mat


def _encode_numeric(col: NumericColumn, raw: np.ndarray) -> torch.Tensor:
    mat = _numeric_matrix(col, raw)
    norm = col.normalizer_fn
    if norm is None:
        with np.errstate(over="ignore"):  # past float32's range is inf: _Encoder refuses it
            return torch.from_numpy(mat.astype(np.float32))
    if isinstance(norm, tuple):
        kind, *p = norm
        if kind == "zscore":
            mat = (mat - p[0]) / p[1]
        elif kind == "minmax":
            mat = (mat - p[0]) / (p[1] - p[0])
        elif kind == "scale":
            mat = mat * p[0]
        elif kind == "log1p":
            mat = np.log1p(mat)
        return torch.from_numpy(mat.astype(np.float32))
    out = norm(torch.from_numpy(mat.astype(np.float32)))
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(np.asarray(out), dtype=torch.float32)
    if tuple(out.shape) != tuple(mat.shape):
        raise FeatureColumnError(
            f"Numeric column '{col.key}': normalizer_fn must return a tensor of the shape it "
            f"was given {tuple(mat.shape)}. Received: shape {tuple(out.shape)}"
        )
    return out.to(torch.float32).contiguous()


# --------------------------------------------------------------------------- categorical


def _flatten(raw: Any) -> tuple[Any, np.ndarray | None, int]:
    """Flat values plus where they go: (values, (row, pos) index or None for [N], k).

    A 1-D column comes back as it is (a pandas Series stays a Series, so that
    factorizing Arrow-backed text needs no conversion to Python objects).
    """
    n = raw.shape[0]
    if raw.ndim >= 2:
        k = int(np.prod(raw.shape[1:]))
        return np.asarray(raw).reshape(-1), None, k
    head = raw.iloc[:1000] if isinstance(raw, pd.Series) else raw[:1000]
    if raw.dtype == object and _is_list_like(_first_valid(np.asarray(head, dtype=object))):
        exploded = pd.Series(np.asarray(raw, dtype=object), dtype=object).explode()
        rows = exploded.index.to_numpy()
        pos = exploded.groupby(level=0).cumcount().to_numpy()
        k = int(pos.max(initial=0)) + 1 if n else 1
        return exploded.to_numpy(dtype=object), np.stack([rows, pos]), k
    return raw, None, 1


def _unflatten(ids: np.ndarray, where: np.ndarray | None, n: int, k: int, fill: Any = -1):
    if where is None:
        return ids.reshape(n, k) if k > 1 else ids.reshape(n)
    out = np.full((n, k), fill, dtype=ids.dtype)
    out[where[0], where[1]] = ids
    return out


def _factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(codes with -1 for missing, unique values as objects): every per-value step below
    then runs once per distinct value, and rows take their result by index."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _take(per_unique: np.ndarray, codes: np.ndarray, fill: Any = -1) -> np.ndarray:
    # code -1 (missing) picks the appended fill value: one gather, no mask
    table = np.append(per_unique, np.asarray([fill], dtype=per_unique.dtype))
    return table[codes]


def _texts(uniques: np.ndarray) -> np.ndarray:
    if pd.api.types.infer_dtype(uniques, skipna=False) in ("string", "empty"):
        return uniques
    return to_text(uniques).astype(object)


def _vocab_ids(col: VocabularyColumn, uniques: np.ndarray) -> np.ndarray:
    padding = None
    if col.dtype == "string":
        ids = pd.Index(np.asarray(col.vocabulary, dtype=object)).get_indexer(_texts(uniques))
    else:
        nums = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
        ids = pd.Index(np.asarray(col.vocabulary, dtype=np.int64)).get_indexer(
            nums.to_numpy(dtype=np.float64)
        )
        padding = nums.to_numpy(dtype=np.float64) == -1  # -1 in integer input: padding, as tf
    ids = ids.astype(np.int64)
    unseen = ids < 0
    if unseen.any():
        if col.num_oov_buckets:
            h = hash_text(to_text(uniques[unseen]))
            oov = (h % np.uint64(col.num_oov_buckets)).astype(np.int64)
            ids[unseen] = len(col.vocabulary) + oov
        else:
            ids[unseen] = max(col.default_value, -1)  # any negative default: no value
    if padding is not None:
        ids[padding] = -1
    return ids


def _integers(uniques: np.ndarray, key: str, what: str) -> np.ndarray:
    nums = _to_float(uniques, key) if uniques.size else np.zeros(0)
    fractional = np.mod(nums, 1) != 0
    if fractional.any():
        raise FeatureColumnError(
            f"{what} '{key}' needs integer values. Received: {key}[..]={uniques[fractional][0]!r}"
        )
    return nums.astype(np.int64)


def _identity_ids(col: IdentityColumn, uniques: np.ndarray) -> np.ndarray:
    vals = _integers(uniques, col.key, "Identity column")
    padding = vals == -1  # -1 in integer input is padding (no id), as in tf
    out_of_range = ((vals < 0) | (vals >= col.num_buckets)) & ~padding
    if out_of_range.any():
        if col.default_value is None:
            raise FeatureColumnError(
                f"Identity column '{col.key}' has values outside [0, {col.num_buckets}) "
                f"({int(out_of_range.sum())} distinct). Raise num_buckets, or set default_value "
                f"to send them to one id, or use a vocabulary / hash bucket column. "
                f"Received: {col.key}[..]={int(vals[out_of_range][0])}"
            )
        vals = np.where(out_of_range, col.default_value, vals)
    return np.where(padding, -1, vals)


def _hash_ids(col: HashBucketColumn, uniques: np.ndarray) -> np.ndarray:
    if col.dtype != "string":
        uniques = _integers(uniques, col.key, f"Hash bucket column with dtype={col.dtype!r},")
    h = hash_text(to_text(uniques)) if len(uniques) else np.zeros(0, dtype=np.uint64)
    return (h % np.uint64(col.hash_bucket_size)).astype(np.int64)


def all_finite(values: torch.Tensor, nan_only: bool = False) -> bool:
    """No NaN (nor +-inf, unless ``nan_only``) in ``values``: numpy's check is ~15x faster
    than torch's on CPU, which a streamed input pays per chunk."""
    if values.device.type != "cpu" or values.dtype not in (torch.float32, torch.float64):
        bad = torch.isnan(values) if nan_only else ~torch.isfinite(values)
        return not bool(bad.any())
    arr = values.detach().numpy()
    return not bool(np.isnan(arr).any()) if nan_only else bool(np.isfinite(arr).all())


def _non_finite_error(col: NumericColumn, raw: np.ndarray, bad: torch.Tensor) -> InputError:
    """Why the encoded column holds inf or NaN: the data, float32's range, or the normalizer."""
    rows = bad.reshape(bad.shape[0], -1).any(dim=1)
    row = int(torch.nonzero(rows)[0, 0])
    count = _rows(int(rows.sum()))
    mat = _numeric_matrix(col, raw)
    value = mat[row].tolist() if col.dimension > 1 else mat[row, 0]
    received = f"Received: {col.key}[{row}]={value}"
    if np.isinf(mat[row]).any():
        return InputError(
            f"Numeric column '{col.key}' has {count} with infinite values (first at row {row}). "
            f"Drop those rows or replace them with finite numbers (e.g. "
            f"df[{col.key!r}].replace([np.inf, -np.inf], np.nan) and a default_value). {received}"
        )
    if col.normalizer_fn is None:
        return InputError(
            f"Numeric column '{col.key}' has {count} with values beyond float32's range "
            f"(+-3.4e38; first at row {row}). Scale the column (numeric_column({col.key!r}, "
            f"normalizer_fn=...)) or drop those rows. {received}"
        )
    return InputError(
        f"Numeric column '{col.key}': normalizer_fn turned {count} into inf or NaN (first at "
        f"row {row}). Fix the normalizer or the data it is given (e.g. log of 0). {received}"
    )


class _Encoder:
    """One encode() call: caches each column's result so shared parts are computed once."""

    def __init__(self, raw: _Raw) -> None:
        self.raw = raw
        self.cache: dict[str, Any] = {}

    def numeric(self, col: NumericColumn, *, for_buckets: bool = False) -> torch.Tensor:
        """The encoded column; non-finite values are refused (a bucketized source may
        hold +-inf, which fall in the first or last bucket, but not NaN)."""
        key = "num:" + col.name
        if key not in self.cache:
            self.cache[key] = _encode_numeric(col, self.raw.get(col.key, col.name))
        out = self.cache[key]
        checked = "finite:" + col.name if not for_buckets else "notnan:" + col.name
        if checked not in self.cache:
            if not all_finite(out, nan_only=for_buckets):
                bad = torch.isnan(out) if for_buckets else ~torch.isfinite(out)
                raise _non_finite_error(col, self.raw.get(col.key, col.name), bad)
            self.cache[checked] = True
        return out

    def categorical(self, col: CategoricalColumn) -> tuple[np.ndarray, np.ndarray | None]:
        """(ids [N] or [N, k] int64, weights float32 same shape or None)."""
        key = "cat:" + col.name
        if key in self.cache:
            return self.cache[key]
        if isinstance(col, BucketizedColumn):
            x = self.numeric(col.source_column, for_buckets=True).numpy()
            ids = np.searchsorted(np.asarray(col.boundaries), x, side="right").astype(np.int64)
            if ids.shape[1] == 1:
                ids = ids[:, 0]
            else:  # each value of a multi-value source has its own block of buckets
                ids = ids + np.arange(ids.shape[1], dtype=np.int64)[None, :] * (
                    len(col.boundaries) + 1
                )
            result: tuple = (ids, None)
        elif isinstance(col, CrossedColumn):
            result = (self._crossed(col), None)
        elif isinstance(col, WeightedCategoricalColumn):
            ids, _ = self.categorical(col.categorical_column)
            result = (ids, self._weights(col, ids))
        else:
            raw = self.raw.get(col.raw_keys[0], col.name, series=True)
            values, where, k = _flatten(raw)
            codes, uniques = _factorize(values)
            if isinstance(col, VocabularyColumn):
                per_unique = _vocab_ids(col, uniques)
            elif isinstance(col, IdentityColumn):
                per_unique = _identity_ids(col, uniques)
            elif isinstance(col, HashBucketColumn):
                per_unique = _hash_ids(col, uniques)
            else:
                raise FeatureColumnError(f"Unsupported categorical column: {col!r}")
            flat = _take(per_unique.astype(np.int64), codes)
            result = (_unflatten(flat, where, raw.shape[0], k), None)
        self.cache[key] = result
        return result

    def _weights(self, col: WeightedCategoricalColumn, ids: np.ndarray) -> np.ndarray:
        raw = self.raw.get(col.weight_feature_key, col.name)
        values, where, k = _flatten(raw)
        w = _to_float(np.asarray(values), col.weight_feature_key)
        w = _unflatten(w, where, raw.shape[0], k, fill=np.nan)
        if w.shape != ids.shape:
            raise FeatureColumnError(
                f"Weighted column '{col.name}': the weights in {col.weight_feature_key!r} must "
                f"line up with the ids of {col.categorical_column.name!r} (one weight per value). "
                f"Received: ids shape {ids.shape}, weights shape {w.shape}"
            )
        bad = np.isnan(w) & (ids >= 0)
        if bad.any():
            raise FeatureColumnError(
                f"Weighted column '{col.name}' has {int(bad.sum())} values without a weight in "
                f"{col.weight_feature_key!r}; give every value a weight. "
                f"Received: a missing weight at row {int(np.argwhere(bad)[0][0])}"
            )
        with np.errstate(over="ignore"):  # past float32's range is inf, refused below
            w = np.where(ids >= 0, w, 0.0).astype(np.float32)
        if not np.isfinite(w).all():
            at = np.argwhere(~np.isfinite(w))[0]
            raise InputError(
                f"Weighted column '{col.name}' has infinite weights (or weights beyond float32's "
                f"range) in {col.weight_feature_key!r}; give every value a finite weight. "
                f"Received: {col.weight_feature_key}[{int(at[0])}]={float(w[tuple(at)])}"
            )
        return w

    def _crossed(self, col: CrossedColumn) -> np.ndarray:
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (hash [N, k], present [N, k])
        for item in col.keys:
            if isinstance(item, str):
                raw = self.raw.get(item, col.name, series=True)
                values, where, k = _flatten(raw)
                codes, uniques = _factorize(values)
                per_unique = hash_text(to_text(uniques)) if len(uniques) else np.zeros(0, np.uint64)
                h2 = _unflatten(_take(per_unique, codes, 0), where, raw.shape[0], k, fill=0)
                ok = _unflatten(codes >= 0, where, raw.shape[0], k, fill=False)
            else:
                ids, _ = self.categorical(item)
                ok = ids >= 0
                h2 = mix64(np.where(ok, ids, 0).astype(np.uint64))
            n = h2.shape[0]
            parts.append((h2.reshape(n, -1), ok.reshape(n, -1)))
        seed = np.uint64(0x5BD1E995 if col.hash_key is None else col.hash_key & (2**64 - 1))
        h: np.ndarray = np.full(parts[0][0].shape, seed, dtype=np.uint64)
        ok = np.ones(parts[0][1].shape, bool)
        h, ok = combine_hashes(h, parts[0][0]), parts[0][1]
        for ph, pok in parts[1:]:
            # the cross of multi-valent features is the product of their values, row by row
            n = h.shape[0]
            h = combine_hashes(h[:, :, None], ph[:, None, :]).reshape(n, -1)
            ok = (ok[:, :, None] & pok[:, None, :]).reshape(n, -1)
        ids = np.where(ok, (h % np.uint64(col.hash_bucket_size)).astype(np.int64), -1)
        return ids[:, 0] if ids.shape[1] == 1 else ids


class FeatureTransform:
    """Encodes raw data for a list of feature columns (stage 1, before the torch layers).

    >>> from trainrun.feature_columns import encoded_column, indicator_column, numeric_column
    >>> from trainrun.feature_columns import categorical_column_with_vocabulary_list as vocab
    >>> t = FeatureTransform([numeric_column("x"), indicator_column(vocab("k", ["a", "b"]))])
    >>> enc = t.encode({"x": [1.0, 2.0], "k": ["b", "zzz"]})
    >>> encoded_column(enc, "x").shape, encoded_column(enc, "k").tolist()
    (torch.Size([2, 1]), [1, -1])
    """

    def __init__(self, columns: Sequence[FeatureColumn]) -> None:
        self.columns: list[FeatureColumn] = check_columns(_dedupe(check_flat(columns)))
        self._encoded = encoded_columns(self.columns)
        keys: list[str] = []
        for col in self.columns:
            keys.extend(col.raw_keys)
        self.required_keys: tuple[str, ...] = tuple(dict.fromkeys(keys))
        # what encode() packs into blocks (see _blocks.py)
        self._numeric = sorted(
            (c for c in self.columns if isinstance(c, NumericColumn)), key=lambda c: c.name
        )
        tops = [c.categorical_column if isinstance(c, IndicatorColumn) else c for c in self.columns]
        self._packable = {
            c.name
            for c in tops
            if isinstance(c, CategoricalColumn) and not isinstance(c, WeightedCategoricalColumn)
        }
        # a packed column that an embedding also reads keeps its own entry too
        self._also_single = {
            c.categorical_column.name for c in self.columns if isinstance(c, EmbeddingColumn)
        }

    def __repr__(self) -> str:
        return f"FeatureTransform({[c.name for c in self.columns]!r})"

    @property
    def string_keys(self) -> tuple[str, ...]:
        """Raw keys read as text (so that a CSV reader can keep e.g. '007' as text)."""
        out: list[str] = []

        def visit(col: FeatureColumn) -> None:
            if isinstance(col, (IndicatorColumn, EmbeddingColumn, WeightedCategoricalColumn)):
                visit(col.categorical_column)
            elif isinstance(col, VocabularyColumn) and col.dtype == "string":
                out.append(col.key)
            elif isinstance(col, HashBucketColumn) and col.dtype == "string":
                out.append(col.key)
            elif isinstance(col, CrossedColumn):
                for k in col.keys:
                    if isinstance(k, str):
                        out.append(k)
                    else:
                        visit(k)

        for c in self.columns:
            visit(c)
        return tuple(dict.fromkeys(out))

    def encode(self, data: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Encodes whole columns at once; see the module docstring for the output."""
        enc = _Encoder(_Raw(data))
        out: dict[str, torch.Tensor] = {}
        if self._numeric:
            parts = [enc.numeric(c) for c in self._numeric]
            key = block_key(NUMERIC, [(c, c.dimension) for c in self._numeric])
            # numpy, not torch.cat: joining [N, 1] columns is ~10x faster this way on CPU
            out[key] = (
                parts[0]
                if len(parts) == 1
                else torch.from_numpy(np.concatenate([p.numpy() for p in parts], axis=1))
            )
        packed: list[tuple[CategoricalColumn, np.ndarray]] = []
        for col in self._encoded:
            if isinstance(col, NumericColumn):
                continue
            ids, weights = enc.categorical(col)  # type: ignore[arg-type]
            if col.name in self._packable and ids.ndim == 1:
                packed.append((col, ids))  # type: ignore[arg-type]
                if col.name not in self._also_single:
                    continue
            out[entry_key(col)] = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
            if weights is not None:
                out[entry_key(col) + WEIGHTS_SUFFIX] = torch.from_numpy(weights)
        if packed:
            packed.sort(key=lambda item: item[0].name)
            total = sum(c.num_buckets for c, _ in packed)
            block = np.empty((len(packed[0][1]), len(packed)), dtype=np.int64)
            offset = 0
            for j, (col, ids) in enumerate(packed):
                block[:, j] = np.where(ids >= 0, ids + offset, total)
                offset += col.num_buckets
            out[block_key(IDS, [(c, c.num_buckets) for c, _ in packed])] = torch.from_numpy(block)
        return out

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config (vocabularies inlined)."""
        return {"columns": columns_to_config(self.columns)}

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], normalizers: dict[str, Callable] | None = None
    ) -> FeatureTransform:
        """Rebuilds a transform; ``normalizers`` supplies Python normalizer functions by
        column key (or function name), which a config cannot hold."""
        if isinstance(config, str):
            config = json.loads(config)
        if not isinstance(config, Mapping) or "columns" not in config:
            raise FeatureColumnError(
                f"A FeatureTransform config is a dict with 'columns'. Received: {config!r}"[:300]
            )
        return cls(columns_from_config(config["columns"], normalizers))


def check_flat(columns: Any) -> list[FeatureColumn]:
    if isinstance(columns, FeatureColumn):
        return [columns]
    if columns is None or isinstance(columns, (str, bytes)):
        return check_columns(columns)
    return list(columns)
