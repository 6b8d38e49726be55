"""What a tuning runs: flag grids expanded, sampled or given as a table; its stable id.

A *trial* is one set of flag overrides plus its number (1-based position in
the grid or table), which is also the ``trial`` tag of its run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainrun.exceptions import UsageError

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Trial:
    """One trial of a tuning: its number and the flags it overrides."""

    number: int
    flags: dict[str, Any] = field(hash=False)

    def describe(self) -> str:
        return " ".join(
            f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in self.flags.items()
        )


def _plain(value: Any, where: str) -> Any:
    """A flag value as a plain Python scalar (numpy scalars unwrapped), or a clear error."""
    if hasattr(value, "item") and not isinstance(value, _SCALARS):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if not isinstance(value, _SCALARS):
        raise UsageError(
            f"Flag values must be strings, numbers, booleans or None; {where} is a "
            f"{type(value).__name__}. Received: {value!r}"
        )
    return value


def _check_name(name: Any, arg: str) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError(
            f"The '{arg}' argument of tuning_run must have non-empty string flag names. "
            f"Received: {name!r}"
        )
    return name


def expand_grid(flags: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in a fixed order: the last flag varies fastest.

    >>> expand_grid({"dropout": [0.1, 0.2], "layer1": [64, 128]})
    [{'dropout': 0.1, 'layer1': 64}, {'dropout': 0.1, 'layer1': 128}, {'dropout': 0.2, 'layer1': 64}, {'dropout': 0.2, 'layer1': 128}]
    """
    if not isinstance(flags, Mapping):
        raise UsageError(
            "The 'flags' argument of tuning_run must be a dict mapping flag names to lists "
            f"of values, e.g. {{'dropout': [0.1, 0.2]}}. Received: {flags!r}"
        )
    if not flags:
        raise UsageError(
            "The 'flags' argument of tuning_run is empty; give at least one flag with a list "
            "of values, e.g. {'dropout': [0.1, 0.2]}. Received: flags={}"
        )
    names, columns = [], []
    for name, values in flags.items():
        _check_name(name, "flags")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, range)):
            if hasattr(values, "tolist") and not isinstance(values, _SCALARS):
                values = values.tolist()  # numpy arrays and pandas Series
            else:
                raise UsageError(
                    f"The grid value of flag '{name}' must be a list of values to try; wrap a "
                    f"single value in a list: {name}=[{values!r}]. Received: {name}={values!r}"
                )
        values = [_plain(v, f"a value of flag '{name}'") for v in values]
        if not values:
            raise UsageError(
                f"The grid value of flag '{name}' is an empty list; give at least one value. "
                f"Received: {name}=[]"
            )
        names.append(name)
        columns.append(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*columns)]


