"""A GRU over a sequence column: sentiment of short synthetic reviews.

Each review is a list of words of varying length; ``sequence_categorical_column_with_
vocabulary_list`` maps the words to ids, ``embedding_column`` learns their vectors and
``SequenceFeatures`` hands the custom model a padded ``[N, T, d]`` tensor and the
lengths. The reviewer and the product share one embedding table
(``shared_embeddings``: both are ids of the same people), given to the model as
context beside the GRU's last state.

    python examples/sequence_gru.py
    trainrun run examples/sequence_gru.py --flag hidden=32

TRAINRUN_MAX_STEPS caps the training steps (for smoke tests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_integer("hidden", 16, "GRU state size"),
    trainrun.flag_integer("epochs", 15, "passes over the training data"),
    trainrun.flag_integer("rows", 2000, "synthetic reviews"),
    trainrun.flag_integer("seed", 0, "seed of the data, the weights and the shuffles"),
)

WORDS = {"great": 2, "good": 1, "fine": 0, "meh": 0, "bad": -1, "awful": -2, "not": 0}


def reviews(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = list(WORDS)
    rows, labels = [], []
    for _ in range(n):
        review = list(rng.choice(words, rng.integers(1, 12)))
        score = 0
        for i, w in enumerate(review):  # "not" flips the next word: order matters
            flip = i > 0 and review[i - 1] == "not"
            score += -WORDS[w] if flip else WORDS[w]
        rows.append(review)
        labels.append(int(score > 0))
    people = rng.integers(0, 50, (n, 2))
    return pd.DataFrame(
        {"review": rows, "author": people[:, 0], "seller": people[:, 1], "positive": labels}
    )


class GRUClassifier(torch.nn.Module):
    def __init__(self, in_features: int, units: int, context_features: int, hidden: int = 16):
        super().__init__()
        self.gru = torch.nn.GRU(in_features, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden + context_features, units)

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor, context: torch.Tensor | None):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            seq, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, state = self.gru(packed)
        last = state[-1]
        return self.out(last if context is None else torch.cat([last, context], dim=1))


def main() -> dict[str, float]:
    data = reviews(FLAGS.rows, FLAGS.seed)
    train, test = data.iloc[: int(0.8 * len(data))], data.iloc[int(0.8 * len(data)) :]
    words = trainrun.sequence_categorical_column_with_vocabulary_list("review", list(WORDS))
    author, seller = trainrun.shared_embeddings(
        [
            trainrun.categorical_column_with_identity("author", 50),
            trainrun.categorical_column_with_identity("seller", 50),
        ],
        dimension=4,
    )
    model = trainrun.Estimator(
        model_fn=GRUClassifier,
        params={"hidden": FLAGS.hidden},
        head=trainrun.BinaryHead(),
        feature_columns=[trainrun.embedding_column(words, 8), author, seller],
        optimizer=lambda params: torch.optim.Adam(params, lr=0.01),
        config=trainrun.RunConfig(seed=FLAGS.seed, log_step_count_steps=50),
    )
    fn = trainrun.input_fn(train, response="positive", batch_size=64, epochs=FLAGS.epochs)
    print(model.train(fn))
    evaluation = model.evaluate(trainrun.input_fn(test, response="positive", shuffle=False))
    for name, value in evaluation.items():
        print(f"{name} = {value}")
    return evaluation


if __name__ == "__main__":
    main()
