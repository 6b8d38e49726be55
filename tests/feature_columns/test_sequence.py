"""Sequence columns, SequenceFeatures and shared_embeddings (with a GRU through Estimator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import FeatureColumnError
from trainrun.feature_columns._extra_layers import ExtendedTransform, SharedEmbeddings

WORDS = ["good", "great", "bad", "awful", "meh"]


def test_sequence_columns_encode_padded_with_lengths():
    words = fc.sequence_categorical_column_with_vocabulary_list("words", WORDS)
    prices = fc.sequence_numeric_column("prices", default_value=-1.0)
    cols = [fc.indicator_column(words), prices]
    enc = ExtendedTransform(cols).encode(
        {"words": [["good", "bad", "zzz"], ["meh"], []], "prices": [[1.0, 2.0, 3.0], [4.0], []]}
    )
    seq, lengths = fc.SequenceFeatures(cols)(enc)
    assert lengths.tolist() == [3, 1, 0]
    assert tuple(seq.shape) == (3, 3, 1 + 5)  # prices (1), then the indicator (5): by name
    assert seq[0, :, 0].tolist() == [1.0, 2.0, 3.0]
    assert seq[1, :, 0].tolist() == [4.0, -1.0, -1.0]  # padded with default_value
    assert seq[0, 0, 1:].tolist() == [1, 0, 0, 0, 0]  # "good"
    assert seq[0, 2, 1:].sum() == 0  # out of vocabulary: no category
    assert seq[1, 1:, 1:].sum() == 0  # padding


def test_sequence_columns_check_themselves():
    ids = fc.sequence_categorical_column_with_identity("ids", 4)
    with pytest.raises(FeatureColumnError, match="embedding_column.*or indicator_column"):
        fc.SequenceFeatures([ids])
    with pytest.raises(FeatureColumnError, match="sequence columns only"):
        fc.SequenceFeatures([fc.numeric_column("x")])
    with pytest.raises(FeatureColumnError, match="shape must be a positive int"):
        fc.sequence_numeric_column("p", shape=0)
    cols = [fc.embedding_column(ids, 2), fc.sequence_numeric_column("p")]
    enc = ExtendedTransform(cols).encode({"ids": [[1, 2]], "p": [[0.5]]})
    with pytest.raises(FeatureColumnError, match="same length in each example"):
        fc.SequenceFeatures(cols)(enc)
    for col in cols + [fc.sequence_categorical_column_with_hash_bucket("h", 7)]:
        assert fc.column_from_config(col.to_config()) == col


def test_shared_embeddings_use_one_table():
    a, b = fc.shared_embeddings(
        [
            fc.categorical_column_with_identity("home", 5),
            fc.categorical_column_with_identity("away", 5),
        ],
        dimension=3,
    )
    layer = SharedEmbeddings([a, b])
    assert list(dict(layer.named_parameters())) == ["tables.away_home_shared_embedding.weight"]
    out = layer(ExtendedTransform([a, b]).encode({"home": [1, 2], "away": [2, 1]}))
    assert tuple(out.shape) == (2, 6)
    # the same id reads the same row whichever column it comes from
    torch.testing.assert_close(out[0, :3], out[1, 3:])
    assert fc.column_from_config(a.to_config()) == a
    with pytest.raises(FeatureColumnError, match="same number of buckets"):
        fc.shared_embeddings(
            [
                fc.categorical_column_with_identity("u", 5),
                fc.categorical_column_with_identity("v", 6),
            ],
            2,
        )


class GRUClassifier(torch.nn.Module):
    def __init__(self, in_features, units, context_features=0, hidden=8):
        super().__init__()
        self.gru = torch.nn.GRU(in_features, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden + context_features, units)

    def forward(self, seq, lengths, context):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            seq, lengths.clamp_min(1), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return self.out(h[-1] if context is None else torch.cat([h[-1], context], dim=1))


def test_a_gru_over_a_sequence_column_learns_through_estimator(tmp_path):
    rng = np.random.default_rng(0)
    value = {"good": 1, "great": 2, "bad": -1, "awful": -2, "meh": 0}
    rows = [list(rng.choice(WORDS, rng.integers(1, 7))) for _ in range(300)]
    df = pd.DataFrame(
        {
            "words": rows,
            "y": [int(sum(value[w] for w in r) > 0) for r in rows],
            "team": rng.integers(0, 4, len(rows)),
            "rival": rng.integers(0, 4, len(rows)),
        }
    )
    words = fc.sequence_categorical_column_with_vocabulary_list("words", WORDS)
    team, rival = fc.shared_embeddings(
        [
            fc.categorical_column_with_identity("team", 4),
            fc.categorical_column_with_identity("rival", 4),
        ],
        2,
    )
    est = trainrun.Estimator(
        model_fn=GRUClassifier,
        head=trainrun.BinaryHead(),
        feature_columns=[fc.embedding_column(words, 6), team, rival],
        model_dir=tmp_path,
        optimizer=lambda params: torch.optim.Adam(params, lr=0.02),
        config=trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1),
    )
    est.train(trainrun.input_fn(df, response="y", epochs=12, batch_size=32))
    results = est.evaluate(trainrun.input_fn(df, response="y", shuffle=False))
    assert results["accuracy"] > 0.85
    assert est.network_.body.out.in_features == 8 + 4  # GRU state + two shared embeddings

    # The export rebuilds the sequence and shared-embedding transform from its spec alone
    # (column configs, no pickle) and the GRU by importing its builder.
    path = est.export(tmp_path / "export")
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "spec.json"]
    loaded = trainrun.load_exported(path)
    assert [c["type"] for c in loaded.spec["columns"]["all"]] == [
        "embedding_column",
        "shared_embedding_column",
        "shared_embedding_column",
    ]
    assert loaded.spec["network"]["model_fn"].endswith(":GRUClassifier")
    assert set(loaded.required_keys) == {"words", "team", "rival"}
    new = df.drop(columns="y").iloc[::7]  # other batch compositions: other padded widths
    mine = est.predict_frame(trainrun.input_fn(new, shuffle=False, batch_size=16))
    theirs = loaded.predict_frame(new, batch_size=16)
    pd.testing.assert_frame_equal(mine, theirs, rtol=1e-6, atol=1e-7)
    # a new estimator over the export warm-starts to the same predictions
    warm = trainrun.Estimator(
        model_fn=GRUClassifier,
        head=trainrun.BinaryHead(),
        feature_columns=[fc.embedding_column(words, 6), team, rival],
        model_dir=tmp_path / "warm",
        warm_start_from=path,
        config=trainrun.RunConfig(seed=1, progress=False, tensorboard=False, num_threads=1),
    )
    warm.train(trainrun.input_fn(df, response="y", epochs=1, batch_size=32), steps=1)
    assert warm.global_step_ == 1


def test_a_sequence_numeric_model_exports_and_reloads(tmp_path):
    rng = np.random.default_rng(1)
    rows = [list(rng.normal(size=rng.integers(1, 6)).round(3)) for _ in range(120)]
    df = pd.DataFrame({"prices": rows, "y": [float(np.sum(r)) for r in rows]})
    df["shop"] = rng.integers(0, 3, len(df))
    shop = fc.indicator_column(fc.categorical_column_with_identity("shop", 3))
    est = trainrun.Estimator(
        model_fn=GRUClassifier,
        head=trainrun.RegressionHead(),
        feature_columns=[fc.sequence_numeric_column("prices", default_value=-9.0), shop],
        model_dir=tmp_path / "m",
        config=trainrun.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1),
    )
    est.train(trainrun.input_fn(df, response="y", epochs=2, batch_size=32))
    loaded = trainrun.load_exported(est.export(tmp_path / "export"))
    assert loaded.spec["columns"]["all"][0] == {
        "type": "sequence_numeric_column",
        "key": "prices",
        "shape": [1],
        "default_value": -9.0,
    }
    mine = est.predict_frame(trainrun.input_fn(df.drop(columns="y"), shuffle=False))
    theirs = loaded.predict_frame(df.drop(columns="y"), batch_size=128)
    pd.testing.assert_frame_equal(mine, theirs, rtol=1e-5, atol=1e-6)
