"""The chapter's canned-estimator example: a DNNClassifier on the telco churn data.

Flags set the four hidden layers, dropout and the activation, so that
``hyperparams.py`` (or ``trainrun run``) can try other values. The data is the
bundled ``wa_churn`` table (7,043 customers), split 80/20 with a fixed seed;
feature columns are proposed from the DataFrame's dtypes (numbers standardised,
categories one-hot). Inside a training run the estimator records its loss
history and evaluation into the run by itself; the history plot is saved with
``save_plot``.

    python examples/churn_estimator.py
    python examples/churn_estimator.py --layer1 128 --dropout 0.1 --activation tanh
    trainrun run examples/churn_estimator.py --flag dropout=0.3

TRAINRUN_MAX_STEPS caps the training steps (for smoke tests).
"""

from __future__ import annotations

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_integer("layer1", 256, "units of hidden layer 1"),
    trainrun.flag_integer("layer2", 128, "units of hidden layer 2"),
    trainrun.flag_integer("layer3", 64, "units of hidden layer 3"),
    trainrun.flag_integer("layer4", 32, "units of hidden layer 4 (0: three layers)"),
    trainrun.flag_numeric("dropout", 0.2, "dropout rate of the hidden layers"),
    trainrun.flag_string(
        "activation", "relu", "hidden activation", ["relu", "tanh", "elu", "selu"]
    ),
    trainrun.flag_integer("epochs", 10, "passes over the training data"),
    trainrun.flag_integer("batch_size", 128, "examples per batch"),
    trainrun.flag_numeric("test_fraction", 0.2, "fraction held out for evaluation"),
    trainrun.flag_integer("seed", 42, "seed of the split, the weights and the shuffles"),
)


def main() -> dict[str, float]:
    data = trainrun.load_churn("wa_churn")
    test = data.sample(frac=FLAGS.test_fraction, random_state=FLAGS.seed)
    train = data.drop(test.index)
    print(f"wa_churn: {len(train):,} training rows, {len(test):,} test rows")

    # numbers standardised with the training set's mean and sd, categories one-hot
    columns = trainrun.columns_from_frame(train, exclude="churn", normalize=True)
    hidden = [u for u in (FLAGS.layer1, FLAGS.layer2, FLAGS.layer3, FLAGS.layer4) if u > 0]
    classifier = trainrun.DNNClassifier(
        hidden_units=hidden,
        feature_columns=columns,
        label_vocabulary=["No", "Yes"],
        activation_fn=FLAGS.activation,
        dropout=FLAGS.dropout,
        config=trainrun.RunConfig(seed=FLAGS.seed, log_step_count_steps=10),
    )

    def churn_input_fn(frame, **kw):
        return trainrun.input_fn(frame, response="churn", batch_size=FLAGS.batch_size, **kw)

    history = classifier.train(churn_input_fn(train, epochs=FLAGS.epochs, seed=FLAGS.seed))
    print(history)
    trainrun.save_plot(history.plot(), "history.png")

    evaluation = classifier.evaluate(churn_input_fn(test, shuffle=False))
    for name, value in evaluation.items():
        print(f"{name} = {value}")
    return evaluation


if __name__ == "__main__":
    main()
