"""The chapter's Keras CNN in PyTorch, logging to TensorBoard as callback_tensorboard did.

conv 32@5x5 relu, max-pool, dropout 0.25, conv 32@5x5 relu, max-pool, dropout 0.25,
dense 256 relu, dropout 0.4, softmax 10; RMSprop, batches of 128, the last 20% of
the training images held out for validation (as Keras' validation_split).

TensorBoard gets, in one folder: training and validation loss and accuracy per
epoch (tags loss/train, loss/validation, accuracy/...), a histogram of every
weight every --histogram-freq epochs, images of the weights when --write-images
is on (off by default: the chapter saw 1.75 GB of events for 5 epochs, mostly
images), and the model graph. The folder's size is printed at the end.

    python examples/mnist_tensorboard.py --epochs 2
    tensorboard --logdir logs/mnist_tensorboard
    trainrun run examples/mnist_tensorboard.py --flag epochs=2 && trainrun board

TRAINRUN_MAX_STEPS (or --max-steps) caps the training batches.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

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
    trainrun.flag_numeric("learning_rate", 0.001, "RMSprop's learning rate (Keras' default)"),
    trainrun.flag_numeric("validation_split", 0.2, "fraction of training data held out"),
    trainrun.flag_integer("histogram_freq", 1, "weight histograms every N epochs (0: none)"),
    trainrun.flag_boolean("write_images", False, "write the weights as images each epoch"),
    trainrun.flag_boolean("write_graph", True, "write the model graph"),
    trainrun.flag_integer("max_steps", 0, "stop after this many batches in all (0: no cap)"),
    trainrun.flag_integer("seed", 42, "random seed"),
    trainrun.flag_string(
        "logdir", "logs/mnist_tensorboard", "TensorBoard folder when not in a run"
    ),
)


def keras_cnn() -> nn.Sequential:
    model = nn.Sequential(
        nn.Conv2d(1, 32, 5),  # 28 -> 24 ('valid' padding, as Keras' default)
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> 12
        nn.Dropout(0.25),
        nn.Conv2d(32, 32, 5),  # -> 8
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> 4
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(4 * 4 * 32, 256),
        nn.ReLU(),
        nn.Dropout(0.4),
        nn.Linear(256, 10),  # softmax is in the loss
    )
    # Keras initialises kernels glorot-uniform and biases with zeros
    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean loss, accuracy) with dropout off, in batches of 1,000."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), 1000):
            logits = model(x[start : start + 1000])
            target = y[start : start + 1000]
            loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    model.train()
    n = max(len(x), 1)
    return loss_sum / n, correct / n


def weight_image(weight: torch.Tensor) -> torch.Tensor:
    """A weight tensor as one grey image [1, H, W] scaled to 0..1 (conv kernels tiled)."""
    w = weight.detach()
    if w.dim() == 4:  # [out, in, kh, kw] -> tiles of kh x kw, one row per output channel
        out, inp, kh, kw = w.shape
        w = w.permute(0, 2, 1, 3).reshape(out * kh, inp * kw)
    elif w.dim() == 1:
        w = w.unsqueeze(0)
    w = (w - w.min()) / (w.max() - w.min()).clamp_min(1e-12)
    return w.unsqueeze(0)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> dict[str, float]:
    torch.manual_seed(FLAGS.seed)
    try:
        images, labels = load_mnist(FLAGS.data_dir, "train")
        test_images, test_labels = load_mnist(FLAGS.data_dir, "t10k")
    except FileNotFoundError as exc:
        sys.exit(f"mnist_tensorboard.py: {exc}")  # exit code 1 with the message, no traceback
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels).long()
    # Keras' validation_split takes the last fraction of the data, before shuffling
    n_val = int(len(x) * FLAGS.validation_split)
    xtrain, ytrain, xval, yval = x[: len(x) - n_val], y[: len(y) - n_val], x[-n_val:], y[-n_val:]
    xtest = torch.from_numpy(test_images).float().div_(255.0).unsqueeze(1)
    ytest = torch.from_numpy(test_labels).long()
    print(f"train {len(xtrain)}, validation {n_val}, test {len(xtest)} from {FLAGS.data_dir}")

    cap = int(os.environ.get("TRAINRUN_MAX_STEPS") or 0)
    caps = [s for s in (FLAGS.max_steps, cap) if s > 0]
    max_steps = min(caps) if caps else 0

    from torch.utils.tensorboard import SummaryWriter

    logdir = Path(active.tensorboard_dir() or FLAGS.logdir)
    writer = SummaryWriter(str(logdir))
    model = keras_cnn()
    optimizer = torch.optim.RMSprop(
        model.parameters(), lr=FLAGS.learning_rate, alpha=0.9, eps=1e-7
    )  # Keras' rho=0.9 and epsilon=1e-7
    if FLAGS.write_graph:
        with warnings.catch_warnings():
            # add_graph traces with torch.jit, which torch now marks deprecated;
            # it is still the only way torch's SummaryWriter draws a graph.
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.trace", category=DeprecationWarning
            )
            writer.add_graph(model, xtrain[:2])

    step = 0
    epoch = 0
    started = time.perf_counter()
    for epoch in range(1, FLAGS.epochs + 1):
        order = torch.randperm(len(xtrain))  # Keras' fit() shuffles each epoch
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, len(xtrain), FLAGS.batch_size):
            if max_steps and step >= max_steps:
                break
            idx = order[start : start + FLAGS.batch_size]
            xb, yb = xtrain[idx], ytrain[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # running training metrics, as Keras reports them (dropout on)
            loss_sum += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            step += 1
        train_loss, train_acc = loss_sum / max(seen, 1), correct / max(seen, 1)
        val_loss, val_acc = evaluate(model, xval, yval)
        print(
            f"Epoch {epoch}/{FLAGS.epochs}: loss={train_loss:.4f} accuracy={train_acc:.4f} "
            f"val_loss={val_loss:.4f} val_accuracy={val_acc:.4f}",
            flush=True,
        )
        writer.add_scalar("loss/train", train_loss, epoch)
        writer.add_scalar("loss/validation", val_loss, epoch)
        writer.add_scalar("accuracy/train", train_acc, epoch)
        writer.add_scalar("accuracy/validation", val_acc, epoch)
        trainrun.log_metrics(
            step=epoch, loss=train_loss, accuracy=train_acc, val_loss=val_loss, val_accuracy=val_acc
        )
        if FLAGS.histogram_freq > 0 and epoch % FLAGS.histogram_freq == 0:
            for name, param in model.named_parameters():
                writer.add_histogram(name, param.detach(), epoch)
        if FLAGS.write_images:
            for name, param in model.named_parameters():
                if name.endswith("weight"):
                    writer.add_image(name, weight_image(param), epoch)
        if max_steps and step >= max_steps:
            break
    train_seconds = time.perf_counter() - started

    test_loss, test_acc = evaluate(model, xtest, ytest)
    print(f"Test accuracy={test_acc:.4f} (loss {test_loss:.4f})")
    writer.add_scalar("accuracy/test", test_acc, epoch)
    writer.add_scalar("loss/test", test_loss, epoch)
    writer.close()
    size = folder_size(logdir)
    print(f"TensorBoard events: {size / 1024:.1f} KiB in {logdir}")
    result = {
        "accuracy": test_acc,
        "loss": test_loss,
        "global_step": step,
        "train_seconds": round(train_seconds, 2),
        "event_bytes": size,
    }
    trainrun.write_evaluation(result)
    return result


if __name__ == "__main__":
    main()
