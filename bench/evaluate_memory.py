"""Peak memory of ``evaluate`` over a Parquet file streamed from disk, per example.

A small LinearClassifier (or DNNClassifier) is trained on 2,000 rows in memory, then
evaluated with ``input_fn(path, shuffle=False)`` over a Parquet file of N rows (four
numeric columns, one categorical, a 0/1 label and optionally a weight column), written
to a temporary folder. Each evaluation runs in a fresh child process: it resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``), reads its resident memory just
before ``evaluate`` (the baseline: torch, the model, and what a first small evaluation
imported) and the peak just after (``VmHWM``), and prints the difference per example.
A second child reads the same batches without evaluating them: the reader's own
memory (tens of MB, levelling off as N grows), subtracted to show what the
evaluation itself keeps.

The exact AUCs need every example's score, label and weight; everything else is a
running sum. Before the streaming accumulator, evaluate kept every batch's outputs
as tensors and computed the metrics over float64 copies of the whole set: the figures
measured then are printed beside the new ones (same machine, same script).

Run: ``.venv/bin/python bench/evaluate_memory.py`` (5M and 20M rows, about a minute
and a half on 2 cores; it prints the issue's targets, met or not, projecting 50M rows
from the two sizes); ``--rows 5000000 20000000 50000000`` measures the target size;
``--quick`` for a smoke run. The children import trainrun from ``PYTHONPATH`` when
set: ``PYTHONPATH=/path/to/other/src`` measures another tree (that is how the
"before" column was measured, on an export of the commit named below).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Bytes per example measured with this script before the streaming accumulator
#: (commit 7518f37's evaluate: lists of batch tensors, metrics over the whole set),
#: LinearClassifier, batch 1024, unweighted / weighted; the reader's own part (the
#: 'input alone' column) is the same before and after.
BEFORE = {
    (1_000_000, False): 200.4,
    (1_000_000, True): 222.1,
    (5_000_000, False): 178.4,
    (5_000_000, True): 198.1,
}


#: The issue's targets: evaluation of 50,000,000 rows in <= 32 bytes per example; the
#: Parquet reader's memory flat in the rows read (a growth under 1 byte per row is noise:
#: the peak moves by a few MB between runs).
TARGET_ROWS = 50_000_000
TARGET_BYTES = 32
FLAT_BYTES = 1


def _status(key: str) -> int:
    """A ``/proc/self/status`` memory figure in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key} line")


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    writer = None
    try:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, 4)).astype(np.float32)
            color = rng.choice(np.array(["red", "green", "blue"]), size=n)
            logit = x @ np.array([1.0, -0.5, 0.25, 0.0], dtype=np.float32) + (color == "red")
            y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
            table = pa.table(
                {
                    **{f"x{i}": x[:, i] for i in range(4)},
                    "color": color,
                    "w": rng.uniform(0.5, 2.0, size=n).astype(np.float32),
                    "y": y,
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=chunk)
    finally:
        if writer is not None:
            writer.close()


def child(path: str, model: str, weighted: bool, batch_size: int, mode: str = "evaluate") -> None:
    import logging

    import pyarrow.parquet as pq
    import torch

    import trainrun as tr

    torch.set_num_threads(1)
    logging.getLogger("trainrun").setLevel(logging.ERROR)
    small = next(pq.ParquetFile(path).iter_batches(batch_size=2_000)).to_pandas()
    columns = [tr.numeric_column(f"x{i}") for i in range(4)]
    columns.append(
        tr.indicator_column(tr.categorical_column_with_vocabulary_list("color", ["red", "green"]))
    )
    features = [f"x{i}" for i in range(4)] + ["color"]
    cls = tr.LinearClassifier if model == "linear" else tr.DNNClassifier
    kwargs = {} if model == "linear" else {"hidden_units": [16, 8]}
    with tempfile.TemporaryDirectory() as folder:
        est = cls(
            feature_columns=columns,
            weight_column="w" if weighted else None,
            model_dir=folder,
            config=tr.RunConfig(seed=0, progress=False),
            **kwargs,
        )
        est.train(tr.input_fn(small, features, response="y", epochs=None, seed=0), steps=50)
        # one small evaluation first, so the baseline holds what any evaluate() imports
        # once (the run recorder, TensorBoard's writer) and only per-example costs remain
        est.evaluate(tr.input_fn(small, features, response="y", shuffle=False))
        fn = tr.input_fn(path, features, response="y", batch_size=batch_size, shuffle=False)
        transform = tr.FeatureTransform(columns)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        base = _status("VmRSS")
        t0 = time.perf_counter()
        if mode == "input":  # the same batches read and dropped: the reader's own cost
            for _ in fn.batches(transform, weight_key="w" if weighted else None):
                pass
        else:
            est.evaluate(fn)
        seconds = time.perf_counter() - t0
        peak = _status("VmHWM")
    print(json.dumps({"base": base, "peak": peak, "seconds": seconds}))


def measure(path: Path, model: str, weighted: bool, batch_size: int, mode: str) -> dict:
    argv = [sys.executable, __file__, "--child", str(path), model, str(int(weighted))]
    argv += [str(batch_size), mode]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the child evaluation failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    parser.add_argument("--model", choices=["linear", "dnn"], default="linear")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (50,000 rows)")
    args = parser.parse_args(argv)
    rows = [50_000] if args.quick else args.rows
    print(f"evaluate() over Parquet, {args.model} classifier, batch {args.batch_size}, "
          "1 thread: peak RSS above the baseline just before the call, per example. "
          "'input alone' reads the same batches and drops them (the Parquet reader's own "
          "memory, which levels off at some tens of MB); 'evaluation' is evaluate minus "
          "that: what the metrics keep")  # fmt: skip
    print()
    print("| rows | weights | evaluate MB | evaluate B/example | input alone B/example "
          "| evaluation B/example | before: evaluate B/example | s |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    peaks: dict[tuple[int, bool], tuple[int, int]] = {}  # (rows, weighted): evaluate, reader
    with tempfile.TemporaryDirectory() as folder:
        for n in sorted(rows):
            path = Path(folder) / f"rows-{n}.parquet"
            write_parquet(path, n)
            for weighted in (False, True):
                m = measure(path, args.model, weighted, args.batch_size, "evaluate")
                alone = measure(path, args.model, weighted, args.batch_size, "input")
                grown = m["peak"] - m["base"]
                reader = alone["peak"] - alone["base"]
                peaks[(n, weighted)] = (grown, reader)
                before = BEFORE.get((n, weighted))
                same = args.model == "linear" and args.batch_size == 1024
                shown = "-" if before is None or not same else f"{before:.0f}"
                print(f"| {n:,} | {'yes' if weighted else 'no'} | {grown / 1e6:,.1f} | "
                      f"{grown / n:.1f} | {reader / n:.1f} | {(grown - reader) / n:.1f} | "
                      f"{shown} | {m['seconds']:.1f} |")  # fmt: skip
            path.unlink()
    verdicts(peaks)


def verdicts(peaks: dict[tuple[int, bool], tuple[int, int]]) -> None:
    """The issue's targets, met or not: <= 32 bytes/example at 50M rows, a reader flat in N."""
    sizes = sorted({n for n, _ in peaks})
    print()
    for weighted in (False, True):
        label = "weighted" if weighted else "unweighted"
        big = sizes[-1]
        grown, _ = peaks[(big, weighted)]
        if big >= TARGET_ROWS:
            per = grown / big
            how = f"measured at {big:,} rows"
        elif len(sizes) > 1:  # a straight line through the two largest sizes
            small = sizes[-2]
            slope = (grown - peaks[(small, weighted)][0]) / (big - small)
            per = (grown + slope * (TARGET_ROWS - big)) / TARGET_ROWS
            how = f"projected from {small:,} and {big:,} rows"
        else:
            print(f"evaluate, {label}: {grown / big:.1f} B/example at {big:,} rows (the target "
                  f"is at {TARGET_ROWS:,}: measure two sizes to project)")  # fmt: skip
            continue
        met = "met" if per <= TARGET_BYTES else "NOT met"
        print(f"evaluate, {label}: {per:.1f} B/example at {TARGET_ROWS:,} rows ({how}); "
              f"target <= {TARGET_BYTES}: {met}")  # fmt: skip
    if len(sizes) > 1:
        small, big = sizes[-2], sizes[-1]  # past the first row groups' fixed cost
        for weighted in (False, True):
            growth = (peaks[(big, weighted)][1] - peaks[(small, weighted)][1]) / (big - small)
            met = "met" if growth <= FLAT_BYTES else "NOT met"
            print(f"input alone ({'weighted' if weighted else 'unweighted'}): the reader's "
                  f"peak grows {growth:.2f} B/row from {small:,} to {big:,} rows; target: flat "
                  f"(<= {FLAT_BYTES} B/row): {met}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]), *sys.argv[6:7])
    else:
        main()
