"""The cost of evaluating every N steps (train_and_evaluate) relative to training alone.

The model is a DNNClassifier (hidden units 64, 32, dropout 0.2) on the bundled
``wa_churn`` table: 5,634 training rows at batch 128, and a validation set of 1,409
rows. Each contender trains the same number of steps:

- ``train()`` alone (one checkpoint at the end), the baseline;
- ``train_and_evaluate`` with ``EvalSpec(every_n_steps=N)`` for several N: each
  evaluation writes a checkpoint, evaluates the whole validation set (exact AUCs), and
  writes its TensorBoard ``eval`` events, as a user gets by default.

Rounds alternate the contenders and each keeps its best round, so load from other
processes on a shared machine hurts all alike. Printed: seconds, the ratio to training
alone, the number of evaluations and the cost of one evaluation.

Run: ``.venv/bin/python bench/evaluation_cost.py`` (about a minute on 2 cores;
``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import torch

import trainrun


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    steps = 100 if args.quick else args.steps
    rounds = 1 if args.quick else args.rounds
    every_ns = [50] if args.quick else [50, 100, 250, 500, 1000]
    torch.set_num_threads(args.threads)
    logging.getLogger("trainrun").setLevel(logging.ERROR)

    data = trainrun.load_churn("wa_churn")
    valid = data.sample(frac=0.2, random_state=0)
    train = data.drop(valid.index)
    columns = trainrun.columns_from_frame(train, exclude="churn", normalize=True)
    train_fn = trainrun.input_fn(train, response="churn", batch_size=128, epochs=None, seed=0)
    valid_fn = trainrun.input_fn(valid, response="churn", shuffle=False, batch_size=1024)

    def estimator(folder: str):
        return trainrun.DNNClassifier(
            hidden_units=[64, 32], feature_columns=columns, label_vocabulary=["No", "Yes"],
            dropout=0.2, model_dir=folder, config=trainrun.RunConfig(seed=0, progress=False),
        )  # fmt: skip

    def alone() -> tuple[float, int]:
        with tempfile.TemporaryDirectory() as folder:
            est = estimator(folder)
            t0 = time.perf_counter()
            est.train(train_fn, steps=steps)
            return time.perf_counter() - t0, 0

    def every(n: int):
        def run() -> tuple[float, int]:
            with tempfile.TemporaryDirectory() as folder:
                est = estimator(folder)
                t0 = time.perf_counter()
                result = trainrun.train_and_evaluate(
                    est,
                    trainrun.TrainSpec(train_fn, max_steps=steps),
                    trainrun.EvalSpec(valid_fn, every_n_steps=n),
                )
                return time.perf_counter() - t0, len(result.evaluations)

        return run

    contenders = {"train() alone": alone, **{f"every {n} steps": every(n) for n in every_ns}}
    best: dict[str, tuple[float, int]] = {}
    for _ in range(rounds):
        for name, fn in contenders.items():
            seconds, evals = fn()
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, evals)

    base = best["train() alone"][0]
    print(f"DNNClassifier [64, 32] on wa_churn: {steps:,} steps at batch 128, "
          f"{len(valid):,} validation rows, {args.threads} thread(s), best of {rounds}")  # fmt: skip
    print()
    print("| contender | seconds | vs train() alone | evaluations | ms per evaluation |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, evals) in best.items():
        per = f"{1000 * (seconds - base) / evals:,.1f}" if evals else "-"
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f}x | {evals} | {per} |")


if __name__ == "__main__":
    main()
