"""Feature column declarations: what each raw column becomes, checked when declared.

Columns are small frozen value objects (no torch, no data). Two families:

* *dense* columns give float values per row: :func:`numeric_column`,
  :func:`indicator_column`, :func:`embedding_column` (and :func:`bucketized_column`,
  which a dense layer one-hot encodes);
* *categorical* columns give integer ids in ``[0, num_buckets)`` per row:
  vocabulary list / file, identity, hash bucket, crossed, bucketized, weighted.

The names and arguments follow ``tf.feature_column``.
"""

from __future__ import annotations

import abc
import difflib
import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from trainrun.exceptions import FeatureColumnError

__all__ = [
    "BucketizedColumn",
    "CategoricalColumn",
    "CrossedColumn",
    "EmbeddingColumn",
    "FeatureColumn",
    "HashBucketColumn",
    "IdentityColumn",
    "IndicatorColumn",
    "NumericColumn",
    "VocabularyColumn",
    "WeightedCategoricalColumn",
    "bucketized_column",
    "categorical_column_with_hash_bucket",
    "categorical_column_with_identity",
    "categorical_column_with_vocabulary_file",
    "categorical_column_with_vocabulary_list",
    "column_from_config",
    "columns_from_config",
    "columns_to_config",
    "crossed_column",
    "embedding_column",
    "indicator_column",
    "numeric_column",
    "weighted_categorical_column",
]

_NORMALIZERS = ("zscore", "minmax", "log1p", "scale")
_COMBINERS = ("mean", "sum", "sqrtn")


