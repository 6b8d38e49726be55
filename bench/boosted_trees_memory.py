"""BoostedTreesClassifier's peak memory trained from streamed files against the same rows
in a DataFrame, for both engines (``engine="lightgbm"`` and ``engine="xgboost"``).

Data (generated here, in a temporary folder, never in the repository): the bundled
wa_churn table's first 5,600 rows resampled with replacement to ``--rows`` rows
(1,000,000 by default), written as ``FILES`` Parquet files (or CSV files with
``--format csv``). The model: the feature columns of ``bench/boosted_trees.py`` (the
numeric columns, the text columns as indicator columns: 40 matrix columns), ``--trees``
trees of depth 6, every core.

Each measurement is one ``train`` call in a fresh process, alone (its peak resident
memory, ``ru_maxrss``, is its own), of one of:

- ``streamed``: ``input_fn(folder)``: the files read chunk by chunk. LightGBM: the
  encoded rows are spilled to a temporary file and binned from a memory map, so only
  LightGBM's binned copy (a byte per value) stays; XGBoost: the files are read once per
  pass of its QuantileDMatrix (sketch, then quantise), so only the quantised copy stays;
- ``in memory``: the same rows read into one DataFrame first (``pandas.read_parquet`` /
  ``read_csv``, inside the measured process), then ``input_fn(df)``: the frame, its
  encoding and the float32 matrix the engine bins all sit in memory together;
- ``floor``: the same estimator trained on 1,000 of the rows in a DataFrame: the
  libraries (torch, pandas, pyarrow, the engine) loaded and nothing sized by the data.

The figures to read: each input's peak, its peak over the floor (what the data costs),
and the streamed / in-memory ratios (the target printed: the streamed peak over the
floor at most half the in-memory one; the streamed part should grow with the rows only
by the engine's binned copy). Wall and CPU time of the train call are printed too (the
streamed input encodes its rows once per pass it reads). Each measurement runs
``--rounds`` times (2 by default), alternating, and the peak printed is the largest of
its rounds.

Figures (2026-12-03, 2 shared cores; peak RSS / peak anonymous RSS in MiB, the largest
of 2 rounds; wall seconds of the train() call, the shortest):

=========  ======  ==================  =====================  ==========
engine     rows    streamed            in memory              floor
=========  ======  ==================  =====================  ==========
lightgbm   1M (a)  802 / 545, 10.2 s   1,210 / 1,052, 20 s    436 / 283
lightgbm   1M (b)  871 / 550, 5.4 s    1,201 / 1,045, 17 s    436 / 283
lightgbm   2M (c)  1,053 / 595, 22 s   1,933 / 1,776, 34 s    440 / 283
xgboost    1M (a)  791 / 623, 13.7 s   1,166 / 994, 15.7 s    456 / 284
xgboost    1M (b)  834 / 666, 7.5 s    1,162 / 991, 8.0 s     454 / 282
xgboost    2M (c)  903 / 734, 30 s     1,881 / 1,709, 30 s    458 / 286
=========  ======  ==================  =====================  ==========

(1-min load (a) 3.3-3.7, (b) 1.5-2.0, (c) 7.0-4.4.) Over the floor, streamed / in
memory: LightGBM 0.47-0.57 of the peak RSS at 1M rows and 0.41 at 2M, 0.34-0.35 and 0.21
of the anonymous memory; XGBoost 0.47-0.54 and 0.31 (anonymous 0.48-0.54, 0.31). From
1M to 2M rows the in-memory peak grows about 730 MiB, the streamed one about 200
(LightGBM; of which 160 B a row is the spill's memory map, file pages the kernel can
drop: anonymous memory grows 45-50 MiB, LightGBM's binned copy) and 70-110 (XGBoost).
What the streamed LightGBM peak is made of at 1M rows: the spill read back through a
memory map (4 B a value, counted in RSS), LightGBM's sample of 200,000 rows for the
bins, taken a row at a time as float64, and the encoded chunk of 262,144 rows being
written. The times are only indicative here: identical runs differ two- to three-fold
on this machine under load, and its virtual machine makes the first touch of fresh
memory slow (about 30 us a page: 1.3 s to fill 160 MiB), which penalises the in-memory
input by its memory.

Run: ``.venv/bin/python bench/boosted_trees_memory.py`` (about 3 minutes on 2 cores;
``--quick`` for a smoke run at 20,000 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FILES = 4
ROW_GROUP = 65_536
DEPTH = 6
ENGINES = ("lightgbm", "xgboost")
INPUTS = ("streamed", "in_memory", "floor")
#: The streamed input's peak over the floor against the in-memory one's: "well below".
TARGET = 0.5
#: How often the child samples its anonymous resident memory.
SAMPLE_S = 0.01


def churn_train() -> tuple[object, list[str], list[str]]:
    """The churn table's training part, and its numeric and text columns."""
    import pandas as pd

    import trainrun as tr

    df = tr.load_churn()
    df["total_charges"] = df["total_charges"].fillna(0.0)
    text = [c for c in df.columns if c != "churn" and not pd.api.types.is_numeric_dtype(df[c])]
    numeric = [c for c in df.columns if c not in text and c != "churn"]
    return df.iloc[:5600], numeric, text


