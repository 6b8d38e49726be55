"""Which FTRL learning rate should the linear part of DNNLinearCombined* default to?

tf.estimator gives the linear part of its wide-and-deep estimators FTRL with
``learning_rate = min(0.005, 1 / sqrt(number of linear feature columns))``
(``dnn_linear_combined._linear_learning_rate``), but a plain LinearClassifier
FTRL 0.2. This script trains DNNLinearCombinedClassifier on the bundled telco churn
data (80/20 split, fixed seed; linear part: every raw column, categories as sparse
rows; DNN part: z-scored numerics and one-hot categories, 64-32 relu, Adam 0.001)
with each linear learning rate, for the same budget, and prints the test AUC of each,
plus the linear part alone (the DNN part's contribution set aside).

Run: ``.venv/bin/python bench/wide_deep_defaults.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import tempfile
import time

import numpy as np
import pandas as pd

SEED = 42


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(SEED).permutation(len(df))
    n_test = round(len(df) * 0.2)
    return df.iloc[order[n_test:]].reset_index(drop=True), df.iloc[order[:n_test]].reset_index(
        drop=True
    )


def columns(train: pd.DataFrame) -> tuple[list, list]:
    import trainrun as tr

    linear, dnn = [], []
    for name in train.columns:
        if name == "churn":
            continue
        values = train[name]
        if values.dtype.kind in "if":
            col = tr.numeric_column(
                name,
                default_value=float(values.median()),
                normalizer_fn=("zscore", float(values.mean()), float(values.std()) or 1.0),
            )
            linear.append(col)
            dnn.append(col)
        else:
            cat = tr.categorical_column_with_vocabulary_list(name, sorted(values.dropna().unique()))
            linear.append(cat)
            dnn.append(tr.indicator_column(cat))
    return linear, dnn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    import torch

    import trainrun as tr
    from trainrun.training.optimizers import Ftrl

    torch.set_num_threads(1)
    train, test = split(tr.load_churn("wa_churn"))
    linear, dnn = columns(train)
    tf_rate = min(0.005, 1.0 / math.sqrt(len(linear)))
    print(f"{len(train):,} training rows, {len(test):,} test rows, {len(linear)} linear columns")
    print(f"epochs {args.epochs}, batch {args.batch_size}\n")
    print(f"{'model':<34} {'linear FTRL lr':>14} {'test AUC':>9} {'accuracy':>9} {'seconds':>8}")
    for label, lr, dnn_cols in [
        ("wide and deep", 0.2, dnn),
        ("wide and deep", tf_rate, dnn),
        ("linear part only (no DNN)", 0.2, None),
        ("linear part only (no DNN)", tf_rate, None),
    ]:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as model_dir:
            est = tr.DNNLinearCombinedClassifier(
                linear_feature_columns=linear,
                linear_optimizer=lambda params, lr=lr: Ftrl(params, learning_rate=lr),
                dnn_feature_columns=dnn_cols,
                dnn_hidden_units=[64, 32] if dnn_cols else None,
                label_vocabulary=["No", "Yes"],
                model_dir=model_dir,
                config=tr.RunConfig(seed=SEED, progress=False),
            )
            with contextlib.redirect_stdout(io.StringIO()):
                est.train(
                    tr.input_fn(
                        train,
                        response="churn",
                        batch_size=args.batch_size,
                        epochs=args.epochs,
                        seed=SEED,
                    )
                )
                result = est.evaluate(tr.input_fn(test, response="churn", shuffle=False))
        seconds = time.perf_counter() - t0
        print(
            f"{label:<34} {lr:>14.4g} {result['auc']:>9.4f} {result['accuracy']:>9.4f} "
            f"{seconds:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
