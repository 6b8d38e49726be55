"""Training from a folder of Parquet files: peak memory and throughput against a DataFrame.

The data (generated here, in a temporary folder, never in the repository): 4 float
columns, a 20-level categorical column and a binary label, written as 8 Parquet files
with row groups of 131,072 rows, at 1,000,000 and at 10,000,000 rows. The model: a
DNNClassifier (64, 32) over the 4 numbers and the one-hot category, batch 1,024, one
torch thread.

Each measurement runs in a fresh process, so that its peak resident memory
(``ru_maxrss``) is its own:

- ``streamed``: ``input_fn(folder, epochs=None)``: files read chunk by chunk
  (65,536 rows), shuffled within a buffer;
- ``in memory``: the same rows read into one DataFrame first
  (``pandas.read_parquet``), then ``input_fn(df, epochs=None)``.

Both train 50 steps to warm up (in memory, this encodes the whole frame once), then
3 rounds of ``steps`` steps; throughput is the best round's examples/s (the machine
is shared: a burst of load elsewhere hurts one round, not the figure). The figures
to read: streamed peak memory should not grow with the data, and streamed throughput
should be close to in-memory throughput (target >= 0.9x).

Run: ``.venv/bin/python bench/parquet_training.py`` (about 3 to 5 minutes on 2 cores;
``--quick`` for a smoke run at 100,000 and 300,000 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH = 1024
FILES = 8
ROW_GROUP = 131_072
ROUNDS = 3


def generate(folder: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` rows as FILES Parquet files, one file's worth in memory at a time."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    levels = np.array([f"k{i:02d}" for i in range(20)])
    for i, n in enumerate(np.array_split(np.arange(rows), FILES)):
        size = len(n)
        x = rng.normal(size=(size, 4)).astype(np.float32)
        k = rng.integers(0, 20, size)
        logit = x @ np.array([1.0, -0.5, 0.25, 0.0], dtype=np.float32) + (k % 3) - 1.0
        frame = pd.DataFrame({f"x{j}": x[:, j] for j in range(4)})
        frame["k"] = pd.Categorical.from_codes(k, categories=levels)
        frame["y"] = (rng.random(size) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        frame.to_parquet(folder / f"part-{i:02d}.parquet", row_group_size=ROW_GROUP)


def child(mode: str, folder: str, steps: int) -> dict:
    """One measurement, in this (fresh) process."""
    import torch

    import trainrun as tr

    torch.set_num_threads(1)
    columns = [tr.numeric_column(f"x{j}") for j in range(4)]
    levels = [f"k{i:02d}" for i in range(20)]
    columns.append(tr.indicator_column(tr.categorical_column_with_vocabulary_list("k", levels)))
    est = tr.DNNClassifier(
        hidden_units=[64, 32],
        feature_columns=columns,
        config=tr.RunConfig(seed=0, progress=False, num_threads=1, save_checkpoints_steps=None),
    )
    t0 = time.perf_counter()
    if mode == "streamed":
        fn = tr.input_fn(folder, response="y", batch_size=BATCH, epochs=None)
    else:
        import pandas as pd

        fn = tr.input_fn(pd.read_parquet(folder), response="y", batch_size=BATCH, epochs=None)
    est.train(fn, steps=50)  # warm-up: in memory, this encodes the whole frame
    warm = time.perf_counter() - t0
    best = 0.0
    for _ in range(ROUNDS):  # the best round: a burst of load elsewhere hurts less
        history = est.train(fn, steps=steps)
        best = max(best, history.examples / history.seconds)
    return {
        "examples_per_s": best,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "setup_s": warm,
    }


def measure(mode: str, folder: Path, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRAINRUN_MAX_STEPS": ""}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder), str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k and 300k rows, few steps")
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "FOLDER", "STEPS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return
    sizes = (100_000, 300_000) if args.quick else (1_000_000, 10_000_000)
    steps = 300 if args.quick else 1000
    print(
        f"Training from Parquet files: DNNClassifier (64, 32), batch {BATCH}, {steps} steps, 1 thread"
    )
    print(f"{'rows':>12} {'input':>10} {'examples/s':>12} {'peak RSS MB':>12} {'setup s':>8}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="trainrun-bench-parquet-") as tmp:
        for rows in sizes:
            folder = Path(tmp) / f"rows-{rows}"
            t0 = time.perf_counter()
            generate(folder, rows)
            size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            print(
                f"{rows:>12,} generated in {time.perf_counter() - t0:.1f} s ({size_mb:.0f} MB of Parquet)"
            )
            for mode in ("streamed", "in memory"):
                r = measure(mode.replace(" ", "_"), folder, steps)
                results[(rows, mode)] = r
                print(
                    f"{rows:>12,} {mode:>10} {r['examples_per_s']:>12,.0f} "
                    f"{r['peak_rss_mb']:>12,.0f} {r['setup_s']:>8.1f}"
                )
    small, large = sizes
    for rows in sizes:
        ratio = (
            results[(rows, "streamed")]["examples_per_s"]
            / results[(rows, "in memory")]["examples_per_s"]
        )
        print(f"streamed / in-memory throughput at {rows:,} rows: {ratio:.2f}x (target >= 0.9x)")
    growth = (
        results[(large, "streamed")]["peak_rss_mb"] / results[(small, "streamed")]["peak_rss_mb"]
    )
    grown = (
        results[(large, "in memory")]["peak_rss_mb"] / results[(small, "in memory")]["peak_rss_mb"]
    )
    print(
        f"peak memory from {small:,} to {large:,} rows: streamed x{growth:.2f}, in memory x{grown:.2f}"
    )


if __name__ == "__main__":
    main()
