"""RunConfig: how an estimator trains (seed, checkpoints, logging, device), not what it is."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

from trainrun.exceptions import UsageError

__all__ = ["RunConfig"]


@dataclass(frozen=True, repr=False)
class RunConfig:
    """Settings shared by every estimator, as tf.estimator.RunConfig.

    ==========================  =========  ===============================================
    setting                     default    meaning
    ==========================  =========  ===============================================
    ``seed``                    None       seeds weight initialisation, dropout and the
                                           order of an unseeded shuffled input_fn
    ``save_checkpoints_steps``  None       also checkpoint every N steps (always at the end)
    ``save_summary_steps``      100        TensorBoard scalars every N steps
    ``log_step_count_steps``    100        progress lines and run metrics every N steps
    ``keep_checkpoint_max``     5          checkpoints kept (None or 0: all)
    ``device``                  "cpu"      "cpu", "cuda", "cuda:1", "mps" or "auto"
    ``tensorboard``             True       write TensorBoard event files
    ``progress``                True       print progress while training
    ``num_threads``             None       torch intra-op threads while the estimator works
                                           (None: torch's default, one per core)
    ``keep_temp_model_dir``     False      keep the temporary model directory an estimator
                                           without ``model_dir`` (outside a run) makes;
                                           by default it is deleted when Python exits
    ==========================  =========  ===============================================

    >>> RunConfig(seed=42, save_checkpoints_steps=500)
    RunConfig(seed=42, save_checkpoints_steps=500)
    """

    seed: int | None = None
    save_checkpoints_steps: int | None = None
    save_summary_steps: int = 100
    log_step_count_steps: int = 100
    keep_checkpoint_max: int | None = 5
    device: str = "cpu"
    tensorboard: bool = True
    progress: bool = True
    num_threads: int | None = None
    keep_temp_model_dir: bool = False

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise UsageError(
                    f"The '{name}' parameter of RunConfig must be {what}. "
                    f"Got {getattr(self, name)!r} instead."
                )

        def is_int(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        check("seed", self.seed is None or is_int(self.seed), "an int or None")
        for name in ("save_checkpoints_steps",):
            v = getattr(self, name)
            check(name, v is None or (is_int(v) and v > 0), "a positive int or None")
        for name in ("save_summary_steps", "log_step_count_steps"):
            v = getattr(self, name)
            check(name, is_int(v) and v > 0, "a positive int")
        v = self.keep_checkpoint_max
        check(
            "keep_checkpoint_max", v is None or (is_int(v) and v >= 0), "a non-negative int or None"
        )
        check(
            "device",
            isinstance(self.device, str) and bool(self.device),
            "a device name such as 'cpu', 'cuda' or 'auto'",
        )
        check("tensorboard", isinstance(self.tensorboard, bool), "a bool")
        check("progress", isinstance(self.progress, bool), "a bool")
        check("keep_temp_model_dir", isinstance(self.keep_temp_model_dir, bool), "a bool")
        v = self.num_threads
        check("num_threads", v is None or (is_int(v) and v > 0), "a positive int or None")

    def resolved_device(self) -> Any:
        """The torch.device to train on ("auto": CUDA if available, else MPS, else CPU)."""
        import torch

        if self.device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise UsageError(
                f"The 'device' parameter of RunConfig must be a device name such as 'cpu', "
                f"'cuda' or 'auto'. Got {self.device!r} instead."
            ) from exc
        _check_available(device, self.device)
        return device

    def __repr__(self) -> str:
        # Only what differs from the defaults, as estimators' reprs do.
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"RunConfig({', '.join(changed)})"

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        """Use ``num_threads`` torch threads inside the block (a no-op when None).

        Small models on a busy machine train many times faster on one thread than on
        several oversubscribed ones; the setting is restored afterwards.
        """
        if self.num_threads is None:
            yield
            return
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_available(device: Any, given: str) -> None:
    """Fail before any work when the device cannot be used here (torch's own error is an
    AssertionError about how torch was compiled, raised halfway through building the model)."""
    import torch

    fix = "Use device='cpu', or device='auto' (CUDA, else MPS, else CPU)."
    if device.type == "cpu":
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch has no CUDA support"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise UsageError(
                f"RunConfig(device={given!r}) needs a CUDA GPU, but {why} "
                f"(torch {torch.__version__}). {fix} Received: device={given!r}"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(
                f"RunConfig(device={given!r}) names CUDA device {device.index}, but only "
                f"{count} {'is' if count == 1 else 'are'} visible (cuda:0 to cuda:{count - 1}). "
                f"Pick one of those or use device='cuda'. Received: device={given!r}"
            )
        return
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(
                f"RunConfig(device={given!r}) needs Apple's MPS backend, which is not available "
                f"here. {fix} Received: device={given!r}"
            )
        return
    backend = getattr(torch, device.type, None)
    if (
        backend is None
        or device.type == "meta"
        or not callable(getattr(backend, "is_available", None))
    ):
        raise UsageError(
            f"RunConfig(device={given!r}) is not a device an estimator can train on; use "
            f"'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'. Received: device={given!r}"
        )
    if not backend.is_available():
        raise UsageError(
            f"RunConfig(device={given!r}) is not available here. {fix} Received: device={given!r}"
        )
