"""trainrun.keras.TrainrunCallback on tiny real Keras 3 models (torch backend)."""

import os
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import trainrun  # noqa: E402
from trainrun.keras import TrainrunCallback  # noqa: E402
from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="these tests train on Keras' torch backend"
)


@pytest.fixture(autouse=True)
def _no_run_left_active():
    active.deactivate()
    yield
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def _model(units=8):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _only_run(runs_dir):
    runs = [p for p in runs_dir.iterdir() if (p / record.RUN_FILE).is_file()]
    assert len(runs) == 1, runs
    return runs[0]


# Keras' own save on the torch backend with NumPy 2 (not trainrun's to fix)
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_fit_outside_a_run_records_history_properties_evaluation_and_model(tmp_path):
    x, y = _data()
    model = _model()
    cb = TrainrunCallback(save_model=True, runs_dir=tmp_path / "runs")
    model.fit(x, y, validation_split=0.25, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    result = model.evaluate(x, y, verbose=0, callbacks=[cb], return_dict=True)

    run_dir = _only_run(tmp_path / "runs")
    run = record.read_run(run_dir)
    assert run["status"] == "completed"
    assert run["tags"]["integration"] == "keras"
    history = record.read_metrics(run_dir)
    assert [row["step"] for row in history] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[-1])
    assert history[-1]["loss"] < history[0]["loss"]

    props = run["properties"]
    assert props["epochs"] == 3 and props["epochs_completed"] == 3
    assert props["samples"] == 90 and props["batch_size"] == 16 and props["steps"] == 6
    assert props["optimizer"] == "Adam"
    assert props["learning_rate"] == pytest.approx(0.01)
    assert props["loss_function"] == "binary_crossentropy"
    assert "dense" in props["model"].lower()

    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["accuracy"] == pytest.approx(result["accuracy"])
    assert evaluation["loss"] == pytest.approx(result["loss"])

    saved = keras.saving.load_model(run_dir / "artifacts" / "model.keras")
    np.testing.assert_allclose(
        saved.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0), rtol=1e-5
    )

    # the same columns as an estimator's run
    listed = trainrun.ls_runs(runs_dir=tmp_path / "runs")
    assert {"metric_loss", "metric_val_accuracy", "eval_accuracy", "eval_loss"} <= set(
        listed.columns
    )
    # tfruns' columns for a Keras run, as properties
    row = listed.iloc[0]
    assert row["prop_optimizer"] == "Adam" and row["prop_samples"] == 90
    assert row["prop_epochs_completed"] == 3 and row["prop_batch_size"] == 16


def test_fitting_again_continues_the_run_and_a_new_callback_starts_another(tmp_path):
    x, y = _data()
    model = _model()
    runs_dir = tmp_path / "runs"
    cb = TrainrunCallback(runs_dir=runs_dir)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    first = _only_run(runs_dir)
    model.fit(x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[cb])
    assert _only_run(runs_dir) == first
    assert [r["step"] for r in record.read_metrics(first)] == [1, 2, 3, 4]
    assert record.read_run(first)["status"] == "completed"

    model.fit(x, y, epochs=1, verbose=0, callbacks=[TrainrunCallback(runs_dir=runs_dir)])
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(runs) == 2
    assert [r["step"] for r in record.read_metrics(runs[1])] == [1]
    assert all(record.read_run(p)["status"] == "completed" for p in runs)


def test_inside_a_launched_run_the_callback_records_into_it(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import os
            os.environ["KERAS_BACKEND"] = "torch"
            import numpy as np
            import keras
            import trainrun as tr
            from trainrun.keras import TrainrunCallback

            FLAGS = tr.flags(units=8, epochs=2)
            rng = np.random.default_rng(0)
            x = rng.normal(size=(64, 4)).astype("float32")
            y = (x[:, 0] > 0).astype("float32")
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(FLAGS.units, activation="relu"),
                                      keras.layers.Dense(1, activation="sigmoid")])
            model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
            model.fit(x, y, epochs=FLAGS.epochs, batch_size=8, verbose=0, callbacks=[TrainrunCallback()])
            model.evaluate(x, y, verbose=0, callbacks=[TrainrunCallback()])
            """
        )
    )
    runs_dir = tmp_path / "runs"
    run = trainrun.training_run(
        script,
        flags={"units": 4},
        runs_dir=runs_dir,
        echo=False,
        view=False,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert run["status"] == "completed", run.get("error")
    run_dir = _only_run(runs_dir)  # no in-process run beside the launched one
    assert run["flags"]["units"] == 4
    assert [r["step"] for r in record.read_metrics(run_dir)] == [1, 2]
    assert set(record.read_json(run_dir / record.EVALUATION_FILE)) >= {"loss", "accuracy"}
    assert record.read_run(run_dir)["properties"]["optimizer"] == "SGD"
    assert "tags" not in run or run["tags"].get("integration") is None


def test_importing_without_keras_names_the_extra(tmp_path):
    import subprocess

    code = (
        "import sys; sys.modules['keras'] = None\n"
        "try:\n import trainrun.keras\nexcept ImportError as e: print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("MissingExtraError")
    assert "pip install 'trainrun[keras]'" in out.stdout


def test_evaluate_with_a_new_callback_joins_the_fit_run_and_alone_starts_one(tmp_path):
    x, y = _data()
    model = _model()
    runs_dir = tmp_path / "runs"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[TrainrunCallback(runs_dir=runs_dir)])
    model.evaluate(x, y, verbose=0, callbacks=[TrainrunCallback(runs_dir=runs_dir)])
    run_dir = _only_run(runs_dir)
    assert set(record.read_json(run_dir / record.EVALUATION_FILE)) >= {"loss", "accuracy"}
    assert record.read_run(run_dir)["status"] == "completed"

    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None
    alone = tmp_path / "alone"
    model.evaluate(x, y, verbose=0, callbacks=[TrainrunCallback(runs_dir=alone)])
    run_dir = _only_run(alone)
    assert record.read_run(run_dir)["status"] == "completed"
    assert "accuracy" in record.read_json(run_dir / record.EVALUATION_FILE)
    assert record.read_metrics(run_dir) == []
