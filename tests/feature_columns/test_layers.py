"""DenseFeatures and LinearFeatures: values by hand, gradients, errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns import (
    DenseFeatures,
    FeatureTransform,
    LinearFeatures,
    bucketized_column,
    categorical_column_with_hash_bucket,
    categorical_column_with_identity,
    categorical_column_with_vocabulary_list,
    crossed_column,
    embedding_column,
    encoded_column,
    indicator_column,
    numeric_column,
    weighted_categorical_column,
)

VOCAB = categorical_column_with_vocabulary_list("c", ["a", "b", "c"])


def run(layer_cls, columns, data, **kw):
    layer = layer_cls(columns, **kw)
    return layer, layer(FeatureTransform(columns).encode(data))


def test_dense_numeric_bucketized_indicator_by_hand():
    cols = [
        numeric_column("x"),
        bucketized_column(numeric_column("b"), [0.0]),
        indicator_column(VOCAB),
    ]
    layer, out = run(DenseFeatures, cols, {"x": [1.5, -2.0], "b": [-1.0, 3.0], "c": ["c", "zz"]})
    assert layer.output_dim == 1 + 2 + 3
    # numeric first, then one-hot blocks by name (b_bucketized, c)
    assert out.tolist() == [[1.5, 1, 0, 0, 0, 1], [-2.0, 0, 1, 0, 0, 0]]
    assert [name for name, _, _ in layer.layout] == ["x", "b_bucketized", "c_indicator"]


def test_indicator_multi_hot_counts_and_weights():
    v = categorical_column_with_vocabulary_list("t", ["a", "b"])
    _, out = run(DenseFeatures, [indicator_column(v)], pd.DataFrame({"t": [["a", "a", "b"], []]}))
    assert out.tolist() == [[2.0, 1.0], [0.0, 0.0]]
    w = weighted_categorical_column(v, "f")
    data = pd.DataFrame({"t": [["a", "b"], ["b"]], "f": [[0.5, 3.0], [2.0]]})
    _, out = run(DenseFeatures, [indicator_column(w)], data)
    assert out.tolist() == [[0.5, 3.0], [0.0, 2.0]]


@pytest.mark.parametrize("combiner", ["mean", "sum", "sqrtn"])
def test_embedding_combiners_match_the_formula(combiner):
    v = categorical_column_with_vocabulary_list("t", ["a", "b", "c"])
    col = embedding_column(v, 2, combiner=combiner)
    data = pd.DataFrame({"t": [["a", "c"], ["b"], []]})
    layer, out = run(DenseFeatures, [col], data)
    table = layer.embeddings[0].bag.weight.detach()
    a, b, c = table[0], table[1], table[2]
    expected_first = {"mean": (a + c) / 2, "sum": a + c, "sqrtn": (a + c) / math.sqrt(2)}
    assert torch.allclose(out[0], expected_first[combiner], atol=1e-6)
    assert torch.allclose(out[1], b) and torch.equal(out[2], torch.zeros(2))


def test_weighted_embedding_uses_weights():
    v = categorical_column_with_vocabulary_list("t", ["a", "b"])
    col = embedding_column(weighted_categorical_column(v, "f"), 3, combiner="mean")
    data = pd.DataFrame({"t": [["a", "b"]], "f": [[1.0, 3.0]]})
    layer, out = run(DenseFeatures, [col], data)
    table = layer.embeddings[0].bag.weight.detach()
    assert torch.allclose(out[0], (1 * table[0] + 3 * table[1]) / 4, atol=1e-6)


def test_embedding_initialisation_trainable_and_padding():
    col = embedding_column(categorical_column_with_identity("i", 50), 16, trainable=False)
    layer = DenseFeatures([col])
    weight = layer.embeddings[0].bag.weight
    assert not weight.requires_grad
    assert torch.equal(weight[50], torch.zeros(16))  # the "no value" row
    assert weight[:50].abs().max() <= 2 / math.sqrt(16) + 1e-6  # truncated normal, tf's std


def test_embedding_max_norm_renormalises():
    col = embedding_column(categorical_column_with_identity("i", 3), 4, max_norm=0.01)
    _, out = run(DenseFeatures, [col], {"i": [0, 1, 2]})
    assert out.norm(dim=1).max() <= 0.01 + 1e-6


def test_dense_gradients_reach_the_embeddings():
    col = embedding_column(categorical_column_with_hash_bucket("h", 7), 3)
    layer, out = run(DenseFeatures, [col], {"h": ["x", "y"]})
    out.sum().backward()
    grad = layer.embeddings[0].bag.weight.grad
    from trainrun.feature_columns._transform import _hash_ids

    # exactly the rows the two values hash to receive a gradient, no others
    hashed = _hash_ids(col.categorical_column, pd.Series(["x", "y"], dtype=object).to_numpy())
    touched = torch.nonzero(grad.abs().sum(dim=1) > 0).flatten().tolist()
    assert touched == sorted(set(hashed.tolist()))


@pytest.mark.parametrize(
    "column",
    [
        VOCAB,
        categorical_column_with_hash_bucket("h", 3),
        crossed_column(["a", "b"], 10),
        weighted_categorical_column(VOCAB, "w"),
        categorical_column_with_identity("i", 3),
    ],
)
def test_dense_rejects_bare_categorical_columns(column):
    with pytest.raises(FeatureColumnError, match=r"is categorical; wrap it in indicator_column"):
        DenseFeatures([column])


def test_linear_contributions_by_hand():
    w = weighted_categorical_column(categorical_column_with_vocabulary_list("t", ["p", "q"]), "f")
    cols = [
        numeric_column("x", shape=2),
        indicator_column(VOCAB),
        bucketized_column(numeric_column("b"), [0.0]),
        w,
    ]
    layer = LinearFeatures(cols, units=2)
    data = pd.DataFrame(
        {
            "x": [[1.0, 2.0], [0.0, -1.0]],
            "c": ["b", None],
            "b": [5.0, -5.0],
            "t": [["p", "q"], ["q"]],
            "f": [[2.0, 0.5], [4.0]],
        }
    )
    enc = FeatureTransform(cols).encode(data)
    assert torch.equal(layer(enc), torch.zeros(2, 2))  # tf's linear models start at zero
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        table = layer.categorical.weight
        table.copy_(torch.arange(table.numel(), dtype=torch.float32).view_as(table))
    rows = dict(zip(layer._cats.names, layer._cats.offsets, strict=True))
    out = layer(enc)
    t = layer.categorical.weight.detach()
    expected0 = (
        torch.tensor([1.0, 2.0])
        + t[rows["c"] + 1]
        + t[rows["b_bucketized"] + 1]
        + 2.0 * t[rows["t_weighted_by_f"] + 0]
        + 0.5 * t[rows["t_weighted_by_f"] + 1]
    )
    expected1 = (
        torch.tensor([0.0, -1.0])
        + t[rows["b_bucketized"] + 0]  # c is missing: no contribution
        + 4.0 * t[rows["t_weighted_by_f"] + 1]
    )
    assert torch.allclose(out[0], expected0) and torch.allclose(out[1], expected1)


def test_linear_accepts_embeddings_and_crossed_and_learns():
    torch.manual_seed(0)
    cols = [
        crossed_column(["a", "b"], 16),
        embedding_column(categorical_column_with_hash_bucket("a", 8), 2),
        numeric_column("x"),
    ]
    data = {"a": ["u", "v", "u", "v"], "b": ["s", "s", "t", "t"], "x": [0.0, 1.0, 2.0, 3.0]}
    enc = FeatureTransform(cols).encode(data)
    y = torch.tensor([[1.0], [-1.0], [0.5], [2.0]])
    layer = LinearFeatures(cols, units=1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = ((layer(enc) - y) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first * 0.01


def test_linear_sparse_gradients_option():
    layer = LinearFeatures([VOCAB], units=3, sparse=True)
    layer(FeatureTransform([VOCAB]).encode({"c": ["a", "b"]})).sum().backward()
    assert layer.categorical.weight.grad.is_sparse


def test_linear_rejects_bad_units_and_missing_encodings():
    with pytest.raises(FeatureColumnError, match="units=0"):
        LinearFeatures([numeric_column("x")], units=0)
    layer = LinearFeatures([numeric_column("x")], units=1)
    with pytest.raises(FeatureColumnError, match="no entry for feature column 'x'"):
        layer({"y": torch.zeros(1, 1)})


def test_column_order_does_not_change_the_layout():
    cols = [numeric_column("b"), numeric_column("a"), indicator_column(VOCAB)]
    one, two = DenseFeatures(cols), DenseFeatures(list(reversed(cols)))
    assert one.layout == two.layout


def test_packed_and_per_column_inputs_give_the_same_output():
    # a wide-and-deep model encodes the union of its parts' columns; each part's layer
    # then reads its own columns out of the packed blocks (the slower, general path)
    torch.manual_seed(0)
    emb = embedding_column(categorical_column_with_hash_bucket("h", 11), 3)
    dnn_cols = [numeric_column("x"), indicator_column(VOCAB), emb]
    lin_cols = [
        numeric_column("z"),
        categorical_column_with_identity("i", 5),
        crossed_column(["c", "h"], 20),
        bucketized_column(numeric_column("x"), [0.0]),
    ]
    data = {"x": [1.0, -1.0], "z": [3.0, 4.0], "c": ["a", "q"], "h": ["u", "v"], "i": [4, 0]}
    union = FeatureTransform(dnn_cols + lin_cols).encode(data)
    dense, linear = DenseFeatures(dnn_cols), LinearFeatures(lin_cols, units=2)
    with torch.no_grad():
        linear.weight.normal_()
        linear.categorical.weight.normal_()
    assert torch.allclose(dense(union), dense(FeatureTransform(dnn_cols).encode(data)))
    assert torch.allclose(linear(union), linear(FeatureTransform(lin_cols).encode(data)))
    # and plain per-column dicts work too
    per_column = {
        "x": torch.tensor([[1.0], [-1.0]]),
        "c": torch.tensor([0, -1]),
        "h": encoded_column(union, "h"),
    }
    assert torch.allclose(dense(per_column), dense(union))


def test_a_column_redefined_under_the_same_name_is_an_error_not_silent():
    # e.g. a wide-and-deep model whose two parts define "tenure" differently
    scaled = numeric_column("tenure", normalizer_fn=("scale", 0.01))
    vocab2 = categorical_column_with_vocabulary_list("c", ["b", "a", "c"])
    embed2 = embedding_column(categorical_column_with_vocabulary_list("c", ["z"]), 2)
    data = {"tenure": [10.0, 20.0], "c": ["a", "b"], "x": [0.0, 1.0]}
    enc = FeatureTransform([numeric_column("tenure"), numeric_column("x"), VOCAB]).encode(data)
    with pytest.raises(FeatureColumnError, match="'tenure' was encoded with a different"):
        DenseFeatures([scaled, numeric_column("x")])(enc)
    with pytest.raises(FeatureColumnError, match="'c' was encoded with a different"):
        LinearFeatures([vocab2, numeric_column("x")], units=1)(enc)
    enc2 = FeatureTransform([embedding_column(VOCAB, 2)]).encode(data)
    with pytest.raises(FeatureColumnError, match="'c' was encoded with a different"):
        DenseFeatures([embed2])(enc2)


def test_layout_and_repr_use_the_feature_columns_names():
    import trainrun as tr

    contract = tr.categorical_column_with_vocabulary_list("contract", ["a", "b"])
    city = tr.categorical_column_with_hash_bucket("city", 10)
    columns = [
        tr.numeric_column("tenure"),
        tr.indicator_column(contract),
        tr.bucketized_column(tr.numeric_column("age"), [1, 2]),
        tr.embedding_column(city, 2),
    ]
    layer = tr.DenseFeatures(columns)
    assert sorted(name for name, _, _ in layer.layout) == sorted(c.name for c in columns)
    spans = {name: stop - start for name, start, stop in layer.layout}
    assert spans == {"tenure": 1, "contract_indicator": 2, "age_bucketized": 3, "city_embedding": 2}
    assert sum(spans.values()) == layer.output_dim
    assert "contract_indicator[" in repr(layer) and "age_bucketized[" in repr(layer)
