"""columns_from_frame proposes columns from dtypes; list-valued and odd inputs end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns import (
    DenseFeatures,
    EmbeddingColumn,
    FeatureTransform,
    IndicatorColumn,
    NumericColumn,
    categorical_column_with_vocabulary_list,
    columns_from_frame,
    indicator_column,
    numeric_column,
)
from trainrun.feature_columns import encoded_column as value_of
from trainrun.inputs import input_fn


def test_columns_from_frame_by_dtype():
    df = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0, 5.0],
            "flag": [True, False, True, True],
            "k": pd.Series(["b", "a", None, "b"], dtype="string"),
            "cat": pd.Categorical(["u", "v", "u", "u"]),
            "many": ["p", "q", "r", "s"],
            "y": [0, 1, 0, 1],
        }
    )
    cols = columns_from_frame(df, exclude=["y"], max_categories=3, normalize=True)
    by_name = {c.name: c for c in cols}
    assert list(by_name) == ["x", "flag", "k_indicator", "cat_indicator", "many_embedding"]
    x = by_name["x"]
    assert isinstance(x, NumericColumn) and x.default_value == (3.0,)
    assert x.normalizer_fn[0] == "zscore"
    assert isinstance(by_name["k_indicator"], IndicatorColumn)
    assert by_name["k_indicator"].categorical_column.vocabulary == ("a", "b")
    assert isinstance(by_name["many_embedding"], EmbeddingColumn)
    # the proposal is directly usable
    out = DenseFeatures(cols)(FeatureTransform(cols).encode(df))
    assert out.shape[0] == 4 and not torch.isnan(out).any()


def test_columns_from_frame_bad_input_and_skips():
    with pytest.raises(FeatureColumnError, match="pandas DataFrame"):
        columns_from_frame({"x": [1]})
    with pytest.raises(FeatureColumnError, match=r"exclude=\['z'\]"):
        columns_from_frame(pd.DataFrame({"x": [1.0]}), exclude="z")
    with pytest.raises(FeatureColumnError, match="max_categories=0"):
        columns_from_frame(pd.DataFrame({"x": [1.0]}), max_categories=0)
    df = pd.DataFrame({"when": pd.to_datetime(["2026-01-01"]), "x": [1.0]})
    with pytest.warns(UserWarning, match="skipping 'when'"):
        assert [c.name for c in columns_from_frame(df)] == ["x"]


def test_non_default_index_is_ignored():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "a"]}, index=[10, 5, 7])
    v = categorical_column_with_vocabulary_list("k", ["a", "b"])
    enc = FeatureTransform([numeric_column("x"), indicator_column(v)]).encode(df)
    assert value_of(enc, "k").tolist() == [0, 1, 0]
    batches = list(input_fn(df, batch_size=2, shuffle=False).batches(FeatureTransform([v])))
    assert torch.cat([value_of(b.features, "k") for b in batches]).tolist() == [0, 1, 0]


def test_streamed_list_columns_of_varying_width_are_padded(tmp_path):
    tags = [["a"], ["a", "b", "c"], [], ["b"], ["c", "a"], ["b"]]
    table = pa.table({"tags": tags, "x": [float(i) for i in range(6)]})
    pq.write_table(table, tmp_path / "t.parquet")
    v = categorical_column_with_vocabulary_list("tags", ["a", "b", "c"])
    t = FeatureTransform([indicator_column(v), numeric_column("x")])
    fn = input_fn(tmp_path / "t.parquet", batch_size=4, chunk_size=2, shuffle=False)
    batches = list(fn.batches(t))
    dense = DenseFeatures(t.columns)
    hot = torch.cat([dense(b.features)[:, 1:] for b in batches])
    expected = torch.tensor(
        [[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float32
    )
    assert torch.equal(hot, expected)
    # the same from the Arrow table in memory
    mem = list(input_fn(table, batch_size=6, shuffle=False).batches(t))
    assert torch.equal(dense(mem[0].features)[:, 1:], expected)


def test_ragged_python_lists_in_a_dict():
    v = categorical_column_with_vocabulary_list("tags", ["a", "b"])
    data = {"tags": [["a", "b"], ["b"], []]}
    assert value_of(FeatureTransform([v]).encode(data), "tags").tolist() == [
        [0, 1],
        [1, -1],
        [-1, -1],
    ]
    batch = next(input_fn(data, shuffle=False).batches(FeatureTransform([indicator_column(v)])))
    assert DenseFeatures([indicator_column(v)])(batch.features).tolist() == [
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]