def generate(folder: Path, rows: int, fmt: str) -> None:
    """``rows`` resampled rows as FILES files, one file's worth in memory at a time."""
    train, _, _ = churn_train()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, part in enumerate(np.array_split(np.arange(rows), FILES)):
        frame = train.iloc[rng.integers(0, len(train), len(part))].reset_index(drop=True)
        if fmt == "parquet":
            frame.to_parquet(folder / f"part-{i:02d}.parquet", row_group_size=ROW_GROUP)
        else:
            frame.to_csv(folder / f"part-{i:02d}.csv", index=False)


def child(engine: str, mode: str, folder: str, trees: int) -> dict:
    """One measurement, in this (fresh) process: one ``train`` call."""
    import logging

    import pandas as pd

    import trainrun as tr

    logging.getLogger("trainrun").setLevel(logging.ERROR)
    _, numeric, text = churn_train()
    vocab = {c: sorted(tr.load_churn()[c].unique()) for c in text}
    columns = [tr.numeric_column(c) for c in numeric] + [
        tr.indicator_column(tr.categorical_column_with_vocabulary_list(c, vocab[c])) for c in text
    ]
    est = tr.BoostedTreesClassifier(
        feature_columns=columns, label_vocabulary=["No", "Yes"], n_trees=trees, max_depth=DEPTH,
        learning_rate=0.1, l2_regularization=1.0, engine=engine, model_dir=tempfile.mkdtemp(),
        config=tr.RunConfig(seed=0, progress=False, tensorboard=False),
    )  # fmt: skip
    files = sorted(Path(folder).iterdir())
    csv = files[0].suffix == ".csv"
    anon = AnonPeak()
    t, c = time.perf_counter(), time.process_time()
    if mode == "streamed":
        data: object = folder
    elif mode == "floor":  # 1,000 rows, read without reading the rest
        data = pd.read_csv(files[0], nrows=1000) if csv else _head(files[0], 1000)
    else:
        read = pd.read_csv if csv else pd.read_parquet
        data = pd.concat([read(f) for f in files], ignore_index=True)
    fn = tr.input_fn(data, response="churn", batch_size=8192, shuffle=False)
    est.train(fn)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    del data, fn
    return {
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "anon_mb": anon.stop(),
        "wall_s": wall,
        "cpu_s": cpu,
        "trees": est.global_step_,
    }


