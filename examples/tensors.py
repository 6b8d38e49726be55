"""Tensors of rank 0, 1 and 2, their dtypes and shapes, and a small graph with its gradients.

The chapter's first TensorFlow example (constants of rank 0, 1 and 2; ``var3 =
var1 + var2``) in PyTorch, where there is no session: operations run at once,
and autograd records the graph that ``backward()`` walks.

    python examples/tensors.py
    python examples/tensors.py --fill 6.7 --rows 3 --cols 3
    trainrun run examples/tensors.py
"""

from __future__ import annotations

import torch

import trainrun

FLAGS = trainrun.flags(
    trainrun.flag_numeric("var1", 0.1, "the rank-0 constant"),
    trainrun.flag_numeric("var2", 2.3, "added to var1"),
    trainrun.flag_numeric("fill", 4.5, "value of the rank-1 tensor"),
    trainrun.flag_integer("length", 5, "length of the rank-1 tensor"),
    trainrun.flag_integer("rows", 3, "rows of the rank-2 tensor"),
    trainrun.flag_integer("cols", 3, "columns of the rank-2 tensor"),
)


def describe(name: str, t: torch.Tensor) -> None:
    print(f"{name}: rank {t.dim()}, shape {tuple(t.shape)}, dtype {t.dtype}")
    print(f"  {t!r}")


def main() -> None:
    # rank 0: a scalar. float32 is the default floating type, as in TensorFlow.
    var1 = torch.tensor(FLAGS.var1)
    var2 = torch.tensor(FLAGS.var2)
    var3 = var1 + var2
    describe("var1", var1)
    describe("var2", var2)
    describe("var3 = var1 + var2", var3)

    # rank 1 and rank 2: tf$constant(4.5, shape=shape(5L)) is torch.full((5,), 4.5)
    var4 = torch.full((FLAGS.length,), FLAGS.fill)
    var5 = torch.full((FLAGS.rows, FLAGS.cols), 6.7)
    describe("var4", var4)
    describe("var5", var5)

    # every element of a tensor has one dtype; casting makes a new tensor
    ints = torch.arange(4)
    describe("arange(4)", ints)
    describe("arange(4).to(float64)", ints.to(torch.float64))
    describe("var5 > 6", var5 > 6)

    # A small computation graph: y = sum(w * x + b) ** 2 / n. Autograd records it as it
    # runs; backward() gives dy/dw and dy/db.
    x = torch.linspace(0.0, 1.0, FLAGS.length)
    w = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(-0.5, requires_grad=True)
    z = w * x + b
    y = (z**2).mean()
    y.backward()
    print(f"graph: y = mean((w*x + b)^2) with w={w.item()}, b={b.item()}")
    print(f"  y = {y.item():.4f}; grad_fn chain: {y.grad_fn.name()} <- {z.grad_fn.name()}")
    # analytic gradients, to show autograd's are right: dy/dw = mean(2 z x), dy/db = mean(2 z)
    dw = (2 * z * x).mean().item()
    db = (2 * z).mean().item()
    print(f"  dy/dw = {w.grad.item():.4f} (by hand {dw:.4f})")
    print(f"  dy/db = {b.grad.item():.4f} (by hand {db:.4f})")

    trainrun.log_metrics(step=0, y=y.item(), grad_w=w.grad.item(), grad_b=b.grad.item())
    trainrun.write_evaluation(var3=var3.item(), y=y.item(), grad_w=w.grad.item())


if __name__ == "__main__":
    main()
