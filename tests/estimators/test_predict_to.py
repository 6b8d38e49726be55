"""predict_to(path, input_fn): predictions streamed to Parquet / CSV, in order, with id columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import trainrun.feature_columns as fc
from trainrun.estimators import LinearClassifier, RunConfig, _predict_to
from trainrun.exceptions import InputError
from trainrun.inputs import input_fn
from trainrun.model_dir.export import load_exported

from .conftest import make_frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> LinearClassifier:
    est = LinearClassifier(
        feature_columns=[
            fc.numeric_column("x"),
            fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"]),
        ],
        label_vocabulary=["No", "Yes"],
        model_dir=tmp_path_factory.mktemp("model"),
        config=RunConfig(seed=0, progress=False),
    )
    est.train(input_fn(make_frame(), response="churn", batch_size=32), steps=20)
    return est


def with_ids(n: int) -> pd.DataFrame:
    df = make_frame(n, seed=1)
    df["customer"] = [f"{i:05d}" for i in range(n)]  # leading zeros: ids stay text
    df["row"] = np.arange(n)
    return df


def test_predictions_land_in_parquet_in_input_order_after_the_id_columns(trained, tmp_path):
    df = with_ids(300)
    fn = input_fn(df, response="churn", batch_size=64, shuffle=False)
    path = trained.predict_to(
        tmp_path / "out" / "scores.parquet", fn, id_columns=["customer", "row"]
    )
    got = pq.read_table(path).to_pandas()
    expected = trained.predict_frame(input_fn(df, batch_size=64, shuffle=False))
    assert list(got.columns[:2]) == ["customer", "row"]
    assert got["customer"].tolist() == df["customer"].tolist()
    assert got["row"].tolist() == list(range(300))
    np.testing.assert_array_equal(got["logistic"], expected["logistic"])
    np.testing.assert_array_equal(got["probabilities_1"], expected["probabilities_1"])
    assert set(got["classes"]) <= {"No", "Yes"}  # text, not bytes
    assert not list(path.parent.glob(".*tmp"))


def test_streamed_parquet_files_predict_to_csv_with_ids_across_chunk_and_write_boundaries(
    trained, tmp_path, monkeypatch
):
    df = with_ids(1000)
    folder = tmp_path / "data"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(1000), 3)):
        table = pa.Table.from_pandas(df.iloc[part].reset_index(drop=True), preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=97)
    monkeypatch.setattr(_predict_to, "ROWS_PER_WRITE", 150)  # several appends
    fn = input_fn(folder, batch_size=64, shuffle=False, chunk_size=70)
    path = trained.predict_to(
        tmp_path / "scores.csv", fn, predict_keys=["logistic"], id_columns="customer"
    )
    got = pd.read_csv(path, dtype={"customer": str})
    assert list(got.columns) == ["customer", "logistic"]
    assert got["customer"].tolist() == df["customer"].tolist()
    expected = trained.predict_frame(input_fn(df, batch_size=64, shuffle=False), ["logistic"])
    np.testing.assert_allclose(got["logistic"], expected["logistic"], rtol=1e-6)


def test_a_loaded_export_predicts_to_a_file_too(trained, tmp_path):
    df = with_ids(120)
    exported = load_exported(trained.export(tmp_path / "export"))
    fn = input_fn(df, response="churn", shuffle=False, batch_size=50)
    path = exported.predict_to(tmp_path / "export.parquet", fn, id_columns=["row"])
    mine = trained.predict_to(tmp_path / "mine.parquet", fn, id_columns=["row"])
    pd.testing.assert_frame_equal(pq.read_table(path).to_pandas(), pq.read_table(mine).to_pandas())


def test_mistakes_are_refused_before_any_file_is_written(trained, tmp_path):
    df = with_ids(50)
    out = tmp_path / "scores.parquet"
    with pytest.raises(InputError, match="shuffle=False"):
        trained.predict_to(out, input_fn(df, shuffle=True))
    with pytest.raises(InputError, match="epochs=1"):
        trained.predict_to(out, input_fn(df, shuffle=False, epochs=2))
    with pytest.raises(InputError, match="Did you mean 'customer'"):
        trained.predict_to(out, input_fn(df, shuffle=False), id_columns=["custmer"])
    with pytest.raises(InputError, match="format"):
        trained.predict_to(tmp_path / "scores.txt", input_fn(df, shuffle=False))
    with pytest.raises(InputError, match="name of a prediction column"):
        clash = df.rename(columns={"row": "logits"})
        trained.predict_to(out, input_fn(clash, shuffle=False), id_columns=["logits"])
    assert list(tmp_path.iterdir()) == []  # nothing, not even a partial file
