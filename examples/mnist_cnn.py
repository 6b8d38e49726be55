"""The chapter's LeNet-style CNN, written at a low level: explicit weights, manual batching.

conv 16@5x5 (tanh) + max-pool, conv 32@5x5 (relu) + max-pool, dense 512 (relu),
dropout (keep 0.5), softmax over 10 classes; Adam with learning rate 1e-4, batches
of 128. Training accuracy of the current batch is printed every 100 batches, and
test accuracy is computed in batches at the end. It reads MNIST-format IDX files
(raw or gzip) from --data-dir: MNIST itself, or Fashion-MNIST (Debian:
``apt-get install dataset-fashion-mnist``, the default folder).

    python examples/mnist_cnn.py --epochs 1
    python examples/mnist_cnn.py --data-dir ~/data/mnist --epochs 10
    trainrun run examples/mnist_cnn.py --flag epochs=2

TensorBoard events go to the run's tensorboard/ folder inside a training run,
else to --logdir. TRAINRUN_MAX_STEPS (or --max-steps) caps the training batches.
"""

from __future__ import annotations

import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import trainrun
from trainrun.data import FASHION_MNIST_DIR, load_mnist
from trainrun.runs import active

FLAGS = trainrun.flags(
    trainrun.flag_string("data_dir", str(FASHION_MNIST_DIR), "folder of the MNIST-format files"),
    trainrun.flag_integer("epochs", 10, "passes over the training data"),
    trainrun.flag_integer("batch_size", 128, "examples per batch"),
    trainrun.flag_numeric("learning_rate", 1e-4, "Adam's learning rate"),
    trainrun.flag_numeric("keep_prob", 0.5, "probability of keeping a dense unit in training"),
    trainrun.flag_integer("log_every", 100, "print the batch accuracy every N batches"),
    trainrun.flag_integer("max_steps", 0, "stop after this many batches in all (0: no cap)"),
    trainrun.flag_integer("seed", 42, "random seed"),
    trainrun.flag_string("logdir", "logs/mnist_cnn", "TensorBoard folder when not in a run"),
)


class LeNet(nn.Module):
    """The chapter's graph: weights held as parameters and applied with functional ops."""

    def __init__(self, keep_prob: float) -> None:
        super().__init__()
        self.keep_prob = keep_prob
        # the chapter's initialisation: uniform(-0.4, 0.4) for the convolutions,
        # truncated normal (sd 0.1) for the dense layers, biases zero
        self.conv1_w = nn.Parameter(torch.empty(16, 1, 5, 5).uniform_(-0.4, 0.4))
        self.conv2_w = nn.Parameter(torch.empty(32, 16, 5, 5).uniform_(-0.4, 0.4))
        self.dense1_w = nn.Parameter(nn.init.trunc_normal_(torch.empty(512, 7 * 7 * 32), std=0.1))
        self.dense2_w = nn.Parameter(nn.init.trunc_normal_(torch.empty(10, 512), std=0.1))
        # tf$constant biases in the chapter: zero and not trained
        self.register_buffer("conv1_b", torch.zeros(16))
        self.register_buffer("conv2_b", torch.zeros(32))
        self.register_buffer("dense1_b", torch.zeros(512))
        self.register_buffer("dense2_b", torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(F.conv2d(x, self.conv1_w, self.conv1_b, padding=2))  # 'SAME'
        x = F.max_pool2d(x, 2)  # 28 -> 14
        x = torch.relu(F.conv2d(x, self.conv2_w, self.conv2_b, padding=2))
        x = F.max_pool2d(x, 2)  # 14 -> 7
        x = torch.relu(F.linear(x.flatten(1), self.dense1_w, self.dense1_b))
        x = F.dropout(x, p=1.0 - self.keep_prob, training=self.training)
        return F.linear(x, self.dense2_w, self.dense2_b)  # logits; softmax is in the loss


def to_tensors(images, labels) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)  # [N, 1, 28, 28]
    return x, torch.from_numpy(labels).long()


def batch_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    """(number correct, summed loss) for one batch with dropout off."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    correct = int((logits.argmax(1) == y).sum())
    return correct, float(F.cross_entropy(logits, y, reduction="sum"))


def main() -> dict[str, float]:
    torch.manual_seed(FLAGS.seed)
    try:
        xtrain, ytrain = to_tensors(*load_mnist(FLAGS.data_dir, "train"))
        xtest, ytest = to_tensors(*load_mnist(FLAGS.data_dir, "t10k"))
    except FileNotFoundError as exc:
        sys.exit(f"mnist_cnn.py: {exc}")  # exit code 1 with the message, no traceback
    print(f"train: {tuple(xtrain.shape)}, test: {tuple(xtest.shape)} from {FLAGS.data_dir}")

    cap = int(os.environ.get("TRAINRUN_MAX_STEPS") or 0)
    caps = [s for s in (FLAGS.max_steps, cap) if s > 0]
    max_steps = min(caps) if caps else 0

    from torch.utils.tensorboard import SummaryWriter

    logdir = active.tensorboard_dir() or FLAGS.logdir
    writer = SummaryWriter(str(logdir))

    model = LeNet(FLAGS.keep_prob)
    optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.learning_rate)
    batch_size = FLAGS.batch_size
    # ceil, not the chapter's 1 + n %/% batch_size, which adds an empty batch when n divides
    batches_per_epoch = math.ceil(len(xtrain) / batch_size)
    step = 0
    started = time.perf_counter()
    for epoch in range(1, FLAGS.epochs + 1):
        for batch_no in range(batches_per_epoch):
            if max_steps and step >= max_steps:
                break
            start = batch_no * batch_size
            xb, yb = xtrain[start : start + batch_size], ytrain[start : start + batch_size]
            if batch_no % FLAGS.log_every == 0:
                correct, _ = batch_accuracy(model, xb, yb)
                acc = correct / len(yb)
                print(f"Epoch {epoch}, step {batch_no}: training accuracy={acc:.4f}", flush=True)
                writer.add_scalar("train/batch_accuracy", acc, step)
                trainrun.log_metrics(step=step, epoch=epoch, batch_accuracy=acc)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 10 == 0:
                writer.add_scalar("train/loss", loss.item(), step)
            step += 1
        print()
    train_seconds = time.perf_counter() - started

    # Test accuracy in batches, to bound memory. The chapter averaged the batch
    # accuracies, which weighs the short last batch too much; this counts examples.
    correct, loss_sum = 0, 0.0
    for start in range(0, len(xtest), batch_size):
        c, s = batch_accuracy(
            model, xtest[start : start + batch_size], ytest[start : start + batch_size]
        )
        correct, loss_sum = correct + c, loss_sum + s
    test_acc, test_loss = correct / len(xtest), loss_sum / len(xtest)
    print(f"Test accuracy={test_acc:.4f}")
    writer.add_scalar("test/accuracy", test_acc, step)
    writer.add_scalar("test/loss", test_loss, step)
    writer.close()
    result = {
        "accuracy": test_acc,
        "loss": test_loss,
        "global_step": step,
        "train_seconds": round(train_seconds, 2),
    }
    trainrun.write_evaluation(result)
    return result


if __name__ == "__main__":
    main()
