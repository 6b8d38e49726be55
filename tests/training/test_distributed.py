"""Data-parallel training with 2 local processes (torchrun, gloo, one thread each).

Each test starts ``torch.distributed.run`` on 127.0.0.1 with a free port and a
short worker script, then compares what rank 0 wrote with the same work done in
this process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun.feature_columns as fc
from trainrun.estimators import DNNClassifier, DNNLinearCombinedClassifier, RunConfig
from trainrun.inputs import input_fn
from trainrun.inputs._sharding import _my_parts
from trainrun.model_dir.export import load_exported
from trainrun.training import distributed

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(
    script: Path, *args: str, nproc: int = 2, timeout: float = 90
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT / "src"),
        "TRAINRUN_DIST_TIMEOUT": "60",
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
        f"--nproc-per-node={nproc}", "--rdzv-backend=static", "--master-addr=127.0.0.1",
        f"--master-port={free_port()}", "--max-restarts=0", "--monitor-interval=0.05",
        str(script), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=script.parent
    )


def make_frame(n: int = 203, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) - 0.3 + rng.normal(scale=0.8, size=n)
    return pd.DataFrame({"x": x, "k": k, "w": rng.uniform(0.5, 2.0, n), "y": (score > 0) * 1})


def build(kind: str, model_dir: Path):
    k = fc.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
    x = fc.numeric_column("x")
    cfg = RunConfig(seed=3, progress=False, num_threads=1)
    if kind == "dnn":
        return DNNClassifier(
            hidden_units=[8, 4],
            feature_columns=[x, fc.indicator_column(k)],
            weight_column="w",
            model_dir=model_dir,
            config=cfg,
        )
    return DNNLinearCombinedClassifier(
        linear_feature_columns=[x, k],
        linear_optimizer="ftrl",
        dnn_feature_columns=[x, fc.embedding_column(k, 3)],
        dnn_hidden_units=[6],
        model_dir=model_dir,
        config=cfg,
    )


WORKER = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_distributed import build, make_frame
from trainrun.inputs import input_fn
from trainrun.training import distributed

out, steps = Path(sys.argv[1]), int(sys.argv[2])
df = make_frame()
for kind in ("dnn", "wide_deep"):
    est = build(kind, out / kind)
    est.train(input_fn(df, response="y", batch_size=10, epochs=None, seed=5), steps=steps - 3)
    # resumed: a new estimator on every rank restores rank 0's checkpoint and goes on
    est = build(kind, out / kind)
    history = est.train(
        input_fn(df, response="y", batch_size=10, epochs=None, seed=5), max_steps=steps
    )
    (out / f"losses-{{kind}}-{{distributed.rank()}}.json").write_text(json.dumps(history.losses))
    result = est.evaluate(input_fn(df, response="y", batch_size=16, shuffle=False))
    assert est.global_step_ == steps, est.global_step_
    (out / f"eval-{{kind}}-{{distributed.rank()}}.json").write_text(json.dumps(result))
(out / f"world-{{distributed.rank()}}.json").write_text(json.dumps(distributed.world_size()))
# Parquet row groups dealt to the ranks: shards of different lengths stop together
est = build("dnn", out / "stream")
est.train(input_fn(out / "data", response="y", batch_size=10, epochs=2, chunk_size=16))
result = est.evaluate(input_fn(out / "data", response="y", batch_size=16, shuffle=False))
(out / f"stream-{{distributed.rank()}}.json").write_text(json.dumps(result))
# rank 0 writes the export and the predictions; every rank gets the path once they exist
paths = [est.export(out / "export"), est.predict_to(out / "scores.csv", input_fn(df, shuffle=False))]
assert all(p.exists() for p in paths), paths
# a NaN loss on rank 1 alone stops every rank with NanLossError (the loss is averaged)
import torch
from trainrun.exceptions import NanLossError
est = build("dnn", out / "nan")
est._build()
if distributed.rank() == 1:
    est.head_.reported_loss = lambda *args: torch.tensor(float("nan"))
try:
    est.train(input_fn(df, response="y", batch_size=10, epochs=None), steps=30)
except NanLossError as exc:
    (out / f"nan-{{distributed.rank()}}.txt").write_text(str(exc))
"""


