"""Benchmark of the integrations: what recording costs per epoch, and what a user types.

Prints figures, asserts nothing (machines are shared and noisy). Usage::

    .venv/bin/python bench/integrations.py            # about a minute
    .venv/bin/python bench/integrations.py --quick    # fewer epochs

What it measures, for a small model on this machine, inside a run (a
temporary run folder, so every write really goes to disk):

1. Keras 3 (torch backend), an MLP 16-64-64-1 on 4,096 rows, batch 32 (128
   steps an epoch), validation on 1,024: the time spent inside
   ``TrainrunCallback``'s hooks per epoch (timed around each call), against the
   epoch's time; and the epoch time with and without the callback (interleaved
   runs, median; noisier than the hook timing, shown for honesty).
2. Lightning: the same model and data as a LightningModule, logging every step
   (``log_every_n_steps=1``, the worst case) and at Lightning's default (every 50),
   plus per-epoch validation: the time inside ``TrainrunLogger``'s methods per epoch
   against the epoch, and one ``log_metrics`` call timed alone.
3. scikit-learn: ``log_model`` of a fitted LogisticRegression with test scores,
   and of a 24-candidate GridSearchCV (one run per candidate), against the fit.
4. Lines a user adds to record each kind of training (flags, history and
   evaluation): counted with difflib between a plain script and the recorded one.

All times are CPU time of this process (``time.process_time``; torch runs on one
thread, ``OMP_NUM_THREADS=1``): on a shared machine, wall-clock slices of a few
microseconds mostly measure waiting for a core.

Target (issue 14): under 1% of a small model's epoch.
"""

from __future__ import annotations

import argparse
import difflib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

# CPU time, not wall time: on this shared 2-core machine a wall-clock slice of a few
# microseconds often includes time the process waited for a core, which inflates exactly
# the short calls measured here (a hook call, a log_metrics call) many times over
_clock = time.process_time


def _timed(obj: Any, names: tuple[str, ...], totals: dict[str, float]) -> None:
    """Wrap ``obj``'s methods so that each call's time is added to ``totals[name]``."""
    for name in names:
        original: Callable[..., Any] = getattr(obj, name)
        totals.setdefault(name, 0.0)
        totals.setdefault("calls", 0)

        def wrapper(
            *args: Any, _f: Callable[..., Any] = original, _n: str = name, **kw: Any
        ) -> Any:
            t0 = _clock()
            try:
                return _f(*args, **kw)
            finally:
                totals[_n] += _clock() - t0
                totals["calls"] += 1

        setattr(obj, name, wrapper)


def _new_run(root: Path) -> Path:
    folder = record.new_run_dir(root)
    record.write_json(folder / record.RUN_FILE, {"id": folder.name, "status": "running"})
    active.activate(folder)
    return folder


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("float32")
    return x, y


# ---------------------------------------------------------------- Keras


