"""Dropout with cheap random masks on the CPU.

:class:`FastDropout` behaves as :class:`torch.nn.Dropout`: in training each
value is zeroed with probability ``p`` and the survivors are scaled by
``1 / (1 - p)`` so that the expected output equals the input; in evaluation it
is the identity. Only the way the mask is drawn differs.

Why. On a CPU, ``nn.Dropout`` draws its mask with ``bernoulli_``, which costs
about as much as the matrix products of a small MLP (about 40% of a training
step at batch 1,024, see ``bench/estimators.py``). Here the mask comes from raw
random bits instead: one 64-bit draw of the default generator gives four
16-bit integers, each reduced to 15 bits ``u`` (uniform on 0..32767), and a
value is kept when ``u < K`` with ``K = round((1 - p) * 32768)``. The sign of
``u - K`` is the mask, so every step is integer arithmetic that vectorises well
(comparisons that produce booleans do not, on this CPU).

Exactness. The keep probability is ``K / 32768``, within ``1/65536`` of
``1 - p``, and survivors are scaled by ``32768 / K``, so ``E[output] = input``
holds exactly. Masks come from the default torch generator, so
``torch.manual_seed`` makes them repeatable (they differ from ``nn.Dropout``'s
masks for the same seed). On other devices (CUDA, MPS) the native fused
dropout is already fast and is used as is.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> drop = FastDropout(0.2)
>>> y = drop(torch.ones(10_000))
>>> round(float((y == 0).float().mean()), 2), round(float(y.max()), 4)
(0.2, 1.25)
>>> bool((drop.eval()(torch.ones(3)) == 1).all())
True
"""

from __future__ import annotations

import numbers
import threading

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FastDropout", "fast_dropout"]

_BITS = 15
_LEVELS = 1 << _BITS  # 32768 mask levels: u in [0, 32767]


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"Dropout probability must be a number between 0 and 1. Received: p={p!r}")
    return float(p)


def _keep_levels(p: float) -> int:
    return round((1.0 - p) * _LEVELS)


def _mask(like: torch.Tensor, keep: int, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """A mask shaped as ``like``: ``32768 / keep`` with probability ``keep / 32768``, else 0.

    ``scratch`` (int64, at least ``ceil(numel / 4)`` long, on ``like``'s device) is
    overwritten and reused, which spares the allocator, and the page faults of
    fresh memory, one large block per call.
    """
    n = like.numel()
    words_needed = (n + 3) // 4
    if scratch is None or scratch.numel() < words_needed or scratch.device != like.device:
        scratch = torch.empty(words_needed, dtype=torch.int64, device=like.device)
    # slicing and reshaping cost a dispatch each: skip them when the sizes already fit
    words = scratch if scratch.numel() == words_needed else scratch[:words_needed]
    # from=-2**63, to=None draws all 64 bits uniformly (the "full range" path).
    words.random_(-(2**63), None)
    u = words.view(torch.int16)
    if n % 4:
        u = u[:n]
    u.bitwise_and_(_LEVELS - 1)  # 15 uniform bits, 0..32767
    # u - keep lies in [-32768, 32767], so int16 cannot overflow; its sign bit is the mask.
    u.sub_(keep).bitwise_right_shift_(_BITS)  # -1 where kept, 0 where dropped
    # (an int16 tensor times a float scalar would skip the vectorised kernels: convert first)
    return u.to(like.dtype).mul_(-_LEVELS / keep).view(like.shape)


def fast_dropout(
    input: torch.Tensor,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """Functional form of :class:`FastDropout` (the signature of ``F.dropout``).

    >>> import torch
    >>> fast_dropout(torch.ones(4), p=0.5, training=False).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    if input.device.type != "cpu" or not input.is_floating_point():
        return F.dropout(input, p, training, inplace)
    keep = _keep_levels(p)
    if keep == 0:  # p within 1/65536 of 1: everything is dropped, as nn.Dropout(p=1)
        return input.mul_(0.0) if inplace else input * 0.0
    if keep == _LEVELS:  # p within 1/65536 of 0: every value is kept, unscaled
        return input
    mask = _mask(input, keep, scratch)
    # mul with a mask that needs no grad saves only the mask for backward
    return input.mul_(mask) if inplace else input * mask


class FastDropout(nn.Module):
    """``nn.Dropout`` with masks drawn from raw random bits (much cheaper on CPU).

    Args:
        p: probability of zeroing a value, in [0, 1].
        inplace: overwrite the input, as ``nn.Dropout(inplace=True)``.

    >>> import torch
    >>> layer = torch.nn.Sequential(torch.nn.Linear(4, 8), FastDropout(0.2))
    >>> layer(torch.randn(2, 4)).shape
    torch.Size([2, 8])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.inplace = bool(inplace)
        # random words reused from call to call by the thread that made them (not state:
        # never saved, never shared between threads, rebuilt when the shape grows)
        self._scratch: torch.Tensor | None = None
        self._scratch_thread: int | None = None

    @property
    def keep_probability(self) -> float:
        """The exact keep probability used: ``round((1 - p) * 32768) / 32768``."""
        return _keep_levels(self.p) / _LEVELS

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or input.device.type != "cpu":
            return fast_dropout(input, self.p, self.training, self.inplace)
        thread = threading.get_ident()
        if self._scratch_thread is None:
            self._scratch_thread = thread
        if thread != self._scratch_thread:
            return fast_dropout(input, self.p, True, self.inplace)
        words = (input.numel() + 3) // 4
        if self._scratch is None or self._scratch.numel() != words:
            # sized exactly (a smaller last batch reallocates once): no slicing per call
            self._scratch = torch.empty(words, dtype=torch.int64)
        return fast_dropout(input, self.p, True, self.inplace, scratch=self._scratch)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state = dict(state)
        state["_scratch"] = None
        state["_scratch_thread"] = None
        return state

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
