"""trainrun.transformers.TrainrunCallback on a tiny BERT built from a config (no download).

transformers is not in the dev extra (it is large and off the default test path):
these tests skip when it is not installed.
"""

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")  # the Trainer's requirement on torch

import trainrun  # noqa: E402
from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402
from trainrun.transformers import TrainrunCallback  # noqa: E402


@pytest.fixture(autouse=True)
def _no_run_left_active():
    active.deactivate()
    yield
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 50, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] > 25).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _accuracy(pred):
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def test_train_and_evaluate_record_flags_history_evaluation_and_weights(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=2,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    runs_dir = tmp_path / "runs"
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(16, 1),
        compute_metrics=_accuracy,
        callbacks=[TrainrunCallback(save_model=True, runs_dir=runs_dir)],
    )
    trainer.train()
    final = trainer.evaluate()

    (run_dir,) = [p for p in runs_dir.iterdir() if (p / record.RUN_FILE).is_file()]
    run = record.read_run(run_dir)
    assert run["status"] == "completed"
    assert run["flags"]["learning_rate"] == 1e-3 and run["flags"]["num_train_epochs"] == 2
    assert run["flags"]["logging_steps"] == 2 and "output_dir" not in run["flags"]
    assert run["properties"]["model"] == "BertForSequenceClassification"
    assert run["properties"]["steps"] == 8 and run["properties"]["epochs_completed"] == 2
    history = record.read_metrics(run_dir)
    assert [r["step"] for r in history if "loss" in r] == [2, 4, 6, 8]
    assert sum("eval_loss" in r for r in history) >= 2
    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["accuracy"] == pytest.approx(final["eval_accuracy"])
    assert evaluation["loss"] == pytest.approx(final["eval_loss"])
    assert (run_dir / "artifacts" / "model.safetensors").stat().st_size > 1000
    listed = trainrun.ls_runs(runs_dir=runs_dir)
    assert {"flag_learning_rate", "metric_loss", "eval_accuracy"} <= set(listed.columns)