def bench_keras(root: Path, epochs: int, reps: int) -> None:
    import keras

    from trainrun.keras import TrainrunCallback

    x, y = _data(4096, 0)
    xv, yv = _data(1024, 1)

    def model() -> Any:
        keras.utils.set_random_seed(0)
        m = keras.Sequential(
            [
                keras.Input((16,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        return m

    def fit(callbacks: list[Any]) -> float:
        m = model()
        m.fit(x[:64], y[:64], epochs=1, verbose=0)  # compile and warm up outside the timing
        t0 = _clock()
        m.fit(
            x,
            y,
            validation_data=(xv, yv),
            batch_size=32,
            epochs=epochs,
            verbose=0,
            callbacks=callbacks,
        )
        return (_clock() - t0) / epochs

    _new_run(root)
    hooks = (
        "on_train_begin",
        "on_train_batch_end",
        "on_epoch_end",
        "on_train_end",
        "on_test_begin",
        "on_test_end",
    )
    per_fit = ("on_train_begin", "on_train_end")
    with_cb, without, last = [], [], {}
    for _ in range(reps):
        without.append(fit([]))
        totals: dict[str, float] = {}
        cb = TrainrunCallback()
        _timed(cb, hooks, totals)
        with_cb.append(fit([cb]))
        last = totals
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None
    epoch = statistics.median(without)
    steady = sum(v for k, v in last.items() if k in hooks and k not in per_fit) / epochs
    once = sum(v for k, v in last.items() if k in per_fit)
    print("Keras 3 (torch backend), MLP 16-64-64-1, 4,096 rows, batch 32, validation 1,024")
    print(f"  epoch without the callback:       {epoch * 1e3:8.1f} ms (median of {reps})")
    print(
        f"  epoch with the callback:          {statistics.median(with_cb) * 1e3:8.1f} ms (noise dominates)"
    )
    print(
        f"  inside the callback, per epoch:   {steady * 1e3:8.3f} ms = {steady / epoch:.3%} of the epoch "
        f"(128 batch hooks, the epoch row, validation hooks)"
    )
    print(
        f"  inside the callback, once a fit:  {once * 1e3:8.1f} ms (properties and model summary at "
        f"begin, epochs_completed at end) = {once / (epoch * epochs):.2%} of this {epochs}-epoch fit"
    )
    print("  " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in last.items() if k != "calls"))


# ---------------------------------------------------------------- Lightning


def bench_lightning(root: Path, epochs: int) -> None:
    import warnings

    import lightning.pytorch as pl
    import torch

    from trainrun.lightning import TrainrunLogger

    warnings.filterwarnings("ignore")
    x, y = _data(4096, 0)
    xv, yv = _data(1024, 1)
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=32
    )
    val = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(xv), torch.from_numpy(yv)), batch_size=256
    )

    class MLP(pl.LightningModule):
        def __init__(self, lr: float = 1e-3) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(16, 64),
                torch.nn.ReLU(),
                torch.nn.Linear(64, 64),
                torch.nn.ReLU(),
                torch.nn.Linear(64, 1),
            )

        def training_step(self, batch: Any, _: int) -> Any:
            xb, yb = batch
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                self.net(xb).squeeze(-1), yb
            )
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, _: int) -> None:
            xb, yb = batch
            self.log(
                "val_loss",
                torch.nn.functional.binary_cross_entropy_with_logits(self.net(xb).squeeze(-1), yb),
            )

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def fit(log_every: int) -> tuple[float, dict[str, float]]:
        _new_run(root)
        logger = TrainrunLogger()
        totals: dict[str, float] = {}
        _timed(logger, ("log_metrics", "log_hyperparams", "finalize"), totals)
        torch.manual_seed(0)
        trainer = pl.Trainer(
            max_epochs=epochs,
            logger=logger,
            accelerator="cpu",
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            log_every_n_steps=log_every,
        )
        t0 = _clock()
        trainer.fit(MLP(), train, val)
        inside = sum(v for k, v in totals.items() if k != "calls")
        active.deactivate()
        _inprocess._end_open_runs()
        _inprocess._owned = None
        return (_clock() - t0 - inside) / epochs, totals

    print("Lightning, the same MLP and data (128 steps an epoch), validating each epoch")
    for log_every, what in (
        (1, "every step (the worst case)"),
        (50, "every 50 steps (the default)"),
    ):
        epoch, totals = fit(log_every)
        steady = totals["log_metrics"] / epochs
        once = totals["log_hyperparams"] + totals["finalize"]
        calls = int(totals["calls"]) - 2
        print(f"  logging {what}: epoch (less the logger's time) {epoch * 1e3:.1f} ms")
        print(
            f"    inside log_metrics, per epoch:  {steady * 1e3:8.3f} ms = {steady / epoch:.3%} of the "
            f"epoch ({calls / epochs:.0f} calls, {totals['log_metrics'] / max(calls, 1) * 1e6:.0f} us "
            "each; rows appended once a second)"
        )
        print(
            f"    once a fit:                     {once * 1e3:8.1f} ms (hyperparameters as flags, the "
            f"final append) = {once / (epoch * epochs):.2%} of this {epochs}-epoch fit"
        )
    # the same call alone, 5,000 times: the in-loop figure above also holds whatever else the
    # shared machine ran meanwhile
    alone = TrainrunLogger()
    _new_run(root)
    row = {"train_loss": 0.5, "epoch": 1}
    t0 = _clock()
    for i in range(5000):
        alone.log_metrics(row, step=i)
    per_call = (_clock() - t0) / 5000
    alone.finalize("success")
    active.deactivate()
    print(
        f"  log_metrics alone: {per_call * 1e6:.1f} us a call, {per_call * 129 * 1e3:.2f} ms for an "
        f"epoch's 129 calls = {per_call * 129 / epoch:.3%} of the epoch"
    )