class FeatureColumn(abc.ABC):
    """Base class of every feature column. ``name`` is unique within a model."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The column's name: unique within a model, the key of its output in ``layout``."""

    @property
    @abc.abstractmethod
    def raw_keys(self) -> tuple[str, ...]:
        """The raw data columns this feature column reads."""

    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable description; :func:`column_from_config` rebuilds it."""


class CategoricalColumn(FeatureColumn):
    """A column whose rows are integer ids in ``[0, num_buckets)``; -1 marks "no value"."""

    num_buckets: int


def _check_key(key: Any, arg: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise FeatureColumnError(
            f"A feature column's '{arg}' must be a non-empty string naming a data column. "
            f"Received: {arg}={key!r}"
        )
    return key


def _check_positive_int(value: Any, arg: str, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise FeatureColumnError(
            f"Column '{column}': '{arg}' must be a positive integer. Received: {arg}={value!r}"
        )
    return int(value)


def _check_nonneg_int(value: Any, arg: str, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise FeatureColumnError(
            f"Column '{column}': '{arg}' must be an integer >= 0. Received: {arg}={value!r}"
        )
    return int(value)


def _check_categorical(column: Any, fn: str) -> CategoricalColumn:
    if isinstance(column, str):
        raise FeatureColumnError(
            f"{fn}() needs a categorical column, not a raw key. Wrap the key first, e.g. "
            f"{fn}(categorical_column_with_vocabulary_list({column!r}, [...])). "
            f"Received: categorical_column={column!r}"
        )
    if not isinstance(column, CategoricalColumn):
        kind = type(column).__name__
        raise FeatureColumnError(
            f"{fn}() needs a categorical column (vocabulary list/file, identity, hash bucket, "
            f"crossed, bucketized or weighted). Received: categorical_column={kind}"
            + (f" '{column.name}'" if isinstance(column, FeatureColumn) else f" {column!r}")
        )
    return column


# --------------------------------------------------------------------------- numeric


def _normalizer_spec(normalizer_fn: Any, key: str) -> tuple | Callable | None:
    """Validate a normalizer: None, a callable, or a named spec such as ("zscore", mean, std)."""
    if normalizer_fn is None or callable(normalizer_fn):
        return normalizer_fn
    if isinstance(normalizer_fn, (tuple, list)) and normalizer_fn:
        kind, *params = normalizer_fn
        arity = {"zscore": 2, "minmax": 2, "log1p": 0, "scale": 1}
        if kind in arity and len(params) == arity[kind]:
            try:
                nums = tuple(float(p) for p in params)
            except (TypeError, ValueError):
                nums = None
            if nums is not None:
                if kind == "zscore" and nums[1] == 0:
                    raise FeatureColumnError(
                        f"Column '{key}': a zscore normalizer needs std != 0. "
                        f"Received: normalizer_fn={normalizer_fn!r}"
                    )
                if kind == "minmax" and nums[0] == nums[1]:
                    raise FeatureColumnError(
                        f"Column '{key}': a minmax normalizer needs min != max. "
                        f"Received: normalizer_fn={normalizer_fn!r}"
                    )
                return (kind, *nums)
    raise FeatureColumnError(
        f"Column '{key}': normalizer_fn must be a callable or one of the named specs "
        f"('zscore', mean, std), ('minmax', min, max), ('scale', factor), ('log1p',). "
        f"Received: normalizer_fn={normalizer_fn!r}"
    )


def _callable_name(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or ""
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{qual}" if module else qual


@dataclass(frozen=True)
class NumericColumn(FeatureColumn):
    """Real values, ``shape`` of them per row (flattened to ``dimension`` floats)."""

    key: str
    shape: tuple[int, ...] = (1,)
    default_value: tuple[float, ...] | None = None
    dtype: str = "float32"
    normalizer_fn: Any = None

    @property
    def name(self) -> str:
        return self.key

    @property
    def dimension(self) -> int:
        return math.prod(self.shape)

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def to_config(self) -> dict[str, Any]:
        norm = self.normalizer_fn
        if callable(norm):
            norm_cfg: Any = {"callable": _callable_name(norm)}
        else:
            norm_cfg = list(norm) if norm is not None else None
        return {
            "type": "numeric_column",
            "key": self.key,
            "shape": list(self.shape),
            "default_value": list(self.default_value) if self.default_value is not None else None,
            "dtype": self.dtype,
            "normalizer_fn": norm_cfg,
        }


def numeric_column(
    key: str,
    shape: int | Sequence[int] = (1,),
    default_value: float | Sequence[float] | None = None,
    dtype: str = "float32",
    normalizer_fn: Callable | tuple | None = None,
) -> NumericColumn:
    """A real-valued feature.

    ``default_value`` replaces missing values (NaN / None); without it, missing values are
    an error. ``normalizer_fn`` is applied after defaults: a callable on a float32 tensor of
    shape ``[N, dimension]``, or a named spec that can be saved with the model:
    ``("zscore", mean, std)``, ``("minmax", min, max)``, ``("scale", factor)``, ``("log1p",)``.

    >>> col = numeric_column("tenure", normalizer_fn=("zscore", 32.4, 24.6))
    >>> col.dimension
    1
    """
    key = _check_key(key)
    dims = (shape,) if isinstance(shape, numbers.Integral) else tuple(cast(Sequence[int], shape))
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0 for d in dims
    ):
        raise FeatureColumnError(
            f"Column '{key}': shape must be a positive integer or a tuple of positive integers. "
            f"Received: shape={shape!r}"
        )
    dims = tuple(int(d) for d in dims)
    if str(dtype) not in ("float32", "float64", "int32", "int64"):
        raise FeatureColumnError(
            f"Column '{key}': dtype must be one of 'float32', 'float64', 'int32', 'int64'. "
            f"Received: dtype={dtype!r}"
        )
    default: tuple[float, ...] | None = None
    if default_value is not None:
        if isinstance(default_value, numbers.Real):
            default = (float(default_value),) * math.prod(dims)
        else:
            try:
                default = tuple(float(v) for v in cast(Sequence[float], default_value))
            except (TypeError, ValueError):
                default = None
            if default is None or len(default) != math.prod(dims):
                raise FeatureColumnError(
                    f"Column '{key}': default_value must be a number or {math.prod(dims)} "
                    f"numbers (one per value of shape {dims}). Received: "
                    f"default_value={default_value!r}"
                )
    return NumericColumn(key, dims, default, str(dtype), _normalizer_spec(normalizer_fn, key))


# --------------------------------------------------------------------------- bucketized


@dataclass(frozen=True)
class BucketizedColumn(CategoricalColumn):
    """A numeric column cut at ``boundaries``: bucket i holds ``b[i-1] <= x < b[i]``."""

    source_column: NumericColumn
    boundaries: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.source_column.name}_bucketized"

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return (len(self.boundaries) + 1) * self.source_column.dimension

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return self.source_column.raw_keys

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "bucketized_column",
            "source_column": self.source_column.to_config(),
            "boundaries": list(self.boundaries),
        }


def bucketized_column(
    source_column: NumericColumn, boundaries: Sequence[float]
) -> BucketizedColumn:
    """Buckets a numeric column: ids are 0..len(boundaries) (per value of its shape).

    >>> age = bucketized_column(numeric_column("tenure"), [12, 24, 48])
    >>> age.num_buckets
    4
    """
    if not isinstance(source_column, NumericColumn):
        raise FeatureColumnError(
            "bucketized_column() needs a numeric_column as its source. "
            f"Received: source_column={source_column!r}"
        )
    try:
        bounds = tuple(float(b) for b in boundaries)
    except (TypeError, ValueError):
        bounds = ()
    if not bounds or any(math.isnan(b) for b in bounds):
        raise FeatureColumnError(
            f"Column '{source_column.key}': boundaries must be a non-empty list of numbers. "
            f"Received: boundaries={boundaries!r}"
        )
    if any(lo >= hi for lo, hi in zip(bounds, bounds[1:], strict=False)):
        raise FeatureColumnError(
            f"Column '{source_column.key}': boundaries must be sorted in strictly increasing "
            f"order; sort them and drop duplicates. Received: boundaries={list(boundaries)!r}"
        )
    return BucketizedColumn(source_column, bounds)


# --------------------------------------------------------------------------- vocabulary


def _vocab_dtype(values: Sequence[Any], dtype: Any, key: str) -> str:
    if dtype is not None:
        d = str(dtype)
        if d in ("string", "str", "object"):
            return "string"
        if d in ("int32", "int64", "int"):
            return "int64"
        raise FeatureColumnError(
            f"Column '{key}': dtype must be 'string' or 'int64'. Received: dtype={dtype!r}"
        )
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        return "int64"
    raise FeatureColumnError(
        f"Column '{key}': vocabulary_list must hold only strings or only integers. "
        f"Received: vocabulary_list={list(values)[:10]!r}"
    )


@dataclass(frozen=True)
class VocabularyColumn(CategoricalColumn):
    """Ids by position in a vocabulary, plus ``num_oov_buckets`` hashed buckets for the rest."""

    key: str
    vocabulary: tuple
    dtype: str
    default_value: int
    num_oov_buckets: int
    vocabulary_file: str | None = None

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return len(self.vocabulary) + self.num_oov_buckets

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def to_config(self) -> dict[str, Any]:
        # vocabulary files are inlined so that a saved model needs no side files
        return {
            "type": "categorical_column_with_vocabulary_list",
            "key": self.key,
            "vocabulary_list": list(self.vocabulary),
            "dtype": self.dtype,
            "default_value": self.default_value,
            "num_oov_buckets": self.num_oov_buckets,
            "vocabulary_file": self.vocabulary_file,
        }


def _make_vocab_column(key, vocab, dtype, default_value, num_oov_buckets, file=None):
    num_oov_buckets = _check_nonneg_int(num_oov_buckets, "num_oov_buckets", key)
    if isinstance(default_value, bool) or not isinstance(default_value, numbers.Integral):
        raise FeatureColumnError(
            f"Column '{key}': default_value must be an integer id (-1 means no value). "
            f"Received: default_value={default_value!r}"
        )
    default_value = int(default_value)
    if num_oov_buckets and default_value != -1:
        raise FeatureColumnError(
            f"Column '{key}': give either num_oov_buckets or default_value, not both. "
            f"Received: num_oov_buckets={num_oov_buckets}, default_value={default_value}"
        )
    if default_value >= len(vocab):
        # tf allows any negative id (each means "no value", as -1 does here).
        raise FeatureColumnError(
            f"Column '{key}': default_value must be an id in [0, {len(vocab)}) or negative "
            f"(no value). Received: default_value={default_value}"
        )
    return VocabularyColumn(key, vocab, dtype, default_value, num_oov_buckets, file)


def categorical_column_with_vocabulary_list(
    key: str,
    vocabulary_list: Sequence[str] | Sequence[int],
    dtype: str | None = None,
    default_value: int = -1,
    num_oov_buckets: int = 0,
) -> VocabularyColumn:
    """Ids by position in ``vocabulary_list``.

    A value outside the vocabulary goes to one of ``num_oov_buckets`` extra buckets (by a
    stable hash), else to id ``default_value`` (-1: no value, i.e. a zero vector).

    >>> col = categorical_column_with_vocabulary_list("contract", ["Month-to-month", "One year"])
    >>> col.num_buckets
    2
    """
    key = _check_key(key)
    if not isinstance(vocabulary_list, (str, bytes, Sequence)):
        try:
            vocabulary_list = list(vocabulary_list)  # numpy arrays, pandas Index
        except TypeError:
            vocabulary_list = None  # type: ignore[assignment]
    if not vocabulary_list or isinstance(vocabulary_list, (str, bytes)):
        raise FeatureColumnError(
            f"Column '{key}': vocabulary_list must be a non-empty list of strings or integers. "
            f"Received: vocabulary_list={vocabulary_list!r}"
        )
    values = [v.item() if hasattr(v, "item") else v for v in vocabulary_list]
    vdtype = _vocab_dtype(values, dtype, key)
    try:
        vocab = (
            tuple(str(v) for v in values) if vdtype == "string" else tuple(int(v) for v in values)
        )
    except (TypeError, ValueError) as exc:
        raise FeatureColumnError(
            f"Column '{key}': vocabulary_list does not match dtype={vdtype!r} ({exc}). "
            f"Received: vocabulary_list={values[:10]!r}"
        ) from None
    if len(set(vocab)) != len(vocab):
        seen: set[Any] = set()
        dup = next(v for v in vocab if v in seen or _add(seen, v))
        raise FeatureColumnError(
            f"Column '{key}': vocabulary_list has duplicates; remove them. Received duplicate: {dup!r}"
        )
    return _make_vocab_column(key, vocab, vdtype, default_value, num_oov_buckets)


def categorical_column_with_vocabulary_file(
    key: str,
    vocabulary_file: str | os.PathLike,
    vocabulary_size: int | None = None,
    num_oov_buckets: int = 0,
    default_value: int | None = None,
    dtype: str = "string",
) -> VocabularyColumn:
    """Like :func:`categorical_column_with_vocabulary_list`, one vocabulary entry per line.

    The file is read now and its entries are saved with the model (no side file needed later).
    """
    key = _check_key(key)
    path = os.fspath(vocabulary_file)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [line.rstrip("\r\n") for line in fh]
    except OSError as exc:
        raise FeatureColumnError(
            f"Column '{key}': cannot read vocabulary_file ({exc.strerror}). "
            f"Received: vocabulary_file={path!r}"
        ) from None
    while lines and not lines[-1].strip():
        lines.pop()
    if vocabulary_size is not None:
        vocabulary_size = _check_positive_int(vocabulary_size, "vocabulary_size", key)
        if vocabulary_size > len(lines):
            raise FeatureColumnError(
                f"Column '{key}': vocabulary_size={vocabulary_size} but {path!r} has only "
                f"{len(lines)} entries. Received: vocabulary_size={vocabulary_size}"
            )
        lines = lines[:vocabulary_size]
    if not lines:
        raise FeatureColumnError(
            f"Column '{key}': vocabulary_file is empty. Received: vocabulary_file={path!r}"
        )
    vdtype = _vocab_dtype(lines, dtype, key)
    if vdtype == "int64":
        try:
            vocab: tuple = tuple(int(v) for v in lines)
        except ValueError as exc:
            raise FeatureColumnError(
                f"Column '{key}': vocabulary_file has a non-integer entry for dtype='int64' "
                f"({exc}). Received: vocabulary_file={path!r}"
            ) from None
    else:
        vocab = tuple(lines)
    if len(set(vocab)) != len(vocab):
        raise FeatureColumnError(
            f"Column '{key}': vocabulary_file has duplicate entries; remove them. "
            f"Received: vocabulary_file={path!r}"
        )
    return _make_vocab_column(
        key, vocab, vdtype, -1 if default_value is None else default_value, num_oov_buckets, path
    )


# --------------------------------------------------------------------------- identity / hash


@dataclass(frozen=True)
class IdentityColumn(CategoricalColumn):
    """Integer values used as ids directly, in ``[0, num_buckets)``."""

    key: str
    num_buckets: int  # type: ignore[misc]
    default_value: int | None = None

    @property
    def name(self) -> str:
        return self.key

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "categorical_column_with_identity",
            "key": self.key,
            "num_buckets": self.num_buckets,
            "default_value": self.default_value,
        }


def categorical_column_with_identity(
    key: str, num_buckets: int, default_value: int | None = None
) -> IdentityColumn:
    """Integer values as ids. Values outside ``[0, num_buckets)`` take ``default_value``;
    without one they are an error (as in tf.feature_column).

    >>> categorical_column_with_identity("senior_citizen", 2).num_buckets
    2
    """
    key = _check_key(key)
    num_buckets = _check_positive_int(num_buckets, "num_buckets", key)
    if default_value is not None:
        if (
            isinstance(default_value, bool)
            or not isinstance(default_value, numbers.Integral)
            or not 0 <= default_value < num_buckets
        ):
            raise FeatureColumnError(
                f"Column '{key}': default_value must be an id in [0, {num_buckets}). "
                f"Received: default_value={default_value!r}"
            )
        default_value = int(default_value)
    return IdentityColumn(key, num_buckets, default_value)


@dataclass(frozen=True)
class HashBucketColumn(CategoricalColumn):
    """Ids by a stable 64-bit hash of the value's text, modulo ``hash_bucket_size``."""

    key: str
    hash_bucket_size: int
    dtype: str = "string"

    @property
    def name(self) -> str:
        return self.key

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return self.hash_bucket_size

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.key,)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "categorical_column_with_hash_bucket",
            "key": self.key,
            "hash_bucket_size": self.hash_bucket_size,
            "dtype": self.dtype,
        }


