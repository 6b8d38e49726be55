"""The chapter's linear regression by plain gradient descent.

50,000 points with x ~ U(0, 1) and y = N(0.8, 0.04) + x * N(1.3, 0.05); the model
y_pred = beta0 + beta1 * x starts from beta0 = 0 and beta1 ~ U(-1, 1), and 80 steps
of gradient descent (learning rate 0.6) on the mean squared error find
beta0 ~ 0.80 and beta1 ~ 1.30 (the chapter printed 0.8006 and 1.2983).

    python examples/regression.py
    python examples/regression.py --learning-rate 0.3 --steps 200
    trainrun run examples/regression.py

TRAINRUN_MAX_STEPS caps the number of steps (for smoke tests).
"""

from __future__ import annotations

import os

import torch

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_integer("n", 50_000, "number of points"),
    trainrun.flag_numeric("learning_rate", 0.6, "gradient-descent step size"),
    trainrun.flag_integer("steps", 80, "gradient-descent steps"),
    trainrun.flag_integer("print_every", 10, "print and log the coefficients every N steps"),
    trainrun.flag_integer("seed", 42, "random seed for the data and the start"),
)


def main() -> dict[str, float]:
    steps = FLAGS.steps
    cap = int(os.environ.get("TRAINRUN_MAX_STEPS") or 0)
    if cap > 0:
        steps = min(steps, cap)
    gen = torch.Generator().manual_seed(FLAGS.seed)
    x = torch.rand(FLAGS.n, generator=gen)
    y = torch.normal(0.8, 0.04, (FLAGS.n,), generator=gen) + x * torch.normal(
        1.3, 0.05, (FLAGS.n,), generator=gen
    )

    beta0 = torch.zeros(1, requires_grad=True)
    beta1 = (torch.rand(1, generator=gen) * 2 - 1).requires_grad_()

    def loss_fn() -> torch.Tensor:
        return ((beta0 + beta1 * x - y) ** 2).mean()

    for step in range(steps + 1):
        if step % FLAGS.print_every == 0 or step == steps:
            loss = loss_fn().item()
            print(f"Step {step}: beta0={beta0.item():.4f}, beta1={beta1.item():.4f}")
            trainrun.log_metrics(step=step, loss=loss, beta0=beta0.item(), beta1=beta1.item())
        if step == steps:
            break
        # plain gradient descent, written out (torch.optim.SGD does the same, but its
        # first step imports torch's compiler, seconds of start-up for 80 tiny steps)
        beta0.grad = beta1.grad = None
        loss_fn().backward()
        with torch.no_grad():
            beta0 -= FLAGS.learning_rate * beta0.grad
            beta1 -= FLAGS.learning_rate * beta1.grad

    result = {"beta0": beta0.item(), "beta1": beta1.item(), "loss": loss_fn().item()}
    trainrun.write_evaluation(result)
    return result


if __name__ == "__main__":
    main()