# ---------------------------------------------------------------- scikit-learn


def bench_sklearn(root: Path) -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    import trainrun.sklearn

    X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
    t0 = _clock()
    model = LogisticRegression(max_iter=500).fit(X[:4000], y[:4000])
    fit_s = _clock() - t0
    t0 = _clock()
    trainrun.sklearn.log_model(model, X[4000:], y[4000:], runs_dir=root)
    log_s = _clock() - t0
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False], "tol": [1e-4, 1e-3, 1e-2]}
    t0 = _clock()
    search = GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X[:4000], y[:4000])
    search_s = _clock() - t0
    t0 = _clock()
    trainrun.sklearn.log_model(search, X[4000:], y[4000:], runs_dir=root)
    log_search_s = _clock() - t0
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None
    print("scikit-learn, LogisticRegression on 4,000 x 20, scored on 1,000")
    print(f"  fit {fit_s * 1e3:.1f} ms; log_model (new run, flags, 11 scores) {log_s * 1e3:.1f} ms")
    print(
        f"  GridSearchCV, 24 candidates x 3 folds: fit {search_s:.2f} s; log_model with 24 candidate runs "
        f"{log_search_s * 1e3:.0f} ms ({log_search_s / search_s:.1%} of the search, "
        f"{log_search_s / 25 * 1e3:.1f} ms a run)"
    )


# ---------------------------------------------------------------- lines a user adds

PLAIN_KERAS = """\
import keras
model = build_model()
model.fit(x, y, validation_split=0.2, epochs=10)
model.evaluate(x_test, y_test)
"""
RECORDED_KERAS = """\
import keras
from trainrun.keras import TrainrunCallback
model = build_model()
model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[TrainrunCallback()])
model.evaluate(x_test, y_test, callbacks=[TrainrunCallback()])
"""
PLAIN_LIGHTNING = """\
import lightning.pytorch as pl
trainer = pl.Trainer(max_epochs=10)
trainer.fit(model, train_loader, val_loader)
trainer.test(model, test_loader)
"""
RECORDED_LIGHTNING = """\
import lightning.pytorch as pl
from trainrun.lightning import TrainrunLogger
trainer = pl.Trainer(max_epochs=10, logger=TrainrunLogger())
trainer.fit(model, train_loader, val_loader)
trainer.test(model, test_loader)
"""
PLAIN_SKLEARN = """\
from sklearn.linear_model import LogisticRegression
model = LogisticRegression(C=0.5).fit(X_train, y_train)
print(model.score(X_test, y_test))
"""
RECORDED_SKLEARN = """\
from sklearn.linear_model import LogisticRegression
import trainrun.sklearn
model = LogisticRegression(C=0.5).fit(X_train, y_train)
trainrun.sklearn.log_model(model, X_test, y_test)
"""


def lines_added() -> None:
    print("Lines a user adds or changes to record flags, history and evaluation")
    for name, plain, recorded in (
        ("Keras", PLAIN_KERAS, RECORDED_KERAS),
        ("Lightning", PLAIN_LIGHTNING, RECORDED_LIGHTNING),
        ("scikit-learn", PLAIN_SKLEARN, RECORDED_SKLEARN),
    ):
        diff = [
            line
            for line in difflib.unified_diff(
                plain.splitlines(), recorded.splitlines(), lineterm="", n=0
            )
            if line.startswith("+") and not line.startswith("+++")
        ]
        print(f"  {name:13s} {len(diff)} lines: " + " | ".join(d[1:].strip() for d in diff))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repetitions")
    args = parser.parse_args()
    epochs, reps = (2, 1) if args.quick else (4, 3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines_added()
        for name, bench in (
            ("keras", lambda: bench_keras(root / "keras", epochs, reps)),
            ("lightning", lambda: bench_lightning(root / "lightning", epochs)),
            ("sklearn", lambda: bench_sklearn(root / "sklearn")),
        ):
            try:
                bench()
            except ImportError as exc:  # an integration's library not installed: say so, go on
                print(f"{name}: skipped ({exc})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