class AnonPeak:
    """The largest anonymous resident memory (``RssAnon``: not pages mapped from files,
    which the kernel can drop and read again) seen every SAMPLE_S seconds in a thread."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, _anon_mb())
            if self._done.wait(SAMPLE_S):
                return

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return max(self.peak, _anon_mb())


def _anon_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    except (OSError, StopIteration):  # not Linux: ru_maxrss alone
        return float("nan")
    return kb / 1024


def _head(path: Path, rows: int) -> object:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(0).slice(0, rows).to_pandas()


def measure(engine: str, mode: str, folder: Path, trees: int) -> dict:
    env = {**os.environ, "TRAINRUN_RECORD": "0", "TRAINRUN_MAX_STEPS": ""}
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine, mode, str(folder), str(trees)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{engine} {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--engine", choices=ENGINES, action="append", help="default: both")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 3 trees, 1 round")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, mode, folder, trees = args.child
        print(json.dumps(child(engine, mode, folder, int(trees))))
        return
    if args.quick:
        args.rows, args.trees, args.rounds = 20_000, 3, 1
    engines = tuple(args.engine or ENGINES)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="trainrun-bench-trees-memory-") as tmp:
        folder = Path(tmp) / "churn"
        t0 = time.perf_counter()
        generate(folder, args.rows, args.format)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(
            f"churn resampled to {args.rows:,} rows in {FILES} {args.format} files "
            f"({size_mb:.0f} MB, written in {time.perf_counter() - t0:.1f} s); {args.trees} trees "
            f"of depth {DEPTH}; each figure one train() in a fresh process, {args.rounds} rounds"
        )
        runs: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):  # alternating, the order reversed each round
            for engine in engines:
                for mode in INPUTS[:: 1 if r % 2 == 0 else -1]:
                    runs.setdefault((engine, mode), []).append(
                        measure(engine, mode, folder, args.trees)
                    )
    report(runs, engines, args.rows)
    print(f"load average before / after: {load:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")  # fmt: skip


def report(runs: dict[tuple[str, str], list[dict]], engines: tuple[str, ...], rows: int) -> None:
    print(f"{'engine':>9} {'input':>10} {'peak RSS MB':>12} {'over floor':>11} {'anon MB':>8} "
          f"{'over floor':>11} {'wall s':>7} {'cpu s':>7}  rounds' peak RSS")  # fmt: skip
    for engine in engines:
        peak = {m: max(x["peak_mb"] for x in runs[(engine, m)]) for m in INPUTS}
        anon = {m: max(x["anon_mb"] for x in runs[(engine, m)]) for m in INPUTS}
        for mode in INPUTS:
            got = runs[(engine, mode)]
            over, anon_over = (
                (f"{peak[mode] - peak['floor']:>11,.0f}", f"{anon[mode] - anon['floor']:>11,.0f}")
                if mode != "floor"
                else (f"{'':>11}", f"{'':>11}")
            )
            print(
                f"{engine:>9} {mode.replace('_', ' '):>10} {peak[mode]:>12,.0f} {over} "
                f"{anon[mode]:>8,.0f} {anon_over} "
                f"{min(x['wall_s'] for x in got):>7.2f} {min(x['cpu_s'] for x in got):>7.2f}  "
                + ", ".join(f"{x['peak_mb']:,.0f}" for x in got)
            )
    for engine in engines:
        peak = {m: max(x["peak_mb"] for x in runs[(engine, m)]) for m in INPUTS}
        anon = {m: max(x["anon_mb"] for x in runs[(engine, m)]) for m in INPUTS}
        streamed, in_memory = peak["streamed"] - peak["floor"], peak["in_memory"] - peak["floor"]
        ratio = streamed / in_memory if in_memory > 0 else float("nan")
        anon_ratio = (anon["streamed"] - anon["floor"]) / (anon["in_memory"] - anon["floor"])
        print(
            f"{engine}: streamed / in-memory peak RSS {peak['streamed'] / peak['in_memory']:.2f}x, "
            f"over the floor {ratio:.2f}x (target <= {TARGET}: {_met(ratio <= TARGET)}), "
            f"anonymous over the floor {anon_ratio:.2f}x; per row over the floor: streamed "
            f"{2**20 * streamed / rows:,.0f} B, in memory {2**20 * in_memory / rows:,.0f} B"
        )


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
