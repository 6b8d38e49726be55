"""Training from streamed files resumes where its last checkpoint was, not at the epoch's start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun.feature_columns as fc
from trainrun.estimators import DNNClassifier, RunConfig
from trainrun.inputs import input_fn

ROOT = Path(__file__).resolve().parents[2]
STEPS = 60


def write_data(folder: Path, files: int = 3, rows: int = 70) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        x = rng.normal(size=rows)
        k = rng.choice(["a", "b", "c"], rows)
        y = (2 * x + (k == "a") + rng.normal(scale=0.5, size=rows) > 0).astype(int)
        pd.DataFrame({"x": x, "k": k, "y": y}).to_parquet(
            folder / f"part-{i}.parquet", row_group_size=16
        )
    return folder


def build(model_dir: Path) -> DNNClassifier:
    k = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
    return DNNClassifier(
        hidden_units=[8, 4],
        feature_columns=[fc.numeric_column("x"), fc.indicator_column(k)],
        model_dir=model_dir,
        config=RunConfig(seed=3, progress=False, num_threads=1, save_checkpoints_steps=10),
    )


def stream(data: Path, seed: int | None = 5):
    # windows of 24 rows (3 batches); 210 rows: 27 batches an epoch, so 60 steps span 3 epochs
    return input_fn(data, response="y", batch_size=8, epochs=None, seed=seed, shuffle_buffer=24)


def in_memory(data: Path, seed: int | None = 5):
    # the same rows in one DataFrame: 27 batches an epoch, one permutation per epoch
    frame = pd.concat([pd.read_parquet(p) for p in sorted(data.glob("*.parquet"))])
    return input_fn(frame.reset_index(drop=True), response="y", batch_size=8, epochs=None,
                    seed=seed)  # fmt: skip


INPUTS = {"files": stream, "memory": in_memory}


def weights(est: DNNClassifier) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in est.network_.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


KILLED = """
import os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_resume import INPUTS, build
from trainrun.training.callbacks import Callback

class Die(Callback):
    def on_step_end(self, state):
        if state.global_step == 37:
            os._exit(9)  # killed: no cleanup, no last checkpoint

