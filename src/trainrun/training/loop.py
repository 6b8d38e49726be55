"""The training loop: begin, each batch, end. Everything else is a callback.

The loop stays lean because it runs once per batch: the step function returns
the loss as a tensor, and the loop turns pending losses into Python floats
(one synchronisation) only every ``sync_every`` steps, when callbacks that log
need them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["TrainState", "train_loop"]


@dataclass
class TrainState:
    """What callbacks see. ``step_losses`` holds (step, loss) pairs since the last sync."""

    global_step: int
    start_step: int
    max_steps: int | None
    examples: int = 0
    step_losses: list[tuple[int, float]] = field(default_factory=list)
    stop_training: bool = False
    estimator: Any = None
    logs: dict[str, Any] = field(default_factory=dict)
    #: Where training is expected to end when the input bounds it (epochs x rows), for
    #: progress: ``max_steps`` when set, else this; None when unknown.
    total_steps: int | None = None
    #: Batches per epoch of the training input, when known (progress shows epochs).
    steps_per_epoch: int | None = None
    epochs: int | None = None

    @property
    def expected_end(self) -> int | None:
        """The global step training should end at: ``max_steps``, the input's end, or None."""
        if self.max_steps is not None and self.total_steps is not None:
            return min(self.max_steps, self.total_steps)
        return self.max_steps if self.max_steps is not None else self.total_steps

    def epoch_of(self, step: int) -> int | None:
        """1-based epoch of the training input that global ``step`` falls in (None: unknown)."""
        if not self.steps_per_epoch:
            return None
        return (max(step - self.start_step, 1) - 1) // self.steps_per_epoch + 1

    @property
    def steps_done(self) -> int:
        return self.global_step - self.start_step


def train_loop(
    step_fn: Callable[[Any], torch.Tensor],
    batches: Iterable[Any],
    callbacks: Sequence[Any],
    state: TrainState,
    *,
    batch_size: Callable[[Any], int],
    sync_every: int = 20,
) -> TrainState:
    """Run ``step_fn`` on each batch until the batches end or ``state.max_steps`` is reached.

    Losses reach the callbacks' ``on_losses`` at every global step that is a multiple
    of ``sync_every`` (one device synchronisation each), and at the end.

    >>> state = TrainState(global_step=0, start_step=0, max_steps=3)
    >>> train_loop(lambda b: torch.tensor(float(b)), range(10), [], state, batch_size=lambda b: 1).global_step
    3
    """
    for cb in callbacks:
        cb.on_train_begin(state)
    pending: list[torch.Tensor] = []
    first_pending = state.global_step + 1
    try:
        if state.max_steps is None or state.global_step < state.max_steps:
            for batch in batches:
                pending.append(step_fn(batch))
                state.global_step += 1
                state.examples += batch_size(batch)
                done = state.max_steps is not None and state.global_step >= state.max_steps
                # Aligned on the global step, so that logging intervals that are multiples
                # of sync_every close exactly at a sync and get their own examples/s.
                if state.global_step % sync_every == 0 or done:
                    _sync(state, pending, first_pending, callbacks)
                    pending, first_pending = [], state.global_step + 1
                for cb in callbacks:
                    cb.on_step_end(state)
                if done or state.stop_training:
                    break
    finally:
        # Even after an interruption the losses computed so far reach the history.
        if pending:
            _sync(state, pending, first_pending, callbacks)
    for cb in callbacks:
        cb.on_train_end(state)
    return state


def _sync(
    state: TrainState, pending: list[torch.Tensor], first: int, callbacks: Sequence[Any]
) -> None:
    values = torch.stack(pending).float().cpu().tolist()
    state.step_losses = list(zip(range(first, first + len(values)), values, strict=True))
    for cb in callbacks:
        cb.on_losses(state)
