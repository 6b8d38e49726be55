"""trainrun.lightning.TrainrunLogger on a tiny real LightningModule."""

import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")

import trainrun  # noqa: E402
from trainrun.lightning import TrainrunLogger  # noqa: E402
from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

# Lightning's advice about DataLoader workers and logging intervals on a 16-row data set
pytestmark = [
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    # Lightning 2.6 against torch 2.13's pytree (theirs, not trainrun's)
    pytest.mark.filterwarnings(
        "ignore:.*isinstance.treespec, LeafSpec.* is deprecated:FutureWarning"
    ),
]


@pytest.fixture(autouse=True)
def _no_run_left_active():
    active.deactivate()
    yield
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None


class Tiny(pl.LightningModule):
    def __init__(self, lr=0.05, hidden=8, fail_at_epoch=None):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def training_step(self, batch, _):
        if self.hparams.fail_at_epoch == self.current_epoch:
            raise RuntimeError("boom in training_step")
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, _):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loader(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


def _trainer(logger, epochs=3, **kw):
    return pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        **kw,
    )


def _runs(runs_dir):
    return sorted(p for p in runs_dir.iterdir() if (p / record.RUN_FILE).is_file())


def test_fit_and_test_record_flags_metrics_evaluation_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    runs_dir = tmp_path / "runs"
    model = Tiny(lr=0.05, hidden=8)
    trainer = _trainer(TrainrunLogger(runs_dir=runs_dir), epochs=3)
    trainer.fit(model, _loader(), _loader(seed=1))
    result = trainer.test(model, _loader(seed=2), verbose=False)[0]

    (run_dir,) = _runs(runs_dir)
    run = record.read_run(run_dir)
    assert run["status"] == "completed"
    assert run["flags"]["lr"] == 0.05 and run["flags"]["hidden"] == 8
    history = record.read_metrics(run_dir)
    train = [r for r in history if "train_loss" in r]
    assert len(train) == 3 and train[-1]["train_loss"] < train[0]["train_loss"]
    assert [r["epoch"] for r in train] == [0, 1, 2]
    assert sum("val_loss" in r for r in history) == 3
    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["loss"] == pytest.approx(result["test_loss"])

    checkpoints = list((run_dir / "artifacts" / "checkpoints").glob("*.ckpt"))
    assert [c.name for c in checkpoints] == ["epoch=2-step=12.ckpt"]
    restored = Tiny.load_from_checkpoint(checkpoints[0])
    assert restored.hparams.hidden == 8

    listed = trainrun.ls_runs(runs_dir=runs_dir)
    assert {"flag_lr", "metric_train_loss", "metric_val_loss", "eval_loss"} <= set(listed.columns)


def test_an_exception_in_training_marks_the_run_failed_with_its_traceback(tmp_path):
    runs_dir = tmp_path / "runs"
    trainer = _trainer(TrainrunLogger(runs_dir=runs_dir), epochs=3)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Tiny(fail_at_epoch=1), _loader())
    (run_dir,) = _runs(runs_dir)
    run = record.read_run(run_dir)
    assert run["status"] == "failed"
    assert "boom in training_step" in run["error"]
    assert "training_step" in run["traceback"]


def test_inside_an_active_run_the_logger_starts_nothing(tmp_path):
    runs_dir = tmp_path / "runs"
    outer = record.new_run_dir(runs_dir)
    record.write_json(outer / record.RUN_FILE, {"id": outer.name, "status": "running"})
    with active.activate(outer):
        _trainer(TrainrunLogger(runs_dir=runs_dir), epochs=1).fit(Tiny(), _loader())
    assert _runs(runs_dir) == [outer]
    # its owner ends it, not the logger
    assert record.read_json(outer / record.RUN_FILE)["status"] == "running"
    assert any("train_loss" in r for r in record.read_metrics(outer))
    assert list((outer / "artifacts" / "checkpoints").glob("*.ckpt"))


@pytest.mark.parametrize(("flush_s", "seen_during_training"), [(0.0, True), (1e9, False)])
def test_rows_are_kept_at_most_flush_s_then_appended(
    tmp_path, monkeypatch, flush_s, seen_during_training
):
    import trainrun.lightning

    monkeypatch.setattr(trainrun.lightning, "FLUSH_S", flush_s)
    runs_dir = tmp_path / "runs"
    seen = []

    class Peek(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            (run_dir,) = _runs(runs_dir)
            seen.append(len(record.read_metrics(run_dir)))

    logger = TrainrunLogger(runs_dir=runs_dir)
    _trainer(logger, epochs=2, callbacks=[Peek()]).fit(Tiny(), _loader())
    assert (seen[-1] > 0) is seen_during_training, seen
    (run_dir,) = _runs(runs_dir)
    rows = record.read_metrics(run_dir)
    assert sum("train_loss" in r for r in rows) == 2  # everything is on disk after fit
