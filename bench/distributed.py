"""Data-parallel training throughput: 1 process against 2 (torchrun, gloo, 1 thread each).

The data: 200,000 generated rows (10 numbers, a 50-level category, a 1,000-bucket
hashed id, a binary label), in memory. The models:

- ``dnn``: DNNClassifier (256, 128, 64, 32) over the numbers and the one-hot category
  (the chapter's churn network, on more inputs);
- ``wide_deep``: DNNLinearCombinedClassifier, linear part (FTRL) over the category,
  the hashed id and their cross, deep part (64, 32) over the numbers and 8-wide
  embeddings of the category and the id.

Each runs under ``torch.distributed.run`` with 1 and with 2 processes at the same
*global* batch (1,024: 512 per rank with 2), trains 30 warm-up steps, then
``--steps`` steps (best of 2 rounds), and the 1- and 2-process launches alternate twice
(the best of each kept); the throughput is global examples per second. Also printed:
the CPU time of all ranks per example, which does not depend on the machine's load, and
from it the speed-up 2 processes would reach if CPU time were the only limit (2 x CPU per
example in one process / CPU per example in two; gloo's waits that spin count as CPU).

The communication share: on rank 0, the same optimisation step is timed on one fixed
batch with DDP's gradient all-reduce (a normal step) and without it
(``DistributedDataParallel.no_sync()``); the share is the difference over the normal
step's time. On a 2-core machine the 2 ranks also compete with each other (and with
anything else running) for the cores, which the ratio shows as well.

Run: ``.venv/bin/python bench/distributed.py`` (about 1 to 3 minutes on 2 cores;
``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = 200_000
ROUNDS = 2
BATCH = 1024
MODELS = ("dnn", "wide_deep")


def frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 10)).astype(np.float32)
    cat = rng.integers(0, 50, rows)
    uid = rng.integers(0, 100_000, rows)
    logit = x[:, :3].sum(axis=1) + (cat % 5) * 0.3 - 0.6
    df = pd.DataFrame({f"x{j}": x[:, j] for j in range(10)})
    df["cat"] = np.array([f"c{i}" for i in range(50)])[cat]
    df["uid"] = uid
    df["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return df


def build(model: str, model_dir: str):
    import trainrun as tr

    numbers = [tr.numeric_column(f"x{j}") for j in range(10)]
    cat = tr.categorical_column_with_vocabulary_list("cat", [f"c{i}" for i in range(50)])
    uid = tr.categorical_column_with_hash_bucket("uid", 1000, dtype="int64")
    config = tr.RunConfig(seed=0, progress=False, num_threads=1, save_checkpoints_steps=None)
    if model == "dnn":
        return tr.DNNClassifier(
            hidden_units=[256, 128, 64, 32],
            feature_columns=[*numbers, tr.indicator_column(cat)],
            model_dir=model_dir,
            config=config,
        )
    return tr.DNNLinearCombinedClassifier(
        linear_feature_columns=[cat, uid, tr.crossed_column([cat, uid], 10_000)],
        linear_optimizer="ftrl",
        dnn_feature_columns=[*numbers, tr.embedding_column(cat, 8), tr.embedding_column(uid, 8)],
        dnn_hidden_units=[64, 32],
        model_dir=model_dir,
        config=config,
    )


def step_seconds(est, batch, steps: int, sync: bool) -> float:
    """Seconds per optimisation step on one fixed batch, with or without the all-reduce."""
    import contextlib

    module = est._ddp_wrapper
    head, opts = est.head_, est.optimizers_
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(steps):
            with contextlib.nullcontext() if sync else module.no_sync():
                loss = head.loss(module(batch.features), batch.labels, batch.weights)
                for opt in opts:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
            for opt in opts:
                opt.step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def worker(model: str, steps: int, out: str) -> None:
    import torch

    import trainrun as tr
    from trainrun.training import distributed

    torch.set_num_threads(1)
    df = frame(ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        est = build(model, str(Path(tmp) / model))
        fn = tr.input_fn(df, response="y", batch_size=BATCH, epochs=None, seed=1)
        est.train(fn, steps=30)
        world = distributed.world_size()
        best, cpu = 0.0, float("inf")
        for _ in range(2):
            c0 = time.process_time()
            history = est.train(fn, steps=steps)
            used = torch.tensor([time.process_time() - c0])
            if world > 1:
                torch.distributed.all_reduce(used)
            best = max(best, history.examples * world / history.seconds)
            # CPU seconds of all ranks per example: unlike examples/s, not a matter of load
            cpu = min(cpu, 1e6 * float(used) / (history.examples * world))
        result = {"examples_per_s": best, "cpu_us": cpu, "world": world}
        if world > 1:
            batch = next(iter(est.shard_))
            synced = step_seconds(est, batch, 50, sync=True)
            alone = step_seconds(est, batch, 50, sync=False)
            result.update(step_ms=synced * 1e3, compute_ms=alone * 1e3)
        if distributed.is_chief():
            Path(out).write_text(json.dumps(result))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(model: str, nproc: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            f"--nproc-per-node={nproc}", "--rdzv-backend=static", "--master-addr=127.0.0.1",
            f"--master-port={free_port()}", "--max-restarts=0", "--monitor-interval=0.1",
            __file__, "--worker", model, str(steps), str(out),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TRAINRUN_MAX_STEPS": ""}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{model} x{nproc} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps")
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODEL", "STEPS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    steps = 40 if args.quick else 300
    print(f"Data-parallel training, global batch {BATCH}, {steps} steps, 1 thread per process")
    print(f"{'model':>10} {'1 process':>12} {'2 processes':>12} {'ratio':>6} {'comm share':>11}")
    for model in MODELS:
        one: dict = {}
        two: dict = {}
        for _ in range(ROUNDS):  # alternating launches, the best of each: load hurts both alike
            for best, nproc in ((one, 1), (two, 2)):
                got = launch(model, nproc, steps)
                if got["examples_per_s"] > best.get("examples_per_s", 0):
                    best.update(got)
        ratio = two["examples_per_s"] / one["examples_per_s"]
        share = (two["step_ms"] - two["compute_ms"]) / two["step_ms"]
        print(
            f"{model:>10} {one['examples_per_s']:>12,.0f} {two['examples_per_s']:>12,.0f} "
            f"{ratio:>5.2f}x {100 * share:>10.0f}%"
        )
        print(
            f"{'':>10} (2 processes: {two['step_ms']:.2f} ms per step, "
            f"{two['compute_ms']:.2f} ms of it without the all-reduce; CPU per example: "
            f"{one['cpu_us']:.2f} us in 1 process, {two['cpu_us']:.2f} us in 2, so "
            f"{2 * one['cpu_us'] / two['cpu_us']:.2f}x if CPU were the only limit)"
        )


if __name__ == "__main__":
    main()
