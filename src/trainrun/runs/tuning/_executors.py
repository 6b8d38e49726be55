"""How a tuning's trials are executed: local worker threads or Ray tasks, and Ctrl-C.

Both executors pull trials from a *source* (``next_trial()`` gives the next
:class:`Trial` or None when there is none left; ``trial_done(outcome)`` hears
each result) so a fixed grid and an adaptive search (Optuna) share one loop
that hands out the next trial as soon as a worker is free.

Local: each worker is a thread that calls ``training_run``, which runs the
script in a child process; threads are enough because the work happens in
the children. On Ctrl-C no new trial starts, the running children are asked
to stop (SIGINT through the launcher's ``stop_all_runs``, then SIGTERM, then
SIGKILL after grace periods), and every trial that was running is recorded
as interrupted.

Ray: each trial is a Ray task that calls ``training_run`` on whichever node
Ray picks; Ctrl-C cancels the tasks (Ray raises KeyboardInterrupt inside them,
so ``training_run`` marks their runs interrupted).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainrun.exceptions import UsageError
from trainrun.runs import record
from trainrun.runs.tuning._trials import Trial

#: seconds a stopping trial is given after each signal before the next, stronger one
STOP_GRACE = (1.0, 10.0, 5.0, 5.0)


@dataclass
class Outcome:
    """What became of one trial: its run record (as read_run gives it) or a launch error."""

    trial: Trial
    record: dict[str, Any] | None
    error: str | None
    seconds: float

    @property
    def status(self) -> str:
        if self.record is None:
            return "failed"
        return str(self.record.get("status") or "failed")

    @property
    def run_dir(self) -> str | None:
        return None if self.record is None else self.record.get("run_dir")

    @property
    def message(self) -> str:
        """The trial's error in one line ('' when it has none)."""
        if self.error:
            return self.error
        if self.record is None:
            return ""
        err = self.record.get("error")
        if err:
            return str(err).strip().splitlines()[-1] if str(err).strip() else ""
        code = self.record.get("exit_code")
        if self.status != "completed" and code not in (None, 0):
            return f"exit code {code}"
        return ""


class TrialSource(Protocol):
    def next_trial(self) -> Trial | None: ...

    def trial_done(self, outcome: Outcome) -> None: ...


class TuningInterrupted(Exception):
    """Raised by an executor after Ctrl-C, once every running trial has stopped."""

    def __init__(self, outcomes: list[Outcome], stopped: list[Trial]) -> None:
        super().__init__("tuning interrupted")
        self.outcomes = outcomes
        self.stopped = stopped


# ------------------------------------------------------------------ metrics


def sanitize(name: str) -> str:
    """A metric name as an ls_runs column suffix: 'label/mean' -> 'label_mean' (record's rule)."""
    return record.column_suffix(name)


