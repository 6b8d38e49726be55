"""The chapter's tfruns session: three training runs of churn_estimator.py, then compare.

1. ``training_run`` runs churn_estimator.py three times: with its defaults, with
   smaller layers (128/64/32/16), and with dropout 0.1 and tanh.
2. ``ls_runs(order="eval_accuracy")`` lists them, best first.
3. The best run's report is written with ``save_run_view`` and the best two are
   compared with ``save_run_comparison``; the paths are printed. A browser opens
   only with ``--view`` and only in an interactive session with a display.

    python examples/hyperparams.py                 # what `make demo` runs
    python examples/hyperparams.py --epochs 5 --runs-dir /tmp/runs
    trainrun ls --order eval_accuracy              # the same table afterwards

Exit code 1 when a run failed (the others still run and are listed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_string("runs_dir", "runs", "where the runs are recorded"),
    trainrun.flag_string("reports_dir", "reports", "where the report pages are written"),
    trainrun.flag_integer("epochs", 10, "training epochs of every run"),
    trainrun.flag_boolean("echo", False, "show each run's output as it trains"),
    trainrun.flag_boolean("view", False, "also open the reports (interactive sessions only)"),
)

SCRIPT = Path(__file__).resolve().parent / "churn_estimator.py"

# the chapter's three settings
TRIALS = [
    {},
    {"layer1": 128, "layer2": 64, "layer3": 32, "layer4": 16},
    {"dropout": 0.1, "activation": "tanh"},
]

TABLE_COLUMNS = [
    "id",
    "eval_accuracy",
    "eval_accuracy_baseline",
    "eval_auc",
    "eval_auc_precision_recall",
    "flag_layer1",
    "flag_layer4",
    "flag_dropout",
    "flag_activation",
    "duration",
]


def main() -> int:
    started = time.perf_counter()
    # One intra-op thread per run unless the caller chose: for a model this small, torch's
    # thread pool only adds contention (measured on a busy 2-core machine: 33,905
    # examples/s with one thread against 1,111 with two).
    env = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": "1"}
    ids, failed = [], []
    for n, overrides in enumerate(TRIALS, 1):
        flags = {**overrides, "epochs": FLAGS.epochs}
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "defaults"
        print(f"[{n}/{len(TRIALS)}] training_run('{SCRIPT.name}') with {shown} ...", flush=True)
        run = trainrun.training_run(
            SCRIPT,
            flags=flags,
            runs_dir=FLAGS.runs_dir,
            echo=FLAGS.echo,
            tags={"example": "hyperparams"},
            env=env,
        )
        ids.append(run["id"])
        accuracy = run["evaluation"].get("accuracy")
        shown_acc = f"eval_accuracy={accuracy:.4f}" if accuracy is not None else "no evaluation"
        print(f"      {run['status']} in {run.get('duration') or 0:.1f} s: {shown_acc}")
        if run["status"] != "completed":
            failed.append(run)
            print(f"      error: {run.get('error')}", file=sys.stderr)

    runs = trainrun.ls_runs(FLAGS.runs_dir, order="eval_accuracy")
    runs = runs[runs["id"].isin(ids)]
    columns = [c for c in TABLE_COLUMNS if c in runs.columns]
    print()
    print(f"ls_runs(order='eval_accuracy'): {len(runs)} runs")
    print(runs[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print()

    done = runs[runs["status"] == "completed"]
    reports = Path(FLAGS.reports_dir)
    if len(done) >= 1:
        best = done.iloc[0]["id"]
        view = trainrun.save_run_view(best, reports / f"run-{best}.html", runs_dir=FLAGS.runs_dir)
        print(f"Best run ({best}): {view.resolve()}")
        if FLAGS.view:
            trainrun.view_run(best, runs_dir=FLAGS.runs_dir)
    if len(done) >= 2:
        best_two = list(done.iloc[:2]["id"])
        comparison = trainrun.save_run_comparison(
            best_two, reports / "compare-best-two.html", runs_dir=FLAGS.runs_dir
        )
        print(f"Best two compared: {comparison.resolve()}")
        if FLAGS.view:
            trainrun.compare_runs(best_two, runs_dir=FLAGS.runs_dir)
    print(
        f"Done in {time.perf_counter() - started:.1f} s. TensorBoard: trainrun board {FLAGS.runs_dir}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
