"""Callbacks: every side effect of training, each behind timeline-named hooks.

Hooks, in the order the loop calls them::

    on_train_begin(state)
      on_losses(state)      every few steps: state.step_losses holds (step, loss) floats
      on_step_end(state)    after every step (keep it cheap: it is on the hot path)
    on_train_end(state)
    on_evaluate_end(results, name)   after evaluate(), called by the estimator

Write your own by subclassing :class:`Callback` and passing it to
``estimator.train(..., callbacks=[...])``.

>>> class Stop(Callback):
...     def on_step_end(self, state):
...         state.stop_training = state.global_step >= 10
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from trainrun.exceptions import UsageError
from trainrun.training.loop import TrainState

__all__ = [
    "Callback",
    "CheckpointSaver",
    "EarlyStopping",
    "History",
    "NanLossGuard",
    "ProgressLogger",
    "TensorBoardLogger",
    "metric_mode",
]


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, state: TrainState) -> None:
        pass

    def on_losses(self, state: TrainState) -> None:
        pass

    def on_step_end(self, state: TrainState) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass

    def on_evaluate_end(self, results: Mapping[str, Any], name: str | None) -> None:
        pass


class NanLossGuard(Callback):
    """Stops training with :class:`~trainrun.exceptions.NanLossError` when the loss is NaN
    or infinite, as tf.estimator's NanTensorHook does; the check costs nothing extra, it
    reads the losses the loop synchronises anyway.

    >>> from trainrun.training.loop import TrainState
    >>> state = TrainState(global_step=3, start_step=0, max_steps=None)
    >>> state.step_losses = [(3, float("nan"))]
    >>> try:
    ...     NanLossGuard().on_losses(state)
    ... except FloatingPointError as err:
    ...     print(str(err).split(":")[0])
    The training loss became nan at step 3
    """

    def on_losses(self, state: TrainState) -> None:
        for step, loss in state.step_losses:
            if not math.isfinite(loss):
                from trainrun.exceptions import NanLossError

                raise NanLossError(
                    f"The training loss became {loss} at step {step:,}: the model diverged. "
                    "Lower the learning rate (e.g. optimizer=functools.partial("
                    "torch.optim.Adam, lr=1e-4)), scale large numeric columns "
                    "(numeric_column(..., normalizer_fn=...)), or look for huge or infinite "
                    "values in the data. Training stopped; the model directory keeps its "
                    f"last checkpoint. Received: loss={loss} at step {step}"
                )


class _IntervalMean:
    """Mean loss and examples/s over each interval of ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every = max(1, int(every))
        self.reset(0, 0)

    def reset(self, step: int, examples: int) -> None:
        self.total = 0.0
        self.count = 0
        self.last_step = step
        self.last_examples = examples
        self.last_time = time.perf_counter()

    def add(self, state: TrainState) -> list[tuple[int, float, float]]:
        """Feed the new losses; return (step, mean loss, examples/s) for each interval closed."""
        closed = []
        for step, loss in state.step_losses:
            self.total += loss
            self.count += 1
            if step % self.every == 0 or step == state.max_steps:
                closed.append((step, self.total / self.count))
                self.total, self.count = 0.0, 0
        if not closed:
            return []
        now = time.perf_counter()
        rate = (state.examples - self.last_examples) / max(now - self.last_time, 1e-9)
        self.last_examples, self.last_time = state.examples, now
        return [(step, loss, rate) for step, loss in closed]

    def flush(self, state: TrainState) -> tuple[int, float, float] | None:
        """The partial interval at the end of training, if any."""
        if not self.count:
            return None
        now = time.perf_counter()
        rate = (state.examples - self.last_examples) / max(now - self.last_time, 1e-9)
        out = (state.global_step, self.total / self.count, rate)
        self.total, self.count = 0.0, 0
        return out


