"""Data-parallel training on torch.distributed: the process group, ranks, and exact gathers.

An estimator script launched by ``torchrun`` (or ``trainrun run --nproc N``) trains
data-parallel with no code change. torchrun sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every process; the first
estimator that works calls :func:`setup`, which joins the process group (gloo on the
CPU, NCCL when the estimator runs on CUDA). From then on:

- each rank reads its own shard of the input (:mod:`trainrun.inputs._sharding`);
- gradients are averaged by :class:`~torch.nn.parallel.DistributedDataParallel`, and each
  rank's loss is scaled so that the averaged gradient is the gradient of the *global*
  batch: N steps on 2 ranks give the weights of N steps in one process on the same
  global batches (:func:`step_fn`);
- evaluation gathers every rank's logits, labels and weights and computes the metrics
  (the exact AUC included) over all of them, in the one-process order
  (:func:`gather_evaluation`);
- only rank 0 (:func:`is_chief`) writes checkpoints, TensorBoard events, the run's
  metrics and exports.

>>> is_distributed()      # a plain process
False
>>> rank(), world_size(), is_chief()
(0, 1, True)
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from trainrun.training.callbacks import Callback
from trainrun.training.loop import TrainState

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "GlobalLosses",
    "TIMEOUT_ENV",
    "agree",
    "all_gather_object",
    "all_gather_rows",
    "backend_for",
    "barrier",
    "broadcast_int",
    "fold_pieces",
    "gather_evaluation",
    "is_chief",
    "is_distributed",
    "launched",
    "rank",
    "setup",
    "step_fn",
    "world_size",
]

#: Seconds a collective may wait for the other ranks before failing (a dead rank).
TIMEOUT_ENV = "TRAINRUN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0


def launched() -> bool:
    """True when torchrun (or a compatible launcher) started this process as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def is_distributed() -> bool:
    """True once this process belongs to a process group of more than one rank."""
    dist = torch.distributed
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def rank() -> int:
    """This process's global rank (0 outside a process group)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together (1 outside a process group)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_chief() -> bool:
    """Rank 0, the only one that writes checkpoints, events, run metrics and exports."""
    return rank() == 0


def _timeout() -> datetime.timedelta:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return datetime.timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        from trainrun.exceptions import InputError

        raise InputError(
            f"{TIMEOUT_ENV} must be a positive number of seconds (how long a rank waits for "
            f"the others). Received: {TIMEOUT_ENV}={raw!r}"
        )
    return datetime.timedelta(seconds=seconds)


def backend_for(device: Any) -> str:
    """The process group's backend for an estimator on ``device``: NCCL on CUDA, else gloo.

    NCCL moves tensors between GPUs; gloo serves the CPU (and MPS, which NCCL cannot).
    ``RunConfig(device="auto")`` resolves to CUDA where a GPU is visible, so a script
    runs on NCCL there and on gloo elsewhere with no change.

    >>> backend_for("cpu"), backend_for("cuda:1"), backend_for(None)
    ('gloo', 'nccl', 'gloo')
    """
    return "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"


def _comm_device() -> torch.device:
    """Where a collective's tensors must be: the current GPU under NCCL, else the CPU."""
    if is_distributed() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def setup(device: Any = None) -> bool:
    """Join the process group that torchrun's environment describes; True when distributed.

    Called by estimators before their first step; a no-op in a plain process. A group
    that already exists (made by the script, or by a host such as Ray Train's
    TorchTrainer) is used as it is. The backend is NCCL when
    ``device`` is a CUDA device (each rank then uses ``cuda:LOCAL_RANK``), else gloo.
    """
    dist = torch.distributed
    if not dist.is_available():
        return False
    if dist.is_initialized():  # made by the script or a host such as Ray Train
        return is_distributed()
    if launched():
        backend = backend_for(device)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=_timeout())
        atexit.register(_destroy_group)
    return is_distributed()