def flat_values(rec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's evaluation and last metrics with ls_runs' column names (eval_*, metric_*)."""
    if not rec:
        return {}
    out: dict[str, Any] = {}
    for key, value in (rec.get("metrics") or {}).items():
        out[f"metric_{sanitize(key)}"] = value
    for key, value in (rec.get("evaluation") or {}).items():
        out[f"eval_{sanitize(key)}"] = value
    return out


def metric_value(rec: Mapping[str, Any] | None, metric: str | None) -> float | None:
    """The value of ``metric`` in a run record, as a float, or None when it has none.

    ``metric`` is an ls_runs column name ("eval_accuracy", "metric_loss") or a
    bare name, looked up in the evaluation first ("accuracy", "label/mean").
    """
    if not metric or not rec:
        return None
    values = flat_values(rec)
    for key in (metric, f"eval_{sanitize(metric)}", f"metric_{sanitize(metric)}"):
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            value = float(value)
            return None if value != value else value  # NaN is no value
    return None


# ------------------------------------------------------------------ progress


class Progress:
    """Counts and one line per finished trial: done, failed, running, best so far."""

    def __init__(
        self,
        total: int | None,
        metric: str | None,
        mode: str,
        show: bool = True,
        printer: Callable[[str], None] = print,
    ) -> None:
        self.total = total
        self.metric = metric
        self.mode = mode
        self.show = show
        self.printer = printer
        self.done = 0
        self.failed = 0
        self.running = 0
        self.best: tuple[float, Outcome] | None = None
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        if self.show:
            self.printer(text)

    def better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best[0] if self.mode == "max" else value < self.best[0]

    def started(self, trial: Trial) -> None:
        with self._lock:
            self.running += 1

    def finished(self, outcome: Outcome) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)
            ok = outcome.status == "completed"
            if ok:
                self.done += 1
            else:
                self.failed += 1
            value = metric_value(outcome.record, self.metric) if ok else None
            if value is not None and self.better(value):
                self.best = (value, outcome)
            n = self.done + self.failed
            of = f"/{self.total}" if self.total else ""
            head = (
                f"[{n}{of}] trial {outcome.trial.number} {outcome.status} in {outcome.seconds:.1f}s"
            )
            parts = [head, f"({outcome.trial.describe()})"]
            if value is not None:
                parts.append(f"{self.metric}={value:.4g}")
            if not ok and outcome.message:
                parts.append(f"error: {outcome.message}")
            line = " ".join(parts)
            line += f" | {self.done} done, {self.failed} failed, {self.running} running"
            if self.best is not None:
                line += (
                    f" | best {self.metric}={self.best[0]:.4g} (trial {self.best[1].trial.number})"
                )
        self.say(line)


# ------------------------------------------------------------------ local


def _children(pid: int) -> set[int]:
    """Pids of the live child processes of ``pid`` (Linux /proc; empty elsewhere)."""
    kids: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return kids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            kids.add(int(entry))
    return kids


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def mark_interrupted(run_dir: str | os.PathLike[str], note: str) -> None:
    """Record a trial stopped by the tuning's Ctrl-C as interrupted (what it wrote is kept)."""
    path = Path(run_dir) / record.RUN_FILE
    run = record.read_json(path)
    if not isinstance(run, dict) or run.get("status") == "interrupted":
        return
    if run.get("status") == "completed":
        return  # it finished before the signal reached it
    run["status"] = "interrupted"
    run["error"] = note
    if not run.get("end"):
        run["end"] = record.utc_now()
    record.write_json(path, run)


def find_open_runs(
    runs_dir: str | os.PathLike[str], tuning_id: str, pid: int | None = None
) -> list[Path]:
    """Runs of this tuning whose run.json still reads 'running' (launched by ``pid``, if given)."""
    found: list[Path] = []
    base = Path(runs_dir)
    if not base.is_dir():
        return found
    for name in record.run_folder_names(base):  # record's rule for which folders are runs
        folder = base / name
        try:
            run = record.read_json(folder / record.RUN_FILE)
        except record.RunRecordError:
            continue
        if (
            isinstance(run, dict)
            and run.get("status") == "running"
            and (pid is None or run.get("pid") == pid)
            and (run.get("tags") or {}).get("tuning_id") == tuning_id
        ):
            found.append(folder)
    return found


class LocalExecutor:
    """``workers`` threads, each running one trial at a time through ``launch(trial)``."""

    def __init__(
        self,
        launch: Callable[[Trial], dict[str, Any]],
        workers: int,
        stop_runs: Callable[[], int] | None = None,
    ) -> None:
        self.launch = launch
        self.workers = workers
        # the launcher's own "stop the runs of every thread" (SIGINT to its children)
        self.stop_runs = stop_runs

    def _work(self, trial: Trial, results: queue.Queue) -> None:
        began = time.monotonic()
        try:
            rec = self.launch(trial)
            results.put(Outcome(trial, rec, None, time.monotonic() - began))
        except BaseException as exc:  # a launcher error fails this trial only
            message = f"{type(exc).__name__}: {exc}"
            results.put(Outcome(trial, None, message, time.monotonic() - began))

    def run(self, source: TrialSource, progress: Progress) -> list[Outcome]:
        results: queue.Queue[Outcome] = queue.Queue()
        running: dict[int, Trial] = {}
        outcomes: list[Outcome] = []
        before = _children(os.getpid())
        exhausted = False
        try:
            while True:
                while not exhausted and len(running) < self.workers:
                    trial = source.next_trial()
                    if trial is None:
                        exhausted = True
                        break
                    running[trial.number] = trial
                    progress.started(trial)
                    threading.Thread(
                        target=self._work,
                        args=(trial, results),
                        name=f"trainrun-trial-{trial.number}",
                        daemon=True,
                    ).start()
                if not running:
                    return outcomes
                try:
                    outcome = results.get(timeout=0.2)
                except queue.Empty:
                    continue
                running.pop(outcome.trial.number, None)
                outcomes.append(outcome)
                progress.finished(outcome)
                source.trial_done(outcome)
        except KeyboardInterrupt:
            stopped = list(running.values())
            outcomes.extend(self._stop(running, results, before))
            raise TuningInterrupted(outcomes, stopped) from None

    def _stop(
        self, running: dict[int, Trial], results: queue.Queue, before: set[int]
    ) -> list[Outcome]:
        """Stop the running trials: their children are signalled, harder as time passes."""
        collected: list[Outcome] = []
        # The first wait sends nothing: at a terminal, Ctrl-C already reached the children.
        signals = [None, signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
        step = 0
        deadline = time.monotonic() + STOP_GRACE[0]
        while running:
            try:
                if time.monotonic() >= deadline and step < len(signals) - 1:
                    step += 1
                    if signals[step] == signal.SIGINT and self.stop_runs is not None:
                        self.stop_runs()
                    else:
                        _signal_all(_children(os.getpid()) - before, int(signals[step] or 0))
                    deadline = time.monotonic() + STOP_GRACE[step]
                elif time.monotonic() >= deadline:
                    break  # SIGKILLed and still no answer: give up on those threads
                try:
                    outcome = results.get(timeout=0.1)
                except queue.Empty:
                    continue
                running.pop(outcome.trial.number, None)
                collected.append(outcome)
            except KeyboardInterrupt:
                # a second Ctrl-C: no more patience
                step = len(signals) - 1
                _signal_all(_children(os.getpid()) - before, signal.SIGKILL)
                deadline = time.monotonic() + STOP_GRACE[-1]
        return collected


# ------------------------------------------------------------------ ray


def ray_trial(
    script: str, flags: dict[str, Any], runs_dir: str, tags: dict[str, str], echo: bool
) -> dict[str, Any]:
    """The body of one Ray task: an ordinary training run, recorded in the shared runs_dir."""
    from trainrun.runs.launch import training_run

    return training_run(script, flags=flags, runs_dir=runs_dir, tags=tags, echo=echo, view=False)


def ray_options(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray task options from resources_per_trial, e.g. {"cpu": 2, "gpu": 0.5}."""
    options: dict[str, Any] = {"num_cpus": 1}
    custom: dict[str, float] = {}
    for key, value in (resources or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UsageError(
                "Each value of 'resources_per_trial' must be a number >= 0. "
                f"Received: {key}={value!r}"
            )
        if key in ("cpu", "cpus", "num_cpus"):
            options["num_cpus"] = value
        elif key in ("gpu", "gpus", "num_gpus"):
            options["num_gpus"] = value
        elif key == "memory":
            options["memory"] = value
        else:
            custom[str(key)] = float(value)
    if custom:
        options["resources"] = custom
    return options


class RayExecutor:
    """At most ``workers`` trials in flight as Ray tasks; the next one submitted as one ends."""

    def __init__(
        self,
        ray: Any,
        script: str,
        runs_dir: str,
        tuning_id: str,
        tags_for: Callable[[Trial], dict[str, str]],
        echo: bool,
        workers: int,
        options: dict[str, Any],
    ) -> None:
        self.ray = ray
        self.script = script
        self.runs_dir = runs_dir
        self.tuning_id = tuning_id
        self.tags_for = tags_for
        self.echo = echo
        self.workers = workers
        self.task = ray.remote(ray_trial).options(**options)

    def _outcome(self, ref: Any, trial: Trial, began: float) -> Outcome:
        try:
            rec = self.ray.get(ref)
            return Outcome(trial, rec, None, time.monotonic() - began)
        except Exception as exc:  # the task failed or was cancelled: this trial only
            text = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {text[-1] if text else ''}"
            return Outcome(trial, None, message, time.monotonic() - began)

    def run(self, source: TrialSource, progress: Progress) -> list[Outcome]:
        inflight: dict[Any, tuple[Trial, float]] = {}
        outcomes: list[Outcome] = []
        exhausted = False
        try:
            while True:
                while not exhausted and len(inflight) < self.workers:
                    trial = source.next_trial()
                    if trial is None:
                        exhausted = True
                        break
                    ref = self.task.remote(
                        self.script, trial.flags, self.runs_dir, self.tags_for(trial), self.echo
                    )
                    inflight[ref] = (trial, time.monotonic())
                    progress.started(trial)
                if not inflight:
                    return outcomes
                ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=0.2)
                for ref in ready:
                    trial, began = inflight.pop(ref)
                    outcome = self._outcome(ref, trial, began)
                    outcomes.append(outcome)
                    progress.finished(outcome)
                    source.trial_done(outcome)
        except KeyboardInterrupt:
            self._stop(list(inflight))
            raise TuningInterrupted(outcomes, [t for t, _ in inflight.values()]) from None

    def _stop(self, refs: list[Any]) -> None:
        """Cancel the tasks in flight and wait until their runs have recorded the end.

        Ray reports a cancelled task at once, while its worker is still stopping the
        script, so the wait is on the run records, not on the tasks.
        """
        for ref in refs:
            self.ray.cancel(ref, force=False)  # KeyboardInterrupt inside the task
        deadline = time.monotonic() + sum(STOP_GRACE)
        try:
            time.sleep(STOP_GRACE[0])
            while find_open_runs(self.runs_dir, self.tuning_id) and time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: no more patience
        left = find_open_runs(self.runs_dir, self.tuning_id)
        if left:
            for ref in refs:
                self.ray.cancel(ref, force=True)
            for folder in left:
                mark_interrupted(
                    folder,
                    "Interrupted: the tuning was stopped (Ctrl-C) and its Ray task cancelled.",
                )