data, model = Path(sys.argv[1]), Path(sys.argv[2])
seed = None if sys.argv[3] == "none" else int(sys.argv[3])
build(model).train(INPUTS[sys.argv[4]](data, seed), max_steps={steps}, callbacks=[Die()])
"""


def train_killed(
    tmp_path: Path, data: Path, model: Path, seed: int | None, kind: str = "files"
) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED.format(tests=str(Path(__file__).parent), steps=STEPS))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    argv = [sys.executable, str(script), str(data), str(model), str(seed).lower(), kind]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-3000:]
    # checkpoints every 10 steps: the kill at step 37 left step 30 as the latest
    index = json.loads((model / "checkpoint.json").read_text())
    assert index["latest"] == "ckpt-30"


@pytest.mark.parametrize("kind", ["files", "memory"])
@pytest.mark.parametrize("seed", [5, None])
def test_a_killed_run_resumed_sees_the_examples_of_one_uninterrupted_run(tmp_path, seed, kind):
    data = write_data(tmp_path / "data")
    make = INPUTS[kind]
    whole = build(tmp_path / "whole")
    whole.train(make(data, seed=5), max_steps=STEPS)

    train_killed(tmp_path, data, tmp_path / "killed", seed, kind)
    meta = json.loads((tmp_path / "killed" / "ckpt-30.json").read_text())
    assert meta["input_position"]["batches"] == 30
    resumed = build(tmp_path / "killed")  # a new process: restores step 30 and the position
    resumed.train(make(data, seed), max_steps=STEPS)
    assert resumed.global_step_ == STEPS
    if seed is not None:
        assert same(weights(resumed), weights(whole))
    # with no seed at all, the order drawn before the kill was kept in the checkpoint:
    # the resumed run continues that order (it equals one uninterrupted run with it)
    drawn = meta["input_position"]["seed"]
    again = build(tmp_path / f"again-{seed}")
    again.train(make(data, seed=drawn), max_steps=STEPS)
    assert same(weights(resumed), weights(again))


@pytest.mark.parametrize("kind", ["files", "memory"])
def test_restarting_the_epoch_instead_would_train_other_weights(tmp_path, kind):
    # the check above can fail: forgetting the position changes what is trained on
    data = write_data(tmp_path / "data")
    whole = build(tmp_path / "whole")
    whole.train(INPUTS[kind](data), max_steps=STEPS)
    part = build(tmp_path / "part")
    part.train(INPUTS[kind](data), max_steps=30)
    for path in (tmp_path / "part").glob("ckpt-*.json"):
        meta = json.loads(path.read_text())
        meta.pop("input_position")
        path.write_text(json.dumps(meta))
    restarted = build(tmp_path / "part")
    restarted.train(INPUTS[kind](data), max_steps=STEPS)
    assert restarted.global_step_ == STEPS
    assert not same(weights(restarted), weights(whole))


@pytest.mark.parametrize("kind", ["files", "memory"])
def test_train_calls_in_one_process_continue_the_stream(tmp_path, kind):
    data = write_data(tmp_path / "data")
    whole = build(tmp_path / "whole")
    whole.train(INPUTS[kind](data), steps=STEPS)
    parts = build(tmp_path / "parts")
    for _ in range(3):
        parts.train(INPUTS[kind](data), steps=STEPS // 3)
    assert same(weights(parts), weights(whole))


def test_train_calls_over_one_stream_go_on_with_its_read_ahead(tmp_path):
    from trainrun.inputs import _input_fn

    data = write_data(tmp_path / "data")
    whole = build(tmp_path / "whole")
    whole.train(stream(data), steps=STEPS)
    fn = stream(data)
    parts = build(tmp_path / "parts")
    readings = []
    for i in range(3):
        parts.train(fn, steps=STEPS // 3)
        # the stopped reading is parked at the next batch, its read-ahead thread alive
        [(_, at, reading)] = [p for p in _input_fn._PARKED if p[0][0] is fn._file]
        assert at == parts.global_step_
        readings.append(reading)
        # an evaluation between train calls reads other files: it leaves it parked
        parts.evaluate(input_fn(write_data(tmp_path / f"eval{i}", files=1), response="y"))
    assert readings[0] is readings[1] is readings[2]  # one reading went on, not three
    assert same(weights(parts), weights(whole))
    for seed in (6, 7):  # other inputs parked after it: the oldest is closed
        parts.train(stream(data, seed=seed), steps=1)
    assert len(_input_fn._PARKED) == _input_fn._MAX_PARKED
    assert all(reading is not readings[0] for _, _, reading in _input_fn._PARKED)
    assert readings[0].gi_frame is None  # closed: its read-ahead thread told to stop


def test_another_input_or_a_finished_one_starts_from_its_beginning(tmp_path):
    data = write_data(tmp_path / "data")
    est = build(tmp_path / "model")
    once = input_fn(data, response="y", batch_size=8, epochs=1, seed=1)
    first = est.train(once)
    assert first.end_step == 27  # the whole epoch
    second = est.train(input_fn(data, response="y", batch_size=8, epochs=1, seed=1))
    assert second.end_step - second.start_step == 27  # read to its end before: read again
    other = est.train(stream(data, seed=9), steps=5)  # another seed: its own beginning
    assert other.end_step - other.start_step == 5
    meta = json.loads((tmp_path / "model" / f"ckpt-{est.global_step_}.json").read_text())
    assert meta["input_position"]["batches"] == 5 and meta["input_position"]["seed"] == 9


DISTRIBUTED = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_resume import INPUTS, build
from trainrun.training import distributed
from trainrun.training.callbacks import Callback

class Die(Callback):
    def on_step_end(self, state):
        if distributed.rank() == 1 and state.global_step == 33:
            os._exit(9)

data, model, mode, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
est = build(model)
est.train(INPUTS[kind](data, seed=None), max_steps={steps}, callbacks=[Die()] if mode == "kill" else [])
if distributed.rank() == 0:
    state = {{k: v.tolist() for k, v in est.network_.state_dict().items()}}
    (model / "weights.json").write_text(json.dumps(state))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["files", "memory"])
def test_under_torchrun_every_rank_resumes_its_own_shard_where_it_was(tmp_path, kind):
    import socket

    # files: 15 row groups dealt to 2 ranks: shards of different lengths, so each rank's
    # epochs end at different steps and each resumes at its own place in its own shard;
    # in memory: each rank resumes at its half of the same global batch
    data = write_data(tmp_path / "data")
    script = tmp_path / "ranks.py"
    script.write_text(DISTRIBUTED.format(tests=str(Path(__file__).parent), steps=STEPS))

    def torchrun(model: Path, mode: str) -> subprocess.CompletedProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"),
               "TRAINRUN_DIST_TIMEOUT": "60"}  # fmt: skip
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
               "--nproc-per-node=2", "--rdzv-backend=static", "--master-addr=127.0.0.1",
               f"--master-port={port}", "--max-restarts=0", "--monitor-interval=0.05",
               str(script), str(data), str(model), mode, kind]  # fmt: skip
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    whole = torchrun(tmp_path / "whole", "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = torchrun(tmp_path / "killed", "kill")
    assert killed.returncode != 0
    meta = json.loads((tmp_path / "killed" / "ckpt-30.json").read_text())
    assert meta["input_position"]["batches"] == 30  # every rank's 30th batch of its shard
    resumed = torchrun(tmp_path / "killed", "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((tmp_path / "whole" / "weights.json").read_text())
    b = json.loads((tmp_path / "killed" / "weights.json").read_text())
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(np.array(b[key]), np.array(a[key]), rtol=1e-5, atol=1e-6)
