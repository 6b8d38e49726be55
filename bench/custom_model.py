"""The custom-model path (``Estimator(model_fn=...)``) against the canned DNNClassifier.

Both train the same network, the chapter's churn classifier (hidden units 256, 128, 64,
32, relu, no dropout, one logit, Adam 0.001), on the bundled churn table resampled to
``--rows`` rows (numeric columns standardised, text columns one-hot through the same
feature columns), for ``--steps`` steps at batch 128:

- ``DNNClassifier(hidden_units=[256, 128, 64, 32], ...)``;
- ``Estimator(model_fn=mlp, head=BinaryHead(), ...)`` with ``mlp`` a plain
  ``nn.Sequential`` of the same layers, written by the user.

Rounds alternate the two and each keeps its best wall-clock and CPU time (CPU time
swings far less than wall time on a loaded machine). The ratio is the canned DNN's time
over the custom one's: the custom path adds no cost when it is about 1.0 (target >= 0.9
on CPU time, printed as met / NOT met, with the load average). Also printed:
the test AUC of each after the same steps.

Run: ``.venv/bin/python bench/custom_model.py`` (about a minute; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import numpy as np
import pandas as pd
import torch

HIDDEN = (256, 128, 64, 32)


def mlp(in_features: int, units: int) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = in_features
    for size in HIDDEN:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, units))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.steps, args.rounds = 10_000, 50, 1
    logging.getLogger("trainrun").setLevel(logging.ERROR)

    import trainrun as tr

    df = tr.load_churn()
    df["total_charges"] = df["total_charges"].fillna(0.0)
    text = [c for c in df.columns if c != "churn" and not pd.api.types.is_numeric_dtype(df[c])]
    numeric = [c for c in df.columns if c not in text and c != "churn"]
    train, test = df.iloc[:5600], df.iloc[5600:]
    mean, std = train[numeric].mean(), train[numeric].std()
    columns = [tr.numeric_column(c, normalizer_fn=("zscore", float(mean[c]), float(std[c])))
               for c in numeric] + [
        tr.indicator_column(tr.categorical_column_with_vocabulary_list(c, sorted(df[c].unique())))
        for c in text
    ]  # fmt: skip
    big = train.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
    cfg = tr.RunConfig(seed=0, progress=False, tensorboard=False)
    makers = {
        "DNNClassifier": lambda d: tr.DNNClassifier(
            hidden_units=list(HIDDEN), feature_columns=columns, label_vocabulary=["No", "Yes"],
            model_dir=d, config=cfg,
        ),
        "Estimator(model_fn)": lambda d: tr.Estimator(
            model_fn=mlp, head=tr.BinaryHead(label_vocabulary=["No", "Yes"]),
            feature_columns=columns, model_dir=d, config=cfg,
        ),
    }  # fmt: skip
    best = dict.fromkeys(makers, np.inf)
    cpu = dict.fromkeys(makers, np.inf)
    auc: dict[str, float] = {}
    fn = tr.input_fn(big, response="churn", epochs=None, seed=0)
    for round_ in range(args.rounds + 1):  # round 0 warms up imports and allocations
        for name, make in makers.items():
            est = make(tempfile.mkdtemp())
            t, c = time.perf_counter(), time.process_time()
            est.train(fn, steps=args.steps)
            if round_:
                best[name] = min(best[name], time.perf_counter() - t)
                cpu[name] = min(cpu[name], time.process_time() - c)
            auc[name] = est.evaluate(tr.input_fn(test, response="churn", shuffle=False))["auc"]
    print(
        f"churn resampled to {args.rows:,} rows, {args.steps} steps at batch 128, best of {args.rounds}"
    )
    for name in makers:
        rate = args.steps * 128 / best[name]
        print(
            f"  {name:20} wall {best[name]:6.2f} s ({rate:7,.0f} examples/s)  "
            f"cpu {cpu[name]:6.2f} s  test AUC {auc[name]:.4f}"
        )
    wall = best["DNNClassifier"] / best["Estimator(model_fn)"]
    ratio = cpu["DNNClassifier"] / cpu["Estimator(model_fn)"]
    print(f"  load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    print(
        f"  custom / canned speed ratio: wall {wall:.2f}x, cpu {ratio:.2f}x "
        f"(target >= 0.9 on CPU time, the custom path costing at most a tenth more: "
        f"{'met' if ratio >= 0.9 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
