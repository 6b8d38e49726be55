"""Optuna as a source of trials: ask for flags, run them as training runs, tell the metric.

Optuna is an optional extra; importing this module does not import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from trainrun.exceptions import MissingExtraError, UsageError
from trainrun.runs import record
from trainrun.runs.tuning._executors import Outcome, metric_value
from trainrun.runs.tuning._trials import Trial

KINDS = ("float", "int")


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("optuna", "optuna", "optuna_search()") from None
    return optuna


def parse_space(optuna: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions from a search space.

    >>> parse_space(optuna, {"dropout": ("float", 0.0, 0.5), "act": ["relu", "tanh"]})  # doctest: +SKIP
    """
    dists = optuna.distributions
    if not isinstance(space, Mapping) or not space:
        raise UsageError(
            "The 'space' argument of optuna_search must be a non-empty dict such as "
            "{'dropout': ('float', 0.0, 0.5), 'layer1': ('int', 16, 256), "
            f"'activation': ['relu', 'tanh']}}. Received: space={space!r}"
        )
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"Search space names must be non-empty strings. Received: {name!r}")
        if isinstance(spec, dists.BaseDistribution):
            out[name] = spec
        elif isinstance(spec, list):
            if not spec:
                raise UsageError(f"The choices of '{name}' are empty. Received: {name}=[]")
            out[name] = dists.CategoricalDistribution(spec)
        elif isinstance(spec, tuple) and len(spec) in (3, 4) and spec[0] in KINDS:
            kind, low, high = spec[:3]
            log = len(spec) == 4 and spec[3] == "log"
            if len(spec) == 4 and not log:
                raise UsageError(
                    f"The fourth item of '{name}' may only be 'log'. Received: {name}={spec!r}"
                )
            numbers = (int, float) if kind == "float" else (int,)
            if any(isinstance(v, bool) or not isinstance(v, numbers) for v in (low, high)):
                raise UsageError(
                    f"The bounds of '{name}' must be {kind}s. Received: {name}={spec!r}"
                )
            if low > high or (log and low <= 0):
                raise UsageError(
                    f"The range of '{name}' must have low <= high (and low > 0 on a log "
                    f"scale). Received: {name}={spec!r}"
                )
            cls = dists.FloatDistribution if kind == "float" else dists.IntDistribution
            out[name] = cls(low, high, log=log)
        else:
            raise UsageError(
                f"Could not interpret the search space of '{name}': use ('float', low, high), "
                "('int', low, high), either with 'log' appended, a list of choices, or an "
                f"optuna distribution. Received: {name}={spec!r}"
            )
    return out


class OptunaSource:
    """Trials proposed by an Optuna study, told the metric of each finished run."""

    def __init__(
        self,
        optuna: Any,
        distributions: dict[str, Any],
        fixed: dict[str, Any],
        n_trials: int,
        metric: str,
        mode: str,
        seed: int | None,
        sampler: Any = None,
    ) -> None:
        self.optuna = optuna
        self.distributions = distributions
        self.fixed = fixed
        self.n_trials = n_trials
        self.metric = metric
        sampler = sampler if sampler is not None else optuna.samplers.TPESampler(seed=seed)
        direction = "maximize" if mode == "max" else "minimize"
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.trials: list[Trial] = []
        self._asked: dict[int, Any] = {}
        self._next_number = 1
        self._replayed = 0
        self._left = n_trials

    @property
    def remaining(self) -> int:
        return self._left

    def replay(self, rows: Any, recorded_flags: Callable[[str], dict[str, Any]]) -> dict[int, str]:
        """Tell the study the completed runs of an earlier search; trial number -> run_dir."""
        run_of: dict[int, str] = {}
        numbers = []
        for r in rows.to_dict(orient="records") if not rows.empty else []:
            try:
                numbers.append(int(r.get("tag_trial")))
            except (TypeError, ValueError):
                pass
            if r.get("status") != "completed" or len(run_of) >= self.n_trials:
                continue
            run_dir = str(r["run_dir"])
            flags = recorded_flags(run_dir)
            if not all(name in flags for name in self.distributions):
                continue
            value = metric_value(record.read_run(run_dir), self.metric)
            if value is None:
                continue
            params = {name: flags[name] for name in self.distributions}
            try:
                frozen = self.optuna.trial.create_trial(
                    params=params, distributions=self.distributions, value=value
                )
            except (ValueError, TypeError):
                continue  # outside the current space: not evidence for this search
            self.study.add_trial(frozen)
            try:
                number = int(r.get("tag_trial"))
            except (TypeError, ValueError):
                number = max(numbers, default=0) + 1
            self.trials.append(Trial(number, {**self.fixed, **params}))
            run_of[number] = run_dir
        self._next_number = max([*numbers, *run_of, 0]) + 1
        self._left = self.n_trials - len(run_of)
        return run_of

    def next_trial(self) -> Trial | None:
        if self._left <= 0:
            return None
        self._left -= 1
        asked = self.study.ask(fixed_distributions=self.distributions)
        trial = Trial(self._next_number, {**self.fixed, **asked.params})
        self._next_number += 1
        self._asked[trial.number] = asked
        self.trials.append(trial)
        return trial

    def trial_done(self, outcome: Outcome) -> None:
        asked = self._asked.pop(outcome.trial.number, None)
        if asked is None:
            return
        value = metric_value(outcome.record, self.metric) if outcome.status == "completed" else None
        if value is None:
            self.study.tell(asked, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(asked, value)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Optuna's own per-trial log lines off: the tuning prints its own progress."""
        logging = self.optuna.logging
        before = logging.get_verbosity()
        logging.set_verbosity(logging.WARNING)
        try:
            yield
        finally:
            logging.set_verbosity(before)
