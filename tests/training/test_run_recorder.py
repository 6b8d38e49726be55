"""The recorder writes tfruns' listing properties when an estimator trains inside a run."""

from __future__ import annotations

import trainrun as tr
from trainrun.runs import active, record


def test_training_inside_a_run_records_tfruns_properties(tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINRUN_RUN_DIR", raising=False)
    df = tr.load_churn().iloc[:256]
    columns = [tr.numeric_column("tenure"), tr.numeric_column("monthly_charges")]
    est = tr.DNNClassifier(
        hidden_units=[4], feature_columns=columns, label_vocabulary=["No", "Yes"],
        model_dir=str(tmp_path / "model"),
    )  # fmt: skip
    folder = tr.unique_run_dir(tmp_path / "runs")
    with active.activate(folder):
        est.train(
            tr.input_fn(df, features=["tenure", "monthly_charges"], response="churn",
                        epochs=2, batch_size=64)
        )  # fmt: skip
    props = record.read_json(folder / "run.json")["properties"]
    assert props["model"] == "DNNClassifier" and props["epochs"] == 2
    assert props["steps"] == 8 and props["samples"] == 512
    assert props["optimizer"] and isinstance(props["learning_rate"], float)