def categorical_column_with_hash_bucket(
    key: str, hash_bucket_size: int, dtype: str = "string"
) -> HashBucketColumn:
    """Hashes values into ``hash_bucket_size`` buckets; the same value gets the same bucket
    in every process and every run (integers hash as their decimal text).

    >>> categorical_column_with_hash_bucket("payment_method", 100).num_buckets
    100
    """
    key = _check_key(key)
    size = _check_positive_int(hash_bucket_size, "hash_bucket_size", key)
    d = str(dtype)
    if d in ("str", "object"):
        d = "string"
    if d not in ("string", "int32", "int64"):
        raise FeatureColumnError(
            f"Column '{key}': dtype must be 'string', 'int32' or 'int64'. Received: dtype={dtype!r}"
        )
    return HashBucketColumn(key, size, d)


# --------------------------------------------------------------------------- crossed


@dataclass(frozen=True)
class CrossedColumn(CategoricalColumn):
    """Hashed combinations of several categorical features."""

    keys: tuple  # each a raw key (str) or a categorical column
    hash_bucket_size: int
    hash_key: int | None = None

    @property
    def name(self) -> str:
        return _crossed_name(self.keys)

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return self.hash_bucket_size

    @property
    def raw_keys(self) -> tuple[str, ...]:
        out: list[str] = []
        for k in self.keys:
            out.extend([k] if isinstance(k, str) else k.raw_keys)
        return tuple(dict.fromkeys(out))

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "crossed_column",
            "keys": [k if isinstance(k, str) else k.to_config() for k in self.keys],
            "hash_bucket_size": self.hash_bucket_size,
            "hash_key": self.hash_key,
        }


