"""A custom model with trainrun's machinery: a residual MLP on the telco churn data.

``trainrun.Estimator(model_fn=..., head=...)`` trains any torch module: the feature
columns become its input tensor, the head gives the loss, metrics and predictions, and
trainrun keeps the model directory, checkpoints, TensorBoard events, the run record
and the export. Here the module is a small residual MLP; its width and depth are
flags, so ``trainrun run`` or ``tuning_run`` can try other values. The baseline
(``BaselineClassifier``, the class prior) is the bar the model must beat.

    python examples/custom_model.py
    python examples/custom_model.py --width 128 --blocks 3
    trainrun run examples/custom_model.py --flag blocks=1

TRAINRUN_MAX_STEPS caps the training steps (for smoke tests).
"""

from __future__ import annotations

import torch

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_integer("width", 64, "units of each residual block"),
    trainrun.flag_integer("blocks", 2, "residual blocks"),
    trainrun.flag_integer("epochs", 10, "passes over the training data"),
    trainrun.flag_integer("seed", 42, "seed of the split, the weights and the shuffles"),
)


class ResidualMLP(torch.nn.Module):
    """in_features -> width, then ``blocks`` x (x + MLP(x)), then the head's logits."""

    def __init__(self, in_features: int, units: int, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(in_features, width)
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(
                torch.nn.LayerNorm(width), torch.nn.Linear(width, width), torch.nn.ReLU(),
                torch.nn.Linear(width, width),
            )
            for _ in range(blocks)
        )  # fmt: skip
        self.out = torch.nn.Linear(width, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(torch.relu(h))


def main() -> dict[str, float]:
    data = trainrun.load_churn("wa_churn")
    test = data.sample(frac=0.2, random_state=FLAGS.seed)
    train = data.drop(test.index)
    columns = trainrun.columns_from_frame(train, exclude="churn", normalize=True)
    config = trainrun.RunConfig(seed=FLAGS.seed, log_step_count_steps=20)

    def churn(frame, **kw):
        return trainrun.input_fn(frame, response="churn", **kw)

    baseline = trainrun.BaselineClassifier(label_vocabulary=["No", "Yes"], config=config)
    baseline.train(churn(train, epochs=1))
    bar = baseline.evaluate(churn(test, shuffle=False))

    model = trainrun.Estimator(
        model_fn=ResidualMLP,
        params={"width": FLAGS.width, "blocks": FLAGS.blocks},
        head=trainrun.BinaryHead(label_vocabulary=["No", "Yes"]),
        feature_columns=columns,
        config=config,
    )
    print(model.train(churn(train, epochs=FLAGS.epochs, seed=FLAGS.seed)))
    evaluation = model.evaluate(churn(test, shuffle=False))
    print(f"baseline: accuracy {bar['accuracy']:.4f}, average_loss {bar['average_loss']:.4f}")
    for name, value in evaluation.items():
        print(f"{name} = {value}")
    return evaluation


if __name__ == "__main__":
    main()