def _destroy_group() -> None:
    """Destroy the process group :func:`setup` made, while the interpreter is still whole.

    A gloo group left to the interpreter's finalization is torn down with its C++ worker
    threads still holding Python objects; a worker thread that takes the GIL during
    finalization is ended by a forced unwind, and the process dies of SIGABRT ("terminate
    called without an active exception") after the script has finished: torchrun reports
    the run failed. A group the script or a host made is theirs to destroy.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        # A finished collective's work object is freed by a gloo worker thread after the
        # caller has moved on, and freeing it takes the GIL (it holds Python tensors): let
        # it, before the interpreter finalizes (a thread taking the GIL then is aborted).
        time.sleep(0.05)  # releases the GIL
        try:
            dist.destroy_process_group()
        except Exception:  # exiting anyway: a peer already gone must not mask the exit status
            pass
        time.sleep(0.05)


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a plain process)."""
    if is_distributed():
        torch.distributed.barrier()


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every rank (e.g. the shuffle seed of an unseeded input)."""
    if not is_distributed():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=_comm_device())
    torch.distributed.broadcast(t, src=0)
    return int(t.item())


def agree(has_batch: bool, rows: int) -> tuple[bool, int]:
    """One collective per step of a streamed input: (every rank has a batch, global rows).

    Ranks whose shards hold different numbers of batches stop together, at the first
    rank that runs out, so that no rank waits forever in a gradient reduction.
    """
    if not is_distributed():
        return has_batch, rows
    t = torch.tensor([1 if has_batch else 0, rows], dtype=torch.int64, device=_comm_device())
    torch.distributed.all_reduce(t)
    return int(t[0]) == world_size(), int(t[1])


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def all_gather_rows(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same trailing shape and dtype, any number of rows), in rank order.

    gloo's all_gather needs equal shapes: each rank pads to the longest, then trims.
    The parts come back on ``tensor``'s device (they travel on the GPU under NCCL).
    """
    if not is_distributed():
        return [tensor]
    device = _comm_device()
    sizes = all_gather_object(int(tensor.shape[0]))
    longest = max(sizes)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=device)
    padded[: tensor.shape[0]] = tensor.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    torch.distributed.all_gather(parts, padded.contiguous())
    return [p[:n].to(tensor.device) for p, n in zip(parts, sizes, strict=True)]


# ---------------------------------------------------------------- training


def _ddp(estimator: Any) -> Any:
    """The estimator's network wrapped in DistributedDataParallel (one wrapper per network).

    The wrapper shares the network's parameters; checkpoints keep saving the bare
    network (no ``module.`` prefix). Building it broadcasts rank 0's weights and buffers,
    so every rank starts from the same model even without a seed.
    """
    from torch.nn.parallel import DistributedDataParallel

    network = estimator.network_
    cached = getattr(estimator, "_ddp_wrapper", None)
    if cached is not None and cached.module is network:
        return cached
    device = estimator.device_
    ids = [device] if device.type == "cuda" else None
    # Unused parameters are allowed: a custom model or an optional part may skip some.
    wrapper = DistributedDataParallel(
        network, device_ids=ids, find_unused_parameters=_has_frozen_paths(network)
    )
    estimator._ddp_wrapper = wrapper
    return wrapper


def _has_frozen_paths(network: Any) -> bool:
    # Models of trainrun use every trainable parameter in every forward; a user's
    # model_fn module may not, and DDP must then look for the unused ones (slower).
    return not type(network).__module__.startswith("trainrun.")


def step_fn(estimator: Any, global_rows: Callable[[], int]) -> Callable[[Any], torch.Tensor]:
    """One data-parallel optimisation step on this rank's part of a global batch.

    DDP averages the ranks' gradients. Each rank scales its loss so that this average
    is the gradient of the loss over the whole global batch: by ``world * n / N`` for
    the default ``sum_over_batch_size`` reduction (``n`` rows here, ``N`` in the global
    batch), by ``world`` for ``sum``. Returns this rank's loss, detached, as shown to
    people.
    """
    module = _ddp(estimator)
    head, opts, to_device = estimator.head_, estimator.optimizers_, estimator._to_device
    world = world_size()
    summed = getattr(head, "loss_reduction", "sum_over_batch_size") == "sum"

    def step(batch: Any) -> torch.Tensor:
        batch = to_device(batch)
        logits = module(batch.features)
        loss = head.loss(logits, batch.labels, batch.weights)
        scale = float(world) if summed else world * logits.shape[0] / max(global_rows(), 1)
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        (loss * scale).backward()
        for opt in opts:
            opt.step()
        return head.reported_loss(loss.detach(), logits, batch.labels, batch.weights)

    return step


# ---------------------------------------------------------------- evaluation