def _crossed_name(keys: Sequence[Any]) -> str:
    """tf's name of a cross: its leaf keys' names (nested crosses flattened), sorted."""
    leaves: list[str] = []
    for k in keys:
        if isinstance(k, str):
            leaves.append(k)
        elif isinstance(k, CrossedColumn):
            leaves.extend(_crossed_name(k.keys).split("_X_"))
        else:
            leaves.append(k.name)
    return "_X_".join(sorted(leaves))


def crossed_column(
    keys: Sequence[str | CategoricalColumn], hash_bucket_size: int, hash_key: int | None = None
) -> CrossedColumn:
    """Crosses two or more features: a raw key (hashed as text) or a categorical column
    (vocabulary, identity, hash bucket, bucketized, crossed).

    The name joins the crossed names with ``_X_`` in sorted order, as tf's does (the
    order of ``keys`` still decides the hashing).

    >>> crossed_column(["internet_service", "contract"], 1000).name
    'contract_X_internet_service'
    """
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence) or len(keys) < 2:
        raise FeatureColumnError(
            f"crossed_column() needs a list of at least two keys or categorical columns. "
            f"Received: keys={keys!r}"
        )
    items: list = []
    for k in keys:
        if isinstance(k, str):
            items.append(_check_key(k, "keys"))
        elif isinstance(k, WeightedCategoricalColumn):
            raise FeatureColumnError(
                f"crossed_column() cannot cross a weighted column; cross its categorical column "
                f"instead. Received: {k.name}"
            )
        elif isinstance(k, CategoricalColumn):
            items.append(k)
        else:
            raise FeatureColumnError(
                "crossed_column() keys must be raw keys (str) or categorical columns. "
                f"Received: {type(k).__name__} {getattr(k, 'name', k)!r}"
            )
    name = _crossed_name(items)
    size = _check_positive_int(hash_bucket_size, "hash_bucket_size", name)
    if hash_key is not None and (
        isinstance(hash_key, bool) or not isinstance(hash_key, numbers.Integral)
    ):
        raise FeatureColumnError(
            f"Column '{name}': hash_key must be an integer. Received: hash_key={hash_key!r}"
        )
    return CrossedColumn(tuple(items), size, None if hash_key is None else int(hash_key))


