"""train_and_evaluate on the churn data: early stopping on evaluation AUC, the best model exported.

A DNNClassifier trains on 60% of the bundled ``wa_churn`` table and is evaluated
on a 20% validation split every ``eval_every`` steps (on the checkpoint of that
step). Training stops once the validation AUC has not increased for
``patience_steps`` steps (``stop_if_no_increase_hook``), and ``BestExporter`` keeps
the export of the evaluation with the highest AUC. The best export is then scored
on the last 20%, the test split it never saw. The plot shows the training loss
and the validation AUC against the step (``train_and_evaluate.png``, in the run's
plots/ inside a training run).

    python examples/churn_train_and_evaluate.py
    python examples/churn_train_and_evaluate.py --eval_every 50 --patience_steps 300
    trainrun run examples/churn_train_and_evaluate.py --flag dropout=0.3

TRAINRUN_MAX_STEPS caps the training steps (for smoke tests).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_integer("layer1", 64, "units of hidden layer 1"),
    trainrun.flag_integer("layer2", 32, "units of hidden layer 2"),
    trainrun.flag_numeric("dropout", 0.2, "dropout rate of the hidden layers"),
    trainrun.flag_integer("batch_size", 128, "examples per batch"),
    trainrun.flag_integer("max_steps", 4000, "the most training steps"),
    trainrun.flag_integer("eval_every", 100, "training steps between evaluations"),
    trainrun.flag_integer("patience_steps", 600, "stop after this many steps without a better AUC"),
    trainrun.flag_string("model_dir", "", "model directory (default: a temporary folder)"),
    trainrun.flag_integer("seed", 42, "seed of the split, the weights and the shuffles"),
)


def main() -> dict[str, float]:
    data = trainrun.load_churn("wa_churn")
    test = data.sample(frac=0.2, random_state=FLAGS.seed)
    rest = data.drop(test.index)
    valid = rest.sample(frac=0.25, random_state=FLAGS.seed)
    train = rest.drop(valid.index)
    print(f"wa_churn: {len(train):,} training, {len(valid):,} validation, {len(test):,} test rows")

    columns = trainrun.columns_from_frame(train, exclude="churn", normalize=True)
    model_dir = FLAGS.model_dir or tempfile.mkdtemp(prefix="churn-train-and-evaluate-")
    classifier = trainrun.DNNClassifier(
        hidden_units=[FLAGS.layer1, FLAGS.layer2],
        feature_columns=columns,
        label_vocabulary=["No", "Yes"],
        dropout=FLAGS.dropout,
        model_dir=model_dir if trainrun.run_dir() is None else None,  # a run keeps it in model/
        config=trainrun.RunConfig(seed=FLAGS.seed, log_step_count_steps=FLAGS.eval_every),
    )

    def churn_input_fn(frame, **kw):
        return trainrun.input_fn(frame, response="churn", batch_size=FLAGS.batch_size, **kw)

    early_stop = trainrun.stop_if_no_increase_hook(classifier, "auc", FLAGS.patience_steps)
    best = trainrun.BestExporter(metric="auc", exports_to_keep=1)
    result = trainrun.train_and_evaluate(
        classifier,
        trainrun.TrainSpec(
            churn_input_fn(train, epochs=None, seed=FLAGS.seed),
            max_steps=FLAGS.max_steps,
            hooks=[early_stop],
        ),
        trainrun.EvalSpec(
            churn_input_fn(valid, shuffle=False),
            every_n_steps=FLAGS.eval_every,
            exporters=[best],
        ),
    )
    print(result.history)
    stopped = (
        f"stopped early at step {early_stop.stopped_at:,}"
        if early_stop.stopped_at
        else ("ran to max_steps")
    )
    aucs = [(e["global_step"], e["auc"]) for e in result.evaluations]
    best_step, best_auc = max(aucs, key=lambda sa: sa[1])
    print(
        f"{len(aucs)} evaluations, {stopped}; best validation auc {best_auc:.4f} at step {best_step:,}"
    )

    fig = result.plot("auc")
    if trainrun.save_plot(fig, "train_and_evaluate.png") is None:
        fig.savefig("train_and_evaluate.png", dpi=100)

    # The best export, scored on the test split it never saw.
    exported = trainrun.load_exported(Path(result.export_results[-1]))
    probabilities = exported.predict(test.drop(columns="churn"))["probabilities"][:, 1]
    from trainrun.modules.metrics import roc_auc

    test_auc = roc_auc(probabilities, (test["churn"] == "Yes").to_numpy(float))
    print(f"best export: {result.export_results[-1]}")
    print(f"test auc = {test_auc:.4f}")
    trainrun.write_evaluation(test_auc=test_auc, best_step=best_step, val_auc=best_auc)
    return {"test_auc": test_auc, "best_step": best_step, "val_auc": best_auc}


if __name__ == "__main__":
    main()