@pytest.fixture
def worker(tmp_path: Path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    return path


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one_on_the_same_global_batches(
    worker: Path, tmp_path: Path
) -> None:
    steps = 7
    out = tmp_path / "dist"
    out.mkdir()
    df = make_frame()
    (out / "data").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 3)):  # 68, 68, 67 rows
        part = df.iloc[rows].reset_index(drop=True)  # 2 row groups each: 6 in all
        part.to_parquet(out / "data" / f"part-{i}.parquet", row_group_size=40)
    proc = torchrun(worker, str(out), str(steps))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((out / "world-0.json").read_text()) == 2
    torch.set_num_threads(1)
    for kind in ("dnn", "wide_deep"):  # the wide part trains with FTRL, the deep one embeds
        alone = build(kind, tmp_path / f"alone-{kind}")
        alone.train(input_fn(df, response="y", batch_size=10, epochs=None, seed=5), steps=4)
        alone = build(kind, tmp_path / f"alone-{kind}")
        history = alone.train(
            input_fn(df, response="y", batch_size=10, epochs=None, seed=5), max_steps=7
        )
        # the loss people see is the global batch's, the same on every rank
        for r in (0, 1):
            got = json.loads((out / f"losses-{kind}-{r}.json").read_text())
            np.testing.assert_allclose(got, history.losses, rtol=1e-5)
        dist = build(kind, out / kind)  # reads rank 0's checkpoint
        names = alone.get_variable_names()
        assert names == dist.get_variable_names()
        moved = 0
        for name in names:
            a, b = alone.get_variable_value(name), dist.get_variable_value(name)
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=f"{kind}: {name}")
            moved += name != "global_step" and not np.allclose(a, 0)
        assert moved > 2
        assert dist.get_variable_value("global_step") == steps
        # only rank 0 wrote checkpoints
        assert sorted(p.name for p in (out / kind).glob("ckpt-*.json")) == [
            "ckpt-4.json",
            f"ckpt-{steps}.json",
        ]
        # evaluation over 2 processes equals evaluation in one of the same weights,
        # exactly, on every rank
        expected = dist.evaluate(input_fn(df, response="y", batch_size=16, shuffle=False))
        for r in (0, 1):
            assert json.loads((out / f"eval-{kind}-{r}.json").read_text()) == expected, kind

    # the export and the predictions, written once by rank 0
    exported = load_exported(out / "export")
    scores = pd.read_csv(out / "scores.csv")
    stream_model = build("dnn", out / "stream")
    expected_scores = stream_model.predict_frame(input_fn(df, shuffle=False))
    np.testing.assert_allclose(scores["logistic"], expected_scores["logistic"], rtol=1e-6)
    np.testing.assert_allclose(
        exported.predict_frame(df)["logistic"], expected_scores["logistic"], rtol=1e-6
    )

    for r in (0, 1):
        assert "The training loss became nan" in (out / f"nan-{r}.txt").read_text()

    # streamed: 6 row groups of 40 or 28 rows dealt 3 and 3; every rank took the
    # same number of steps (the shorter shard's), and evaluation covers every row once
    stream = [json.loads((out / f"stream-{r}.json").read_text()) for r in (0, 1)]
    assert stream[0] == stream[1]
    steps_done = stream[0]["global_step"]
    assert 0 < steps_done <= 2 * -(-101 // 5)
    alone = build("dnn", out / "stream")
    expected = alone.evaluate(input_fn(out / "data", response="y", shuffle=False))
    assert expected["global_step"] == steps_done
    assert stream[0]["auc"] == expected["auc"]  # exact AUC over every rank's examples
    for key in ("accuracy", "average_loss", "label/mean", "prediction/mean"):
        assert stream[0][key] == pytest.approx(expected[key], rel=1e-6), key


KILLED = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_distributed import build, make_frame
from trainrun.estimators import RunConfig
from trainrun.training.callbacks import Callback
from trainrun.inputs import input_fn
from trainrun.training import distributed

class Die(Callback):
    def on_step_end(self, state):
        if distributed.rank() == 1 and state.global_step == 5:
            os._exit(9)

model, resume = Path(sys.argv[1]), sys.argv[2] == "resume"
est = build("dnn", model)
est.set_params(config=RunConfig(seed=3, progress=False, num_threads=1, save_checkpoints_steps=2))
fn = input_fn(make_frame(), response="y", batch_size=10, epochs=None)
if not resume:
    est.train(fn, steps=100000, callbacks=[Die()])
else:
    est.train(fn, max_steps=9)
    seen = {{"end": est.global_step_, "history": est.get_variable_value("global_step")}}
    (model / f"resumed-{{distributed.rank()}}.json").write_text(json.dumps(seen))
"""


@pytest.mark.slow
def test_a_rank_killed_mid_run_fails_the_run_and_every_rank_resumes_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED.format(tests=str(Path(__file__).parent)))
    model = tmp_path / "model"
    proc = torchrun(script, str(model), "kill", timeout=60)
    assert proc.returncode != 0
    assert "exitcode  : 9" in proc.stderr, proc.stderr[-2000:]
    # rank 0 checkpointed every 2 steps; rank 1 died after step 5, so step 6 never ended
    assert sorted(p.name for p in model.glob("ckpt-*.json")) == ["ckpt-2.json", "ckpt-4.json"]
    resumed = torchrun(script, str(model), "resume", timeout=60)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for r in (0, 1):  # both ranks restored step 4 and trained together to 9
        assert json.loads((model / f"resumed-{r}.json").read_text()) == {"end": 9, "history": 9}
    assert (model / "ckpt-9.json").exists()


AT_EXIT = """
import atexit, os, sys
from pathlib import Path
import torch
from trainrun.training import distributed

out = Path(sys.argv[1])
rank = os.environ["RANK"]
# registered before setup, so it runs after setup's own handler (last in, first out)
atexit.register(
    lambda: (out / f"at-exit-{rank}.txt").write_text(str(torch.distributed.is_initialized()))
)
assert distributed.setup()
t = torch.ones(3)
for _ in range(20):  # collectives whose work objects the group still holds at exit
    torch.distributed.all_reduce(t)
print("sum", t.tolist())
"""


@pytest.mark.slow
def test_the_group_setup_made_is_destroyed_before_the_interpreter_finalizes(
    tmp_path: Path,
) -> None:
    # Left to finalization, gloo's worker threads sometimes abort the process (SIGABRT,
    # "terminate called without an active exception") after the script has finished.
    script = tmp_path / "at_exit.py"
    script.write_text(AT_EXIT)
    proc = torchrun(script, str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for r in (0, 1):
        assert (tmp_path / f"at-exit-{r}.txt").read_text() == "False"
    assert "terminate called" not in proc.stderr


def test_each_global_batch_is_split_into_near_equal_contiguous_parts() -> None:
    # 23 rows, batches of 10: [0,10) [10,20) [20,23); 3 rows split 2 ways: 1 and 2
    parts = [_my_parts(23, 10, r, 2) for r in (0, 1)]
    assert parts[0] == [(0, 5, 10), (10, 15, 10), (20, 21, 3)]
    assert parts[1] == [(5, 10, 10), (15, 20, 10), (21, 23, 3)]
    # a final global batch with fewer rows than ranks is skipped on every rank
    assert _my_parts(21, 10, 0, 2)[-1] == (10, 15, 10)
    assert _my_parts(21, 10, 1, 2)[-1] == (15, 20, 10)


def test_a_plain_process_is_not_distributed() -> None:
    assert not distributed.setup()
    assert (distributed.rank(), distributed.world_size(), distributed.is_chief()) == (0, 1, True)
    assert distributed.agree(True, 7) == (True, 7)
    t = torch.arange(6.0).reshape(3, 2)
    assert distributed.all_gather_rows(t)[0] is t


RAY_TRAIN = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import ray
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

def train_loop(config):
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_distributed import build, make_frame
    from trainrun.inputs import input_fn
    from trainrun.training import distributed

    out = Path(config["out"])
    df = make_frame()
    est = build("dnn", out / "model")  # the same script as under torchrun
    est.train(input_fn(df, response="y", batch_size=10, epochs=None, seed=5), steps=7)
    result = est.evaluate(input_fn(df, response="y", batch_size=16, shuffle=False))
    (out / f"ray-{{distributed.rank()}}.json").write_text(json.dumps(result))

out = sys.argv[1]
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
result = TorchTrainer(
    train_loop,
    train_loop_config={{"out": out}},
    scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={{"CPU": 1}}),
    run_config=RunConfig(storage_path=str(Path(out) / "ray"), name="estimator"),
).fit()
assert result.error is None, result.error
"""


@pytest.mark.slow
def test_ray_train_torch_trainer_runs_the_same_estimator_data_parallel(tmp_path: Path) -> None:
    pytest.importorskip("ray.train.torch")
    script = tmp_path / "ray_train.py"
    script.write_text(RAY_TRAIN.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    torch.set_num_threads(1)
    df = make_frame()
    alone = build("dnn", tmp_path / "alone")
    alone.train(input_fn(df, response="y", batch_size=10, epochs=None, seed=5), steps=7)
    ray_model = build("dnn", tmp_path / "model")  # rank 0's checkpoint
    for name in alone.get_variable_names():
        np.testing.assert_allclose(
            ray_model.get_variable_value(name), alone.get_variable_value(name), rtol=1e-5, atol=1e-6
        )
    expected = ray_model.evaluate(input_fn(df, response="y", batch_size=16, shuffle=False))
    for r in (0, 1):
        assert json.loads((tmp_path / f"ray-{r}.json").read_text()) == expected


def test_nccl_is_chosen_for_cuda_and_gloo_for_everything_else() -> None:
    # NCCL itself cannot run here (no GPU): this checks the choice, not an NCCL run
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for("cuda") == distributed.backend_for("cuda:1") == "nccl"
    assert distributed.backend_for("mps") == distributed.backend_for(None) == "gloo"
    auto = RunConfig(device="auto").resolved_device()  # CUDA where a GPU is visible
    assert distributed.backend_for(auto) == ("nccl" if torch.cuda.is_available() else "gloo")
    # outside a process group (and under gloo) collectives' tensors stay on the CPU
    assert distributed._comm_device() == torch.device("cpu")