# --------------------------------------------------------------------------- weighted


@dataclass(frozen=True)
class WeightedCategoricalColumn(CategoricalColumn):
    """A categorical column whose ids carry weights read from ``weight_feature_key``."""

    categorical_column: CategoricalColumn
    weight_feature_key: str
    dtype: str = "float32"

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_weighted_by_{self.weight_feature_key}"

    @property
    def num_buckets(self) -> int:  # type: ignore[override]
        return self.categorical_column.num_buckets

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.categorical_column.raw_keys, self.weight_feature_key)))

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "weighted_categorical_column",
            "categorical_column": self.categorical_column.to_config(),
            "weight_feature_key": self.weight_feature_key,
            "dtype": self.dtype,
        }


def weighted_categorical_column(
    categorical_column: CategoricalColumn, weight_feature_key: str, dtype: str = "float32"
) -> WeightedCategoricalColumn:
    """Gives each id of ``categorical_column`` the weight in the same position of the raw
    column ``weight_feature_key`` (e.g. term frequencies).

    >>> words = categorical_column_with_vocabulary_list("words", ["a", "b"])
    >>> weighted_categorical_column(words, "counts").name
    'words_weighted_by_counts'
    """
    cat = _check_categorical(categorical_column, "weighted_categorical_column")
    if isinstance(cat, WeightedCategoricalColumn):
        raise FeatureColumnError(
            f"weighted_categorical_column() cannot wrap a column that is already weighted. "
            f"Received: {cat.name}"
        )
    key = _check_key(weight_feature_key, "weight_feature_key")
    if str(dtype) not in ("float32", "float64"):
        raise FeatureColumnError(
            f"Column '{cat.name}': dtype must be 'float32' or 'float64'. Received: dtype={dtype!r}"
        )
    return WeightedCategoricalColumn(cat, key, str(dtype))


