"""Dropout with cheap random masks on the CPU.

:class:`FastDropout` behaves as :class:`torch.nn.Dropout`: in training each
value is zeroed with probability ``p`` and the survivors are scaled by
``1 / (1 - p)`` so that the expected output equals the input; in evaluation it
is the identity. Only the way the mask is drawn differs.

Why. On a CPU, ``nn.Dropout`` draws its mask with ``bernoulli_``, which costs
about as much as the matrix products of a small MLP (about 40% of a training
step at batch 1,024, see ``bench/estimators.py``). Here the mask comes from raw
random bits instead: each 64-bit random word gives four 16-bit integers, each
reduced to 15 bits ``u`` (uniform on 0..32767), and a value is kept when
``u < K`` with ``K = round((1 - p) * 32768)``. The sign of ``u - K`` is the
mask, so every step is integer arithmetic that vectorises well (comparisons
that produce booleans do not, on this CPU).

Where the bits come from. torch's CPU generator (a Mersenne Twister) yields
about one 64-bit word per 8 ns on one thread, which made it the largest part of
the cost. Each call therefore draws only a 256-bit key from torch's default
generator and expands it with numpy's SFC64 (a small chaotic generator that
passes PractRand and BigCrush, about three times faster here) into the words
the mask needs.

Exactness. The keep probability is ``K / 32768``, within ``1/65536`` of
``1 - p``, and survivors are scaled by ``32768 / K``, so ``E[output] = input``
holds exactly. The key comes from the default torch generator, so
``torch.manual_seed`` makes the masks repeatable (they differ from
``nn.Dropout``'s masks for the same seed). On other devices (CUDA, MPS) the
native fused dropout is already fast and is used as is.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> drop = FastDropout(0.2)
>>> y = drop(torch.ones(100_000))
>>> round(float((y == 0).float().mean()), 2), round(float(y.max()), 4)
(0.2, 1.25)
>>> bool((drop.eval()(torch.ones(3)) == 1).all())
True
"""

from __future__ import annotations

import numbers
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainrun.exceptions import UsageError

__all__ = ["FastDropout", "fast_dropout"]

_BITS = 15
_LEVELS = 1 << _BITS  # 32768 mask levels: u in [0, 32767]
_WARMUP = 12  # outputs SFC64 itself skips after seeding


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise UsageError(f"Dropout probability must be a number between 0 and 1. Received: p={p!r}")
    return float(p)


def _keep_levels(p: float) -> int:
    return round((1.0 - p) * _LEVELS)


_local = threading.local()


def _random_words(count: int) -> torch.Tensor:
    """``count`` uniform 64-bit words (int64, CPU) keyed by torch's default generator.

    Four words from torch (cheap: a fixed cost of a few microseconds) become the
    whole state of a per-thread SFC64, which then produces the bulk. Every
    call re-keys it, so the stream depends on torch's generator alone.
    """
    bitgen = getattr(_local, "bitgen", None)
    if bitgen is None:
        bitgen = _local.bitgen = np.random.SFC64(0)
    key = torch.empty(4, dtype=torch.int64).random_(-(2**63), None)
    bitgen.state = {
        "bit_generator": "SFC64",
        "state": {"state": key.numpy().view(np.uint64)},
        "has_uint32": 0,
        "uinteger": 0,
    }
    # SFC64 discards its first outputs after seeding; do the same so that the key's
    # words are mixed before any bit reaches a mask.
    bitgen.random_raw(_WARMUP)
    return torch.from_numpy(bitgen.random_raw(count).view(np.int64))


def _mask(like: torch.Tensor, keep: int) -> torch.Tensor:
    """A mask shaped as ``like``: ``32768 / keep`` with probability ``keep / 32768``, else 0."""
    n = like.numel()
    u = _random_words((n + 3) // 4).view(torch.int16)
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
    mask = _mask(input, keep)
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

    @property
    def keep_probability(self) -> float:
        """The exact keep probability used: ``round((1 - p) * 32768) / 32768``."""
        return _keep_levels(self.p) / _LEVELS

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return fast_dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