def table_trials(trials: Any) -> list[dict[str, Any]]:
    """Trials given as a table: a pandas DataFrame (a row each) or a list of dicts.

    Missing cells (NaN / None in a DataFrame) leave that flag at the script's default.
    """
    rows: list[Mapping[str, Any]]
    if hasattr(trials, "to_dict") and hasattr(trials, "columns"):
        rows = []
        for row in trials.to_dict(orient="records"):
            rows.append(
                {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            )
    elif isinstance(trials, Sequence) and not isinstance(trials, (str, bytes)):
        rows = list(trials)
    else:
        raise UsageError(
            "The 'trials' argument of tuning_run must be a pandas DataFrame or a list of dicts "
            f"of flag values. Received: {type(trials).__name__}"
        )
    if not rows:
        raise UsageError("The 'trials' argument of tuning_run holds no trials. Received: trials=[]")
    out = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise UsageError(
                f"Trial {i} in 'trials' must be a dict of flag values. Received: {row!r}"
            )
        out.append(
            {
                _check_name(k, "trials"): _plain(v, f"flag '{k}' of trial {i}")
                for k, v in row.items()
            }
        )
    return out


def fixed_flags(flags: Mapping[str, Any] | None) -> dict[str, Any]:
    """Flag values given to every trial of a search, checked: names strings, values scalars."""
    if flags is None:
        return {}
    if not isinstance(flags, Mapping):
        raise UsageError(
            f"'flags' must be a dict of fixed flag values, e.g. {{'epochs': 5}}. Received: {flags!r}"
        )
    return {_check_name(k, "flags"): _plain(v, f"flag '{k}'") for k, v in flags.items()}


def sample_count(sample: Any, total: int) -> int:
    """How many trials ``sample`` asks for out of ``total``: a fraction in (0, 1] or a count."""
    if isinstance(sample, bool) or not isinstance(sample, (int, float)):
        raise UsageError(
            "The 'sample' argument of tuning_run must be a fraction in (0, 1] or a positive "
            f"count of trials. Received: sample={sample!r}"
        )
    if isinstance(sample, float):
        if not 0.0 < sample <= 1.0:
            raise UsageError(
                "A fractional 'sample' must be in (0, 1]; for a count of trials pass an int. "
                f"Received: sample={sample!r}"
            )
        return max(1, round(sample * total))
    if sample < 1:
        raise UsageError(f"A 'sample' count must be at least 1. Received: sample={sample!r}")
    if sample > total:
        raise UsageError(
            f"sample={sample} asks for more trials than there are ({total}); pass at most "
            f"{total}, or a fraction. Received: sample={sample!r}"
        )
    return int(sample)


def build_trials(
    flags: Mapping[str, Any] | None,
    trials: Any,
    sample: Any = None,
    seed: int | None = None,
) -> list[Trial]:
    """The trials of a tuning, numbered by their position in the full grid or table.

    ``sample`` keeps a random subset, drawn without replacement (reproducibly when
    ``seed`` is given) and kept in grid order.
    """
    if flags is not None and trials is not None:
        raise UsageError(
            "tuning_run takes either 'flags' (a grid to expand) or 'trials' (a table of "
            "trials), not both."
        )
    if flags is None and trials is None:
        raise UsageError(
            "tuning_run needs 'flags' (a grid such as {'dropout': [0.1, 0.2]}) or 'trials' "
            "(a DataFrame or list of dicts, one trial each). Received neither."
        )
    rows = expand_grid(flags) if flags is not None else table_trials(trials)
    numbered = [Trial(i, row) for i, row in enumerate(rows, start=1)]
    if sample is None:
        return numbered
    n = sample_count(sample, len(numbered))
    keep = sorted(random.Random(seed).sample(range(len(numbered)), n))
    return [numbered[i] for i in keep]


def tuning_id_for(script: str | os.PathLike[str], payload: Any) -> str:
    """A stable id for (script, what it tunes): the same tuning run again gets the same id.

    ``payload`` is the trials (a list of :class:`Trial`) or any JSON-able
    description of the search.

    >>> tuning_id_for("train.py", [Trial(1, {"dropout": 0.1})])[:6]
    'train-'
    """
    path = os.path.abspath(os.fspath(script))
    if isinstance(payload, Sequence) and all(isinstance(t, Trial) for t in payload):
        payload = [[t.number, t.flags] for t in payload]
    text = json.dumps({"script": path, "tuning": payload}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(path))[0])
    return f"{stem}-{digest}"


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes"):
            return 1.0
        if text in ("false", "no"):
            return 0.0
        try:
            return float(text)
        except ValueError:
            return None
    return None


def same_value(requested: Any, recorded: Any) -> bool:
    """Whether a recorded flag value is the value a trial asked for.

    The script converts what it is given to the flag's declared type, so "0.1"
    from the command line is recorded as 0.1 and "true" as True.
    """
    if requested == recorded or str(requested) == str(recorded):
        return True
    a, b = _as_number(requested), _as_number(recorded)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


def flags_match(requested: Mapping[str, Any], recorded: Mapping[str, Any]) -> bool:
    """Whether a run's recorded flags hold every value a trial asked for."""
    for name, value in requested.items():
        if name in recorded:
            other = recorded[name]
        elif name.replace("-", "_") in recorded:
            other = recorded[name.replace("-", "_")]
        else:
            return False
        if not same_value(value, other):
            return False
    return True