# --------------------------------------------------------------------------- dense wrappers


@dataclass(frozen=True)
class IndicatorColumn(FeatureColumn):
    """A categorical column as a one-hot (multi-hot, counts or weights) vector."""

    categorical_column: CategoricalColumn

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_indicator"

    @property
    def dimension(self) -> int:
        return self.categorical_column.num_buckets

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return self.categorical_column.raw_keys

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "indicator_column",
            "categorical_column": self.categorical_column.to_config(),
        }


def indicator_column(categorical_column: CategoricalColumn) -> IndicatorColumn:
    """One-hot encodes a categorical column for a dense (DNN) model.

    >>> col = indicator_column(categorical_column_with_vocabulary_list("k", ["a", "b"]))
    >>> col.dimension
    2
    """
    return IndicatorColumn(_check_categorical(categorical_column, "indicator_column"))


@dataclass(frozen=True)
class EmbeddingColumn(FeatureColumn):
    """A categorical column as a learned ``dimension``-vector, ids combined by ``combiner``."""

    categorical_column: CategoricalColumn
    dimension: int
    combiner: str = "mean"
    max_norm: float | None = None
    trainable: bool = True

    @property
    def name(self) -> str:
        return f"{self.categorical_column.name}_embedding"

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return self.categorical_column.raw_keys

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "embedding_column",
            "categorical_column": self.categorical_column.to_config(),
            "dimension": self.dimension,
            "combiner": self.combiner,
            "max_norm": self.max_norm,
            "trainable": self.trainable,
        }


