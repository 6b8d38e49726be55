"""Feature columns and input_fn: throughput figures against baselines measured in the same run.

Prints (no timed assertions):
  * encoding 1,000,000 rows of wa_churn (resampled) from a DataFrame, and streamed from
    Parquet and CSV in chunks;
  * the stable hash: unique strings per second, against hashlib.blake2b called per value;
  * training throughput of a DNN (256, 128, 64, 32; dropout 0.2; Adam) fed by
    input_fn + DenseFeatures, against a hand-written loop over preloaded dense tensors
    (the same model, the same per-epoch permutation), at batch 128 and 1,024: examples/s
    from the median step time (a step includes fetching the next batch), best of 5
    interleaved runs, so that load from other processes skews both alike.

Usage: python bench/features.py [--rows N] [--steps N] [--threads N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainrun.feature_columns import DenseFeatures, FeatureTransform, columns_from_frame
from trainrun.feature_columns._hashing import hash_text
from trainrun.inputs import input_fn

DATA = Path(__file__).resolve().parents[1] / "src" / "trainrun" / "data" / "wa_churn.csv"


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def mlp(in_dim: int) -> nn.Module:
    layers, prev = [], in_dim
    for units in (256, 128, 64, 32):
        layers += [nn.Linear(prev, units), nn.ReLU(), nn.Dropout(0.2)]
        prev = units
    layers.append(nn.Linear(prev, 1))
    return nn.Sequential(*layers)


class Model(nn.Module):
    def __init__(self, columns, in_dim: int) -> None:
        super().__init__()
        self.features = DenseFeatures(columns)
        self.net = mlp(in_dim)

    def forward(self, encoded):
        return self.net(self.features(encoded)).squeeze(1)


def train_pipeline(df, columns, transform, batch_size: int, steps: int) -> float:
    """Examples/s (from the median step) of input_fn + DenseFeatures + MLP."""
    torch.manual_seed(0)
    fn = input_fn(df, response="churn", batch_size=batch_size, epochs=None, seed=0)
    model = Model(columns, DenseFeatures(columns).output_dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()

    def labels(values):
        return torch.as_tensor(values == "Yes", dtype=torch.float32)

    it = fn.batches(transform, label_fn=labels)
    batch = next(it)  # encodes once and permutes the first epoch, outside the timing
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(batch.features), batch.labels).backward()
        opt.step()
        batch = next(it)
        times.append(time.perf_counter() - t0)
    return batch_size / float(np.median(times))


def train_by_hand(x: torch.Tensor, y: torch.Tensor, batch_size: int, steps: int) -> float:
    """The baseline: preloaded dense tensors, one permutation per epoch, slices."""
    torch.manual_seed(0)
    model = mlp(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    n, done, start = len(x), 0, 0
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=g)
    xp, yp = x[perm], y[perm]  # the first epoch's permutation, outside the timing
    times = []
    while done < steps:
        t0 = time.perf_counter()
        if start == 0 and done:
            perm = torch.randperm(n, generator=g)
            xp, yp = x[perm], y[perm]
        xb, yb = xp[start : start + batch_size], yp[start : start + batch_size]
        start = start + batch_size if start + batch_size < n else 0
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb).squeeze(1), yb).backward()
        opt.step()
        done += 1
        times.append(time.perf_counter() - t0)
    return batch_size / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = pd.read_csv(DATA)
    df = base.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    columns = columns_from_frame(df, exclude="churn", normalize=True)
    transform = FeatureTransform(columns)
    print(
        f"trainrun features bench: {args.rows:,} rows, {len(columns)} columns, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    # -- encoding
    t = best_of(lambda: transform.encode(df), repeats=2)
    print(f"encode DataFrame          {args.rows / t:>12,.0f} rows/s  ({t:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        pq_path, csv_path = Path(tmp) / "d.parquet", Path(tmp) / "d.csv"
        df.to_parquet(pq_path, index=False)
        df.to_csv(csv_path, index=False)
        for name, path in (("Parquet", pq_path), ("CSV", csv_path)):
            fn = input_fn(path, response="churn", batch_size=1024, shuffle=False,
                          chunk_size=100_000)  # fmt: skip

            def labels(values):
                return torch.as_tensor(values == "Yes", dtype=torch.float32)

            t = best_of(
                lambda fn=fn, labels=labels: sum(1 for _ in fn.batches(transform, labels)), 1
            )
            print(f"stream {name:<8} (chunks)   {args.rows / t:>12,.0f} rows/s  ({t:.2f} s)")

    # -- hashing
    uniques = np.array([f"user-{i:08d}" for i in range(1_000_000)])
    t_ours = best_of(lambda: hash_text(uniques), repeats=2)
    sample = uniques[:200_000]
    t_blake = best_of(
        lambda: [hashlib.blake2b(s.encode(), digest_size=8).digest() for s in sample], repeats=2
    ) * (len(uniques) / len(sample))
    print(
        f"hash unique strings       {len(uniques) / t_ours:>12,.0f} /s   "
        f"blake2b per value {len(uniques) / t_blake:,.0f} /s   ratio {t_blake / t_ours:.2f}x"
    )

    # -- training throughput against a hand-written loop
    enc = transform.encode(df)
    with torch.no_grad():
        x = DenseFeatures(columns)(enc).contiguous()
    y = torch.as_tensor(df["churn"].to_numpy() == "Yes", dtype=torch.float32)
    for batch_size in (128, 1024):
        steps = args.steps * (4 if batch_size == 128 else 1)
        ours, hand = [], []
        for _ in range(5):  # interleaved, so that load changes hit both alike
            ours.append(train_pipeline(df, columns, transform, batch_size, steps))
            hand.append(train_by_hand(x, y, batch_size, steps))
        o, h = max(ours), max(hand)
        print(
            f"DNN train batch {batch_size:>5}     input_fn+DenseFeatures {o:>9,.0f} ex/s   "
            f"hand-written loop {h:>9,.0f} ex/s   ratio {o / h:.2f}x"
        )


if __name__ == "__main__":
    main()
