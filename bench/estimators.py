"""Training throughput of DNNClassifier against its peers, all measured in this run.

The model is the chapter's churn classifier: hidden units 256, 128, 64, 32, relu,
dropout 0.2, one logit. The data is the bundled wa_churn table resampled to
1,000,000 rows (numeric columns standardised, categorical ones one-hot: 43 inputs).
Each contender trains a fixed number of steps at batch 128 and at batch 1,024:

- trainrun's DNNClassifier, end to end (feature columns, input_fn, training loop,
  callbacks; the checkpoint written at the end of train() included);
- a hand-written PyTorch loop over the same data preloaded as one tensor (Adam,
  ``nn.Dropout``), the baseline the ratios are taken against; the same loop with
  trainrun's ``FastDropout`` and without dropout, to show what dropout costs;
- scikit-learn's MLPClassifier (Adam, no dropout: it has none).

Rounds alternate the contenders and each keeps its best round, so a burst of load
from other processes on a shared machine hurts all of them alike. Also printed: the
GFLOP/s of a 4096 x 4096 float32 matmul (the machine's limit), the training FLOPs
per example (6 per weight: 2 forward, 4 backward) and so each contender's fraction of
that limit, and the peak resident memory (``ru_maxrss``) after each stage.

Run: ``.venv/bin/python bench/estimators.py`` (about 2 to 4 minutes on 2 cores;
``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch

HIDDEN = (256, 128, 64, 32)
DROPOUT = 0.2
ROWS = 1_000_000


def peak_rss_mb() -> float:
    # ru_maxrss is kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(n: int = 4096, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def training_flops_per_example(n_inputs: int) -> int:
    sizes = (n_inputs, *HIDDEN, 1)
    weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    return 6 * weights


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, list[str], list[str]]:
    import trainrun as tr

    df = tr.load_churn("wa_churn")
    df["total_charges"] = df["total_charges"].fillna(df["total_charges"].median())
    big = df.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    numeric = [c for c in big.columns if c != "churn" and big[c].dtype.kind in "if"]
    categorical = [c for c in big.columns if c != "churn" and c not in numeric]
    # standardise with the full table's statistics, once, for every contender
    for c in numeric:
        big[c] = ((big[c] - df[c].mean()) / df[c].std()).astype("float32")
    return big, numeric, categorical


def dense_matrix(big: pd.DataFrame, categorical: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = pd.get_dummies(big.drop(columns="churn"), columns=categorical, dtype=np.float32)
    y = (big["churn"] == "Yes").to_numpy(np.float32)
    return np.ascontiguousarray(x.to_numpy(np.float32)), y


def mlp(n_inputs: int, dropout_cls: type | None) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    width = n_inputs
    for units in HIDDEN:
        layers += [torch.nn.Linear(width, units), torch.nn.ReLU()]
        if dropout_cls is not None:
            layers.append(dropout_cls(DROPOUT))
        width = units
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


class TorchLoop:
    """The hand-written baseline: preloaded tensors, slicing, Adam, no DataLoader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, dropout_cls) -> None:
        torch.manual_seed(0)
        self.x, self.y, self.batch = x, y, batch
        self.model = mlp(x.shape[1], dropout_cls)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.pos = 0

    def run(self, steps: int) -> tuple[int, float]:
        model, opt, x, y, b = self.model, self.opt, self.x, self.y, self.batch
        t0 = time.perf_counter()
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
        for _ in range(steps):
            if self.pos + b > len(x):
                self.pos = 0
            xb, yb = x[self.pos : self.pos + b], y[self.pos : self.pos + b]
            self.pos += b
            loss = loss_fn(model(xb)[:, 0], yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return steps * b, time.perf_counter() - t0


class Estimator:
    """trainrun's DNNClassifier trained for a number of steps on a repeating input_fn.

    Timed from the end of the first few steps of each train() call to its last step
    (the steady state, as the loops are timed); the whole call, with its start (an
    epoch's shuffled copy of the rows) and end (a checkpoint), is reported beside it.
    """

    WARM = 5

    def __init__(self, big: pd.DataFrame, numeric, categorical, batch: int, model_dir: str):
        import trainrun as tr

        columns = [tr.numeric_column(c) for c in numeric] + [
            tr.indicator_column(
                tr.categorical_column_with_vocabulary_list(c, sorted(big[c].unique()))
            )
            for c in categorical
        ]
        self.batch = batch
        self.est = tr.DNNClassifier(
            hidden_units=list(HIDDEN),
            feature_columns=columns,
            dropout=DROPOUT,
            label_vocabulary=["No", "Yes"],
            model_dir=model_dir,
            config=tr.RunConfig(seed=0, progress=False),
        )
        # one input_fn object: the frame is encoded to tensors once, then reused
        self.input = tr.input_fn(big, response="churn", batch_size=batch, epochs=None, seed=0)
        self.whole_call = (0, 0.0)

        class Timer(tr.Callback):
            def on_step_end(timer, state) -> None:
                if state.steps_done == self.WARM:
                    timer.t0 = time.perf_counter()

            def on_train_end(timer, state) -> None:
                timer.t1 = time.perf_counter()

        self.timer = Timer()

    def run(self, steps: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        self.est.train(self.input, steps=steps + self.WARM, callbacks=[self.timer])
        self.whole_call = ((steps + self.WARM) * self.batch, time.perf_counter() - t0)
        return steps * self.batch, self.timer.t1 - self.timer.t0


class Sklearn:
    """scikit-learn's MLPClassifier: one partial_fit pass over the rows a round needs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int) -> None:
        from sklearn.neural_network import MLPClassifier

        self.x, self.y, self.batch, self.pos = x, y, batch, 0
        self.model = MLPClassifier(
            hidden_layer_sizes=HIDDEN, batch_size=batch, learning_rate_init=1e-3, random_state=0
        )

    def run(self, steps: int) -> tuple[int, float]:
        n = steps * self.batch
        if self.pos + n > len(self.x):
            self.pos = 0
        sl = slice(self.pos, self.pos + n)
        self.pos += n
        t0 = time.perf_counter()
        self.model.partial_fit(self.x[sl], self.y[sl], classes=[0.0, 1.0])
        return n, time.perf_counter() - t0


def measure(contenders: dict, steps: int, rounds: int) -> dict[str, float]:
    for c in contenders.values():  # warm-up: builds models, encodes data, fills caches
        c.run(max(2, steps // 10))
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, c in contenders.items():
            examples, seconds = c.run(steps)
            best[name] = max(best.get(name, 0.0), examples / seconds)
            if isinstance(c, Estimator):
                key = f"{name} (whole train() call)"
                best[key] = max(best.get(key, 0.0), c.whole_call[0] / c.whole_call[1])
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's, one per core); on a machine other "
        "processes load, 1 keeps parallel ops from waiting on a descheduled thread",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = 50_000 if args.quick else ROWS
    rounds = 1 if args.quick else args.rounds
    plan = {128: 20 if args.quick else 300, 1024: 5 if args.quick else 60}

    from trainrun.modules.dropout import FastDropout

    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    matmul_n = 1024 if args.quick else 4096
    limit = matmul_gflops(matmul_n)
    print(f"matmul limit: {limit:,.1f} GFLOP/s ({matmul_n} x {matmul_n} float32)")

    big, numeric, categorical = make_data(rows)
    x_np, y_np = dense_matrix(big, categorical)
    n_inputs = x_np.shape[1]
    flops = training_flops_per_example(n_inputs)
    ceiling = limit * 1e9 / flops
    print(
        f"data: {rows:,} rows x {n_inputs} inputs; training cost {flops / 1e3:,.0f}k FLOPs "
        f"per example, so the ceiling is {ceiling:,.0f} examples/s"
    )
    print(f"peak RSS after data: {peak_rss_mb():,.0f} MB")
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: partial_fit convergence chatter
        for batch, steps in plan.items():
            contenders = {
                "torch loop (nn.Dropout)": TorchLoop(x, y, batch, torch.nn.Dropout),
                "trainrun DNNClassifier": Estimator(
                    big, numeric, categorical, batch, os.path.join(tmp, f"m{batch}")
                ),
                "torch loop (FastDropout)": TorchLoop(x, y, batch, FastDropout),
                "torch loop (no dropout)": TorchLoop(x, y, batch, None),
                "sklearn MLPClassifier": Sklearn(x_np, y_np, batch),
            }
            with contextlib.redirect_stdout(io.StringIO()):
                results[batch] = measure(contenders, steps, rounds)
            print(f"peak RSS after batch {batch:,}: {peak_rss_mb():,.0f} MB")

    # measured again at the end: the better of the two is the machine's limit
    limit_end = matmul_gflops(matmul_n)
    if limit_end > limit:
        ceiling *= limit_end / limit
        limit = limit_end
    print(f"matmul limit at the end: {limit_end:,.1f} GFLOP/s; using {limit:,.1f}")
    base = "torch loop (nn.Dropout)"
    print()
    print(f"| contender | batch | examples/s | vs {base} | of matmul limit |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for batch, res in results.items():
        for name, rate in res.items():
            print(
                f"| {name} | {batch:,} | {rate:,.0f} | {rate / res[base]:.2f}x "
                f"| {rate / ceiling:.1%} |"
            )
    print()
    print(
        f"total bench time {time.perf_counter() - t_start:.0f} s; peak RSS {peak_rss_mb():,.0f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