def embedding_column(
    categorical_column: CategoricalColumn,
    dimension: int,
    combiner: str = "mean",
    max_norm: float | None = None,
    trainable: bool = True,
) -> EmbeddingColumn:
    """A dense, learned representation of a categorical column.

    Several ids in one row (multi-valent data, weighted columns) are combined by
    ``combiner``: "mean", "sum" or "sqrtn" (sum over the root of the summed squared weights).

    >>> col = embedding_column(categorical_column_with_hash_bucket("city", 1000), 8)
    >>> col.dimension
    8
    """
    cat = _check_categorical(categorical_column, "embedding_column")
    dimension = _check_positive_int(dimension, "dimension", cat.name)
    if combiner not in _COMBINERS:
        near = difflib.get_close_matches(str(combiner), _COMBINERS, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise FeatureColumnError(
            f"Column '{cat.name}': combiner must be one of {list(_COMBINERS)}.{hint} "
            f"Received: combiner={combiner!r}"
        )
    if max_norm is not None and (not isinstance(max_norm, numbers.Real) or max_norm <= 0):
        raise FeatureColumnError(
            f"Column '{cat.name}': max_norm must be a positive number or None. "
            f"Received: max_norm={max_norm!r}"
        )
    return EmbeddingColumn(
        cat, dimension, combiner, None if max_norm is None else float(max_norm), bool(trainable)
    )


# --------------------------------------------------------------------------- config


def _nested(config: Any, normalizers: dict[str, Callable] | None, kind: type) -> FeatureColumn:
    """A nested column rebuilt from its config, checked to be the kind its parent takes."""
    column = column_from_config(config, normalizers)
    if not isinstance(column, kind):
        raise FeatureColumnError(
            f"A feature column config nests a {type(column).__name__} where a {kind.__name__} "
            f"belongs; the config was edited or is damaged. Received: {config!r}"
        )
    return column


def _categorical(config: Any, normalizers: dict[str, Callable] | None) -> CategoricalColumn:
    return cast(CategoricalColumn, _nested(config, normalizers, CategoricalColumn))


def _add(seen: set[Any], value: Any) -> bool:
    seen.add(value)
    return False


def column_from_config(
    config: dict[str, Any], normalizers: dict[str, Callable] | None = None
) -> FeatureColumn:
    """Rebuilds a column from :meth:`FeatureColumn.to_config`.

    A numeric column saved with a Python callable as ``normalizer_fn`` stores only the
    callable's name; pass the function again as ``normalizers={name_or_key: fn}``.
    """
    if not isinstance(config, dict) or "type" not in config:
        raise FeatureColumnError(
            f"A feature column config must be a dict with a 'type'. Received: {config!r}"
        )
    kind = config["type"]
    c = config
    if kind == "numeric_column":
        norm = c.get("normalizer_fn")
        if isinstance(norm, dict):
            name = str(norm.get("callable"))
            given = normalizers or {}
            fn = given.get(c["key"], given.get(name))
            if fn is None:
                raise FeatureColumnError(
                    f"Column '{c['key']}' was saved with the Python function {name!r} as its "
                    f"normalizer_fn, which cannot be stored in a config. Pass it when loading: "
                    f"normalizers={{{c['key']!r}: {name.rsplit('.', 1)[-1]}}}. "
                    f"Received: normalizers={normalizers!r}"
                )
            norm = fn
        elif isinstance(norm, list):
            norm = tuple(norm)
        return numeric_column(c["key"], tuple(c["shape"]), c.get("default_value"), c["dtype"], norm)
    if kind == "bucketized_column":
        src = cast(NumericColumn, _nested(c["source_column"], normalizers, NumericColumn))
        return bucketized_column(src, c["boundaries"])
    if kind == "categorical_column_with_vocabulary_list":
        vocab = c["vocabulary_list"]
        vocab = (
            tuple(str(v) for v in vocab) if c["dtype"] == "string" else tuple(int(v) for v in vocab)
        )
        return _make_vocab_column(
            c["key"], vocab, c["dtype"], c["default_value"], c["num_oov_buckets"],
            c.get("vocabulary_file"),
        )  # fmt: skip
    if kind == "categorical_column_with_identity":
        return categorical_column_with_identity(c["key"], c["num_buckets"], c.get("default_value"))
    if kind == "categorical_column_with_hash_bucket":
        return categorical_column_with_hash_bucket(c["key"], c["hash_bucket_size"], c["dtype"])
    if kind == "crossed_column":
        keys: list[str | CategoricalColumn] = [
            k if isinstance(k, str) else _categorical(k, normalizers) for k in c["keys"]
        ]
        return crossed_column(keys, c["hash_bucket_size"], c.get("hash_key"))
    if kind == "weighted_categorical_column":
        cat = _categorical(c["categorical_column"], normalizers)
        return weighted_categorical_column(cat, c["weight_feature_key"], c["dtype"])
    if kind == "indicator_column":
        cat = _categorical(c["categorical_column"], normalizers)
        return indicator_column(cat)
    if kind == "embedding_column":
        cat = _categorical(c["categorical_column"], normalizers)
        return embedding_column(
            cat, c["dimension"], c["combiner"], c.get("max_norm"), c["trainable"]
        )
    from trainrun.feature_columns._sequence import extra_column_from_config

    extra = extra_column_from_config(c, normalizers)  # sequence and shared-embedding columns
    if extra is not None:
        return extra
    raise FeatureColumnError(f"Unknown feature column type in config. Received: type={kind!r}")


def columns_to_config(columns: Sequence[FeatureColumn]) -> list[dict[str, Any]]:
    """Configs of a list of columns (JSON-serialisable)."""
    return [c.to_config() for c in check_columns(columns)]


def columns_from_config(
    configs: Sequence[dict[str, Any]], normalizers: dict[str, Callable] | None = None
) -> list[FeatureColumn]:
    """Inverse of :func:`columns_to_config`."""
    return [column_from_config(c, normalizers) for c in configs]


def check_columns(columns: Any, arg: str = "feature_columns") -> list[FeatureColumn]:
    """Validates a list of feature columns: non-empty, all columns, names unique."""
    if isinstance(columns, FeatureColumn):
        columns = [columns]
    if isinstance(columns, (str, bytes)) or columns is None:
        raise FeatureColumnError(
            f"'{arg}' must be a list of feature columns (e.g. [numeric_column('x')]). "
            f"Received: {arg}={columns!r}"
        )
    cols = list(columns)
    if not cols:
        raise FeatureColumnError(
            f"'{arg}' must hold at least one feature column. Received: {arg}=[]"
        )
    by_name: dict[str, FeatureColumn] = {}
    for col in cols:
        if not isinstance(col, FeatureColumn):
            raise FeatureColumnError(
                f"'{arg}' must hold feature columns; wrap raw keys, e.g. numeric_column({col!r}). "
                f"Received: {col!r}"
            )
        prev = by_name.get(col.name)
        if prev is not None:
            raise FeatureColumnError(
                f"Two feature columns share the name '{col.name}'; each column may appear once. "
                f"Received: {prev!r} and {col!r}"
            )
        by_name[col.name] = col
    return cols
