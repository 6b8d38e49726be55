"""Test AUC on the bundled telco churn data: trainrun's estimators against scikit-learn.

The wa_churn table (7,043 customers) is split 80/20 with a fixed seed. Every model
sees the same features: the numeric columns standardised with the training split's
mean and standard deviation (missing ``total_charges`` filled with its training
median), the categorical ones one-hot. Contenders:

- ``LinearClassifier`` with its default optimizer (FTRL, learning rate 0.2);
- ``DNNClassifier`` (256, 128, 64, 32, relu, dropout 0.2) with its default (Adam 0.001);
- scikit-learn's ``LogisticRegression`` (L2, C=1, lbfgs), the reference.

It prints the figures and writes them as a markdown table to
``docs/results-churn.md`` (``--output`` to change; ``--output -`` only prints).

Run: ``.venv/bin/python scripts/churn_quality.py [--adagrad]`` (a minute or two on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 42
TEST_FRACTION = 0.2
ROOT = Path(__file__).resolve().parents[1]


def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(df))
    n_test = round(len(df) * TEST_FRACTION)
    return df.iloc[order[n_test:]].reset_index(drop=True), df.iloc[order[:n_test]].reset_index(
        drop=True
    )


def feature_columns(train: pd.DataFrame):
    import trainrun as tr

    columns = []
    for name in train.columns:
        if name == "churn":
            continue
        values = train[name]
        if values.dtype.kind in "if":
            std = float(values.std()) or 1.0
            columns.append(
                tr.numeric_column(
                    name,
                    default_value=float(values.median()),
                    normalizer_fn=("zscore", float(values.mean()), std),
                )
            )
        else:
            vocab = sorted(values.dropna().unique())
            columns.append(
                tr.indicator_column(tr.categorical_column_with_vocabulary_list(name, vocab))
            )
    return columns


def dense(frame: pd.DataFrame, train: pd.DataFrame) -> np.ndarray:
    """The same encoding, by hand, for scikit-learn: z-scores and one-hot columns."""
    parts = []
    for name in train.columns:
        if name == "churn":
            continue
        if train[name].dtype.kind in "if":
            values = frame[name].fillna(train[name].median())
            std = float(train[name].std()) or 1.0
            parts.append(((values - train[name].mean()) / std).to_numpy()[:, None])
        else:
            vocab = sorted(train[name].dropna().unique())
            parts.append((frame[name].to_numpy()[:, None] == np.array(vocab)[None, :]) * 1.0)
    return np.hstack(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "results-churn.md"))
    parser.add_argument("--epochs-linear", type=int, default=40)
    parser.add_argument("--epochs-dnn", type=int, default=15)
    parser.add_argument(
        "--adagrad",
        action="store_true",
        help="also train the DNN with tf.estimator's default optimizer, Adagrad 0.05 "
        "(informational: not part of the target)",
    )
    args = parser.parse_args(argv)

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    import trainrun as tr

    torch.set_num_threads(min(2, torch.get_num_threads()))
    df = tr.load_churn("wa_churn")
    train, test = split(df)
    y_train = (train["churn"] == "Yes").to_numpy()
    y_test = (test["churn"] == "Yes").to_numpy()
    columns = feature_columns(train)
    rows = []

    t0 = time.perf_counter()
    logreg = LogisticRegression(max_iter=2000).fit(dense(train, train), y_train)
    ref_auc = roc_auc_score(y_test, logreg.predict_proba(dense(test, train))[:, 1])
    acc = float((logreg.predict(dense(test, train)) == y_test).mean())
    seconds = time.perf_counter() - t0
    rows.append(
        ("scikit-learn LogisticRegression (C=1)", "lbfgs", "-", ref_auc, acc, seconds, True)
    )

    def dnn(optimizer: str | None):
        def build(model_dir: str):
            extra = {} if optimizer is None else {"optimizer": optimizer}
            return tr.DNNClassifier(
                hidden_units=[256, 128, 64, 32],
                feature_columns=columns,
                dropout=0.2,
                label_vocabulary=["No", "Yes"],
                model_dir=model_dir,
                config=tr.RunConfig(seed=SEED, progress=False),
                **extra,
            )

        return build

    specs = [
        (
            "trainrun LinearClassifier",
            "Ftrl 0.2 (default)",
            args.epochs_linear,
            lambda d: tr.LinearClassifier(
                feature_columns=columns,
                label_vocabulary=["No", "Yes"],
                model_dir=d,
                config=tr.RunConfig(seed=SEED, progress=False),
            ),
        ),
        (
            "trainrun DNNClassifier (256,128,64,32, dropout 0.2)",
            "Adam 0.001 (default)",
            args.epochs_dnn,
            dnn(None),
        ),
    ]
    if args.adagrad:
        specs.append(
            (
                "trainrun DNNClassifier (256,128,64,32, dropout 0.2), informational",
                "Adagrad 0.05 (tf.estimator's default)",
                args.epochs_dnn,
                dnn("Adagrad"),
            )
        )
    for name, optimizer, epochs, build in specs:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as model_dir:
            est = build(model_dir)
            with contextlib.redirect_stdout(io.StringIO()):
                est.train(
                    tr.input_fn(train, response="churn", batch_size=128, epochs=epochs, seed=SEED)
                )
                result = est.evaluate(tr.input_fn(test, response="churn", shuffle=False))
        seconds = time.perf_counter() - t0
        checked = "informational" not in name
        rows.append(
            (
                name,
                optimizer,
                f"{epochs} x 128",
                result["auc"],
                result["accuracy"],
                seconds,
                checked,
            )
        )
        print(f"{name}: {result}", file=sys.stderr)

    lines = [
        "# Churn quality: test AUC on the bundled wa_churn data",
        "",
        f"Produced by `scripts/churn_quality.py`: 80/20 split (seed {SEED}; "
        f"{len(train):,} training and {len(test):,} test rows), the same standardised "
        "numeric and one-hot categorical features for every model, torch "
        f"{torch.__version__}. AUC is exact (every distinct score a threshold).",
        "",
        "| model | optimizer | epochs x batch | test AUC | vs LogisticRegression | test accuracy | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, optimizer, budget, auc, accuracy, seconds, _ in rows:
        lines.append(
            f"| {name} | {optimizer} | {budget} | {auc:.4f} | {auc - ref_auc:+.4f} "
            f"| {accuracy:.4f} | {seconds:.1f} |"
        )
    lines += [
        "",
        "Target (issue 3): both estimators, with their default optimizers, within 0.01 of "
        "LogisticRegression's test AUC.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    worst = min(auc - ref_auc for _, _, _, auc, _, _, checked in rows if checked)
    return 0 if worst >= -0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