class ProgressLogger(Callback):
    """Loss, step and examples/s: a live line on a terminal, plain lines otherwise.

    On a terminal the line is redrawn at most ten times a second; elsewhere
    (a log file, a training run's output.log, CI) a line is printed every
    ``every`` steps and once at the end.
    """

    def __init__(
        self, every: int = 100, stream: IO[str] | None = None, live: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if live is None:
            from trainrun._interactive import live_terminal

            live = live_terminal(self.stream)
        self.live = live
        self.every = every

    def on_train_begin(self, state: TrainState) -> None:
        self._interval = _IntervalMean(1 if self.live else self.every)
        self._interval.reset(state.global_step, state.examples)
        self._t0 = time.perf_counter()
        self._examples0 = state.examples
        self._last_draw = 0.0
        self._last_loss = math.nan
        self._drawn = False
        self._state = state

    def _line(self, step: int, loss: float, rate: float) -> str:
        """``step 120/440 (27%)  epoch 3/10  loss 0.4123  9,870 examples/s  ETA 0:04``."""
        state = self._state
        end = state.expected_end
        parts = [f"step {step:,}"]
        if end is not None and end > state.start_step:
            done = (step - state.start_step) / (end - state.start_step)
            parts[0] += f"/{end:,} ({100 * min(done, 1.0):.0f}%)"
        epoch = state.epoch_of(step)
        if epoch is not None:
            parts.append(f"epoch {epoch}" + (f"/{state.epochs}" if state.epochs else ""))
        parts += [f"loss {loss:.4f}", f"{rate:,.0f} examples/s"]
        elapsed = time.perf_counter() - self._t0
        steps_done = step - state.start_step
        if end is not None and 0 < steps_done and step < end and elapsed > 0:
            parts.append(f"ETA {_clock((end - step) * elapsed / steps_done)}")
        return "  ".join(parts)

    def on_losses(self, state: TrainState) -> None:
        self._state = state
        if self.live:
            if state.step_losses:
                self._last_loss = state.step_losses[-1][1]
            now = time.perf_counter()
            if now - self._last_draw >= 0.1:
                rate = (state.examples - self._examples0) / max(now - self._t0, 1e-9)
                self.stream.write(
                    "\r" + self._line(state.global_step, self._last_loss, rate) + "\x1b[K"
                )
                self.stream.flush()
                self._last_draw = now
                self._drawn = True
            return
        for step, loss, rate in self._interval.add(state):
            self.stream.write(self._line(step, loss, rate) + "\n")
        self.stream.flush()

    def on_train_end(self, state: TrainState) -> None:
        self._state = state
        elapsed = time.perf_counter() - self._t0
        rate = (state.examples - self._examples0) / max(elapsed, 1e-9)
        if self.live:
            if state.step_losses:
                self._last_loss = state.step_losses[-1][1]
            if self._drawn or state.steps_done:
                self.stream.write(
                    "\r" + self._line(state.global_step, self._last_loss, rate) + "\x1b[K\n"
                )
        else:
            tail = self._interval.flush(state)
            if tail is not None:
                self.stream.write(self._line(*tail) + "\n")
        self.stream.flush()


class History(Callback):
    """The loss of every step of one ``train()`` call; ``estimator.train`` returns it.

    ``repr`` summarises; :meth:`to_frame` gives a DataFrame (step, loss);
    :meth:`plot` draws loss against step and returns the matplotlib Figure.
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.examples = 0
        self.seconds = 0.0
        self.start_step = 0
        self.end_step = 0
        self.metrics: dict[str, Any] = {}

    def on_train_begin(self, state: TrainState) -> None:
        self.start_step = self.end_step = state.global_step
        self._t0 = time.perf_counter()
        self._examples0 = state.examples

    def on_losses(self, state: TrainState) -> None:
        for step, loss in state.step_losses:
            self.steps.append(step)
            self.losses.append(loss)

    def on_train_end(self, state: TrainState) -> None:
        self.end_step = state.global_step
        self.seconds = time.perf_counter() - self._t0
        self.examples = state.examples - self._examples0

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras' shape: ``{"loss": [...]}``, one value per step."""
        return {"loss": list(self.losses)}

    @property
    def steps_trained(self) -> int:
        return self.end_step - self.start_step

    def to_frame(self) -> Any:
        """A pandas DataFrame with columns ``step`` and ``loss``."""
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "loss": self.losses})

    def plot(self, smooth: int | None = None) -> Any:
        """Loss against step as a matplotlib Figure (raw, and a moving mean when long).

        >>> fig = history.plot()             # doctest: +SKIP
        >>> trainrun.save_plot(fig)          # doctest: +SKIP
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.5), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(
            self.steps,
            self.losses,
            lw=0.8,
            alpha=0.45 if len(self.losses) > 50 else 1.0,
            label="loss",
        )
        window = smooth if smooth is not None else max(1, len(self.losses) // 50)
        if window > 1 and len(self.losses) > window:
            import numpy as np

            kernel = np.ones(window) / window
            ax.plot(
                self.steps[window - 1 :],
                np.convolve(self.losses, kernel, mode="valid"),
                lw=1.6,
                label=f"mean of {window}",
            )
            ax.legend()
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(f"Training loss ({_steps(self.steps_trained)})")
        return fig

    def _repr_html_(self) -> str:
        """In a notebook: the summary and the loss curve (inline SVG, nothing fetched)."""
        import html

        from trainrun._humanize import svg_line

        chart = svg_line([float(s) for s in self.steps], self.losses)
        return f"<div><p>{html.escape(repr(self))}</p>{chart}</div>"

    def __repr__(self) -> str:
        if not self.steps_trained:
            return f"History(no steps trained; global step {self.end_step:,})"
        rate = self.examples / self.seconds if self.seconds > 0 else math.nan
        # One step's loss is noisy (an epoch's last batch may hold a single example):
        # summarise the end of training by the mean of its last steps.
        tail = self.losses[-20:]
        final = sum(tail) / len(tail) if tail else math.nan
        last = "the last step" if len(tail) == 1 else f"the last {len(tail)} steps"
        return (
            f"Trained for {_steps(self.steps_trained)} (global step {self.end_step:,}) in "
            f"{self.seconds:.1f} s, {rate:,.0f} examples/s; loss {final:.4f} (mean of {last})"
        )


def _clock(seconds: float) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _steps(n: int) -> str:
    return "1 step" if n == 1 else f"{n:,} steps"


class CheckpointSaver(Callback):
    """Calls ``save()`` every ``every`` steps (if set) and once at the end of training."""

    def __init__(self, save: Callable[[int], Any], every: int | None = None) -> None:
        self.save = save
        self.every = every
        self.last_saved: int | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.last_saved = state.global_step

    def on_step_end(self, state: TrainState) -> None:
        if self.every and state.global_step % self.every == 0:
            self.save(state.global_step)
            self.last_saved = state.global_step

    def on_train_end(self, state: TrainState) -> None:
        if self.last_saved != state.global_step:
            self.save(state.global_step)
            self.last_saved = state.global_step


class TensorBoardLogger(Callback):
    """Training scalars ``loss`` and ``examples_per_sec`` every ``every`` steps; ``eval/*`` after evaluate.

    Uses torch's SummaryWriter (TensorBoard's event format); the writer is opened
    lazily because importing it costs about two seconds.
    """

    def __init__(self, log_dir: str | os.PathLike[str], every: int = 100) -> None:
        self.log_dir = Path(log_dir)
        self.every = every
        self._writer: Any = None

    def writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir.mkdir(parents=True, exist_ok=True)
            # A short flush interval: events of a run that crashes or is killed mostly survive.
            self._writer = SummaryWriter(str(self.log_dir), flush_secs=10)
        return self._writer

    def on_train_begin(self, state: TrainState) -> None:
        # Open the writer now: its first import takes seconds, which must not count as training.
        self.writer()
        self._interval = _IntervalMean(self.every)
        self._interval.reset(state.global_step, state.examples)

    def _write(self, step: int, loss: float, rate: float) -> None:
        w = self.writer()
        w.add_scalar("loss", loss, step)
        w.add_scalar("examples_per_sec", rate, step)

    def on_losses(self, state: TrainState) -> None:
        for item in self._interval.add(state):
            self._write(*item)

    def on_train_end(self, state: TrainState) -> None:
        tail = self._interval.flush(state)
        if tail is not None:
            self._write(*tail)
        self.close()

    def on_evaluate_end(self, results: Mapping[str, Any], name: str | None) -> None:
        step = int(results.get("global_step", 0))
        prefix = "eval" if name is None else f"eval_{name}"
        w = self.writer()
        for key, value in results.items():
            if key != "global_step" and isinstance(value, (int, float)):
                w.add_scalar(f"{prefix}/{key}", float(value), step)
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


#: Evaluation metrics where higher is better (EarlyStopping's mode="auto", BestExporter).
HIGHER_IS_BETTER = ("accuracy", "auc", "auc_precision_recall", "precision", "recall")


def metric_mode(metric: str, mode: str = "auto") -> str:
    """The direction of ``metric``: "min" or "max" (auto: max for accuracy, AUCs, precision, recall)."""
    if mode not in ("auto", "min", "max"):
        raise UsageError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode != "auto":
        return mode
    return "max" if metric.rsplit("/", 1)[-1] in HIGHER_IS_BETTER else "min"


class EarlyStopping(Callback):
    """Stop training when a monitored quantity stops improving.

    ``monitor="loss"`` (the default) watches the training loss, averaged over windows of
    ``every`` steps. ``monitor="val_<metric>"`` (or ``"eval_<metric>"``) watches an
    evaluation metric, e.g. ``"val_auc"`` or ``"val_loss"``: each evaluation made while
    training (``train_and_evaluate``, or ``evaluate(..., callbacks=[this])``) counts as
    one window. Training stops after ``patience`` windows in a row without an improvement
    of more than ``min_delta`` over the best so far; ``mode="auto"`` maximises
    accuracy, AUCs, precision and recall and minimises everything else.

    >>> est.train(inp, steps=10_000, callbacks=[EarlyStopping(every=100, patience=3)])  # doctest: +SKIP
    >>> EarlyStopping(monitor="val_auc", patience=2).mode
    'max'
    """

    def __init__(
        self,
        every: int = 100,
        patience: int = 3,
        min_delta: float = 0.0,
        monitor: str = "loss",
        mode: str = "auto",
    ) -> None:
        for name, value, low in (("every", every, 1), ("patience", patience, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(
                    f"EarlyStopping's {name} must be a positive integer. Received: {name}={value!r}"
                )
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise UsageError(
                f"EarlyStopping's min_delta must be a number >= 0. Received: min_delta={min_delta!r}"
            )
        if not isinstance(monitor, str) or not monitor:
            raise UsageError(
                "EarlyStopping's monitor must be 'loss' (the training loss) or 'val_<metric>' "
                f"(an evaluation metric, e.g. 'val_auc'). Received: monitor={monitor!r}"
            )
        self.every = every
        self.patience = patience
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.metric = _eval_metric_name(monitor)
        self.mode = metric_mode(self.metric or "loss", mode)
        self.stopped_at: int | None = None
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self._stop_pending = False

    def on_train_begin(self, state: TrainState) -> None:
        self._interval = _IntervalMean(self.every)
        self._interval.reset(state.global_step, state.examples)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.stopped_at = None
        self._stop_pending = False

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def _observe(self, value: float) -> None:
        if math.isnan(value):
            self.wait += 1
        elif self._improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self._stop_pending = True

    def on_losses(self, state: TrainState) -> None:
        if self.metric is None:
            for _, loss, _ in self._interval.add(state):
                self._observe(loss)
        self._maybe_stop(state)

    def on_step_end(self, state: TrainState) -> None:
        if self._stop_pending:
            self._maybe_stop(state)

    def _maybe_stop(self, state: TrainState) -> None:
        if self._stop_pending and not state.stop_training:
            state.stop_training = True
            self.stopped_at = state.global_step

    def on_evaluate_end(self, results: Mapping[str, Any], name: str | None) -> None:
        if self.metric is None:
            return
        if self.metric not in results:
            from trainrun.exceptions import InputError

            raise InputError(
                f"EarlyStopping(monitor={self.monitor!r}) watches evaluation metric "
                f"{self.metric!r}, which evaluate() does not report. Available: "
                f"{sorted(k for k in results if k != 'global_step')}"
            )
        self._observe(float(results[self.metric]))


def _eval_metric_name(monitor: str) -> str | None:
    """The evaluation metric ``monitor`` names ("val_auc" -> "auc"); None for the training loss."""
    for prefix in ("val_", "eval_", "eval/"):
        if monitor.startswith(prefix) and len(monitor) > len(prefix):
            return monitor[len(prefix) :]
    if monitor == "loss":
        return None
    return monitor
