"""Proposes feature columns from a DataFrame's dtypes."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._columns import (
    FeatureColumn,
    categorical_column_with_hash_bucket,
    categorical_column_with_vocabulary_list,
    embedding_column,
    indicator_column,
    numeric_column,
)

__all__ = ["columns_from_frame"]


def columns_from_frame(
    df: Any,
    exclude: Iterable[str] | str = (),
    max_categories: int = 50,
    normalize: bool = False,
) -> list[FeatureColumn]:
    """Proposes one dense-ready column per DataFrame column, from its dtype.

    * numbers and booleans -> ``numeric_column`` (missing values default to the median;
      ``normalize=True`` adds a ``("zscore", mean, std)`` normalizer);
    * text / categorical with at most ``max_categories`` distinct values ->
      ``indicator_column(categorical_column_with_vocabulary_list(...))`` (sorted vocabulary);
    * text with more -> ``embedding_column(categorical_column_with_hash_bucket(...))``.

    Other dtypes (dates, ...) are skipped with a warning. Pass the response in ``exclude``.

    >>> import pandas as pd
    >>> cols = columns_from_frame(pd.DataFrame({"x": [1.0, 2.0], "k": ["a", "b"], "y": [0, 1]}),
    ...                           exclude="y")
    >>> [c.name for c in cols]
    ['x', 'k_indicator']
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise FeatureColumnError(
            f"columns_from_frame() needs a pandas DataFrame. Received: {type(df).__name__}"
        )
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 1
    ):
        raise FeatureColumnError(
            f"columns_from_frame(): max_categories must be a positive integer. "
            f"Received: max_categories={max_categories!r}"
        )
    excluded = {exclude} if isinstance(exclude, str) else set(exclude)
    unknown = excluded - set(map(str, df.columns))
    if unknown:
        raise FeatureColumnError(
            f"columns_from_frame(): exclude names columns not in the frame. "
            f"Available: {list(map(str, df.columns))}. Received: exclude={sorted(unknown)}"
        )
    out: list[FeatureColumn] = []
    for name in df.columns:
        key = str(name)
        if key in excluded:
            continue
        s = df[name]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            values = s.astype("float64")
            default = float(values.median()) if values.isna().any() else None
            if default is not None and math.isnan(default):
                default = 0.0
            norm = None
            if normalize:
                std = float(values.std())
                if std > 0 and not math.isnan(std):
                    norm = ("zscore", float(values.mean()), std)
            out.append(numeric_column(key, default_value=default, normalizer_fn=norm))
        elif (
            isinstance(s.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(s)
            or pd.api.types.is_object_dtype(s)
        ):
            uniques = pd.unique(s.dropna())
            if len(uniques) == 0:
                warnings.warn(f"columns_from_frame: skipping {key!r}: no values", stacklevel=2)
                continue
            if len(uniques) <= max_categories:
                vocab = sorted(map(str, uniques))
                out.append(indicator_column(categorical_column_with_vocabulary_list(key, vocab)))
            else:
                size = 2 ** math.ceil(math.log2(2 * len(uniques)))
                dim = max(2, math.ceil(6 * len(uniques) ** 0.25))
                out.append(embedding_column(categorical_column_with_hash_bucket(key, size), dim))
        else:
            warnings.warn(
                f"columns_from_frame: skipping {key!r} of dtype {s.dtype}; declare a column for "
                f"it yourself or pass it in exclude",
                stacklevel=2,
            )
    if not out:
        raise FeatureColumnError(
            f"columns_from_frame() found no usable columns. Received: columns={list(df.columns)}"
        )
    return out