def gather_evaluation(
    logits: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    losses: Sequence[torch.Tensor],
    indices: Sequence[int],
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Every rank's evaluation batches, as one list each, ordered by global batch index.

    ``indices`` holds the global index of each of this rank's batches. With the same
    batches in the same order as one process sees them, the metrics computed from the
    result equal one-process ``evaluate`` exactly.
    """
    if not is_distributed():
        return list(logits), list(labels), list(weights), list(losses)

    def spec(parts: Sequence[torch.Tensor]) -> tuple[tuple[int, ...], str] | None:
        return (tuple(parts[0].shape[1:]), str(parts[0].dtype)) if parts else None

    mine = (list(indices), [int(t.shape[0]) for t in logits], spec(logits), spec(labels))
    meta = all_gather_object((*mine, spec(weights), spec(losses)))
    specs = [next((m[j] for m in meta if m[j] is not None), None) for j in range(2, 6)]
    if specs[0] is None:  # no rank has a batch
        return [], [], [], []

    def gather(parts: Sequence[torch.Tensor], j: int) -> list[torch.Tensor] | None:
        found = specs[j]
        if found is None:
            return None
        trailing, dtype = found[0], getattr(torch, found[1].removeprefix("torch."))
        if parts:
            local = torch.cat([p.detach().cpu().reshape(-1, *trailing) for p in parts])
        else:
            local = torch.zeros((0, *trailing), dtype=dtype)
        return all_gather_rows(local)

    columns = [
        gather(logits, 0),
        gather(labels, 1),
        gather(weights, 2),
        gather([loss.reshape(1) for loss in losses], 3),
    ]
    chunks: dict[int, list[torch.Tensor | None]] = {}
    for r, (idx, sizes, *_) in enumerate(meta):
        split = [
            None if col is None else (torch.split(col[r], sizes) if j < 3 else col[r])
            for j, col in enumerate(columns)
        ]
        for k, i in enumerate(idx):
            row: list[torch.Tensor | None] = [None if s is None else s[k] for s in split]
            loss = row[3]
            row[3] = None if loss is None else loss.reshape(())
            chunks[i] = row
    order = sorted(chunks)
    out = [[chunks[i][j] for i in order] if columns[j] is not None else [] for j in range(4)]
    return out[0], out[1], out[2], out[3]  # type: ignore[return-value]


def fold_pieces(acc: Any, pieces: Sequence[tuple[int, Any, dict[str, Any]]]) -> dict[str, float]:
    """The metrics of every rank's evaluation pieces, folded in global batch order.

    ``pieces`` holds this rank's ``(global batch index, piece, its columns)``, made by
    :meth:`~trainrun.modules.metrics.MetricAccumulator.piece` and
    :meth:`~trainrun.modules.metrics.Piece.take_columns`. Rank 0 receives every rank's
    pieces, folds them into ``acc`` by global index (the order one process adds the
    same batches in, so that in memory the result is one process's, to the last bit),
    computes the metrics and hands them to every rank. A rank keeps only its own
    batches' sums and score columns meanwhile (5 to 9 bytes an example for a binary
    head, nothing per example for the multi-class and regression heads); rank 0 holds
    every rank's columns once, as one process would.
    """
    mine: list[Any] = list(pieces)
    everything: list[Any] | None
    if not is_distributed():
        everything = [mine]
    else:
        everything = [None] * world_size() if is_chief() else None
        torch.distributed.gather_object(mine, everything, dst=0)
    outcome: list[Any] = [None]
    if is_chief():
        assert everything is not None
        merged = sorted(
            (i, r, k) for r, part in enumerate(everything) for k, (i, _, _) in enumerate(part)
        )
        try:
            for _, r, k in merged:
                _, piece, columns = everything[r][k]
                everything[r][k] = None  # each piece's columns freed once folded
                piece.put_columns(columns)
                acc.fold(piece)
            outcome[0] = ("ok", acc.result())
        except Exception as exc:  # every rank raises it, or the others would wait forever
            outcome[0] = ("error", exc)
    if is_distributed():
        torch.distributed.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


class GlobalLosses(Callback):
    """The losses every rank computed at the same steps, averaged over the ranks.

    First among the training callbacks, so that progress, the history, the run's
    metrics, the NaN guard and EarlyStopping on the training loss all see the loss of
    the global batch, the same on every rank: a NaN on one rank stops every rank at
    once, and no rank stops early alone. One small all-reduce per synchronisation of
    the loop (every 20 steps at most), none while an exception unwinds the loop (the
    other ranks may not be there to answer).
    """

    def on_losses(self, state: TrainState) -> None:
        if not state.step_losses or not is_distributed() or sys.exc_info()[0] is not None:
            return
        steps = [step for step, _ in state.step_losses]
        losses = torch.tensor(
            [loss for _, loss in state.step_losses], dtype=torch.float64, device=_comm_device()
        )
        torch.distributed.all_reduce(losses)
        state.step_losses = list(zip(steps, (losses / world_size()).tolist(), strict=True))
