"""The order of a runs table's columns: what differs between the runs comes first.

One rule for ``ls_runs()``, ``trainrun ls`` and the dashboard: the run's id, status and
name; the flags whose values differ across the listed runs; the chosen (ordering) metric
and the evaluation metrics, then the last logged metrics; then what is the same in every
run (constant flags), tags and notes, times and script, and the run's folder last.

>>> import pandas as pd
>>> df = pd.DataFrame({"run_dir": ["a", "b"], "id": ["r1", "r2"], "status": ["completed"] * 2,
...                    "flag_lr": [0.1, 0.2], "flag_act": ["relu", "relu"], "eval_acc": [0.8, 0.9]})
>>> column_order(df)
['id', 'status', 'flag_lr', 'eval_acc', 'flag_act', 'run_dir']
>>> constant_summary(df)
'same in every run: act=relu'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "LEAD",
    "column_order",
    "constant_columns",
    "constant_summary",
    "is_metric",
    "short_id",
    "values",
    "varying_columns",
]

#: always first
LEAD = ("id", "status", "run_name")
#: after what varies, in this order
TAIL_BASE = ("start", "end", "duration", "script", "exit_code")
_METRIC_PREFIXES = ("eval_", "metric_")


def is_metric(name: str) -> bool:
    return name.startswith(_METRIC_PREFIXES)


def _key(value: Any) -> Any:
    """A hashable stand-in for a cell: NaN and None are one value (missing), floats as floats."""
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    if value.__class__.__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, (list, dict)):
        return repr(value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _distinct(values: Sequence[Any], stop: int = 2) -> int:
    seen = set()
    for v in values:
        seen.add(_key(v))
        if len(seen) >= stop:
            break
    return len(seen)


def varying_columns(df: Any, prefix: str = "flag_") -> list[str]:
    """Columns starting with ``prefix`` whose values differ across the rows (a value and a
    missing value differ). With one run or none, every such column counts as varying: there
    is nothing to compare, so nothing is hidden."""
    names = [c for c in df.columns if c.startswith(prefix)]
    if len(df) <= 1:
        return names
    if getattr(df, "plain_rows", False):  # plain rows (``_rows.Rows``: trainrun ls, without pandas)
        return [c for c in names if _varies_list(df.column(c))]
    return [c for c in names if _varies(df[c])]


def values(df: Any, name: str) -> list[Any]:
    """A column of a DataFrame or of ``_rows.Rows`` as a list of Python values."""
    return df.column(name) if getattr(df, "plain_rows", False) else df[name].tolist()


def _varies_list(values: list[Any]) -> bool:
    """``_varies`` over a list: None and NaN are missing; values compared as pandas does."""
    n_missing = sum(1 for v in values if _key(v) is None)
    if n_missing:
        return n_missing < len(values)
    return _distinct(values) > 1


def _varies(column: Any) -> bool:
    """True when the column holds two different values (a value and a missing one differ).
    Counted by pandas in C (100,000 runs: a few ms a column); lists and dicts in Python."""
    missing = column.isna()
    n_missing = int(missing.sum())
    if n_missing:
        return n_missing < len(column)
    try:
        return bool(column.nunique(dropna=True) > 1)
    except TypeError:  # unhashable values (a flag holding a list or a mapping)
        return _distinct(column.tolist()) > 1


def constant_columns(df: Any, prefix: str = "flag_") -> list[str]:
    varying = set(varying_columns(df, prefix))
    return [c for c in df.columns if c.startswith(prefix) and c not in varying]


def _shown(value: Any) -> str:
    from trainrun._humanize import number

    return number(None if _key(value) is None else value)


def constant_summary(df: Any, prefix: str = "flag_", limit: int = 200) -> str:
    """One line naming the ``prefix`` columns that are the same in every run, with their values."""
    constant = constant_columns(df, prefix) if len(df) > 1 else []
    if not constant:
        return ""
    # the first value as Python's (tolist): a numpy bool would show as True, not true
    parts = [f"{c[len(prefix) :]}={_shown(values(df, c)[0])}" for c in constant]
    text = "same in every run: " + ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def column_order(df: Any, primary: str | Sequence[str] | None = None) -> list[str]:
    """Every column of ``df``, ordered so the comparison reads first (see the module docstring).

    ``primary``: the column(s) the listing is ordered by; a metric among them comes before
    the other metrics.
    """
    names = list(df.columns)
    out: list[str] = [c for c in LEAD if c in names]

    def take(items: Sequence[str]) -> None:
        out.extend(c for c in items if c in names and c not in out)

    take(varying_columns(df, "flag_"))
    chosen = [primary] if isinstance(primary, str) else list(primary or ())
    take([c for c in chosen if is_metric(c)])
    take([c for c in names if c.startswith("eval_")])
    take([c for c in names if c.startswith("metric_")])
    take(constant_columns(df, "flag_"))
    take([c for c in names if c.startswith("tag_")])
    take(["run_note"])
    take(TAIL_BASE)
    take([c for c in names if c != "run_dir"])
    take(["run_dir"])
    return out


def short_id(run_id: str) -> str:
    """A run id without its year and zone: ``2026-11-27T10-15-42Z`` -> ``11-27 10:15:42``."""
    if len(run_id) >= 20 and run_id[4] == "-" and run_id[10] == "T":
        rest = run_id[20:]
        return f"{run_id[5:10]} {run_id[11:19].replace('-', ':')}{rest}"
    return run_id
