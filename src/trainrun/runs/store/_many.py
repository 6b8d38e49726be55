"""What ``ls_runs`` returns, accepted wherever a run is named (tfruns' habit).

tfruns users pass the data frame of ``ls_runs`` straight on:
``copy_run(ls_runs(filter="eval_acc >= 0.98"), to="best-runs")``. Every
function that takes a run takes, in its place: a DataFrame of ``ls_runs`` (or
any table with a ``run_dir`` or ``id`` column), one of its rows (a Series),
a list or tuple of ids, folders or rows. :func:`many` turns any of these into a
list of references; :func:`single` insists on exactly one, for the functions
that show one run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from trainrun.exceptions import FilterError, RunNotFoundError


def is_table(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iterrows")


def is_many(value: Any) -> bool:
    """A table, or a list/tuple of references: several runs (possibly one, or none)."""
    return is_table(value) or isinstance(value, (list, tuple))


def many(runs: Any) -> list[Any]:
    """One run or several, as a list of references (ids, folders, rows)."""
    if is_table(runs):
        for column in ("run_dir", "id"):
            if column in runs.columns:
                return list(runs[column].tolist())
        raise RunNotFoundError(
            "The runs table has neither a 'run_dir' nor an 'id' column to name its runs; "
            "pass a table from ls_runs(), or ids."
        )
    if isinstance(runs, (list, tuple)):
        out: list[Any] = []
        for item in runs:
            out.extend(many(item) if is_many(item) else [item])
        return out
    return [runs]


def single(run: Any, verb: str) -> Any:
    """The one run of ``run``; a table or list of several is refused with a clear message."""
    if not is_many(run):
        return run
    refs = many(run)
    if len(refs) == 1:
        return refs[0]
    raise RunNotFoundError(
        f"{verb}() takes one run, but was given {len(refs)}"
        + (" (an empty table: the filter matched no run)" if not refs else "")
        + "; pick one, e.g. df.iloc[[0]] or an id. Received: "
        + ", ".join(str(r) for r in refs[:5])
        + (" ..." if len(refs) > 5 else "")
    )


_FILTER_MARKS = ("<", ">", "=", "!", " and ", " or ", "not ", "(")


def check_runs_dir(runs_dir: Any) -> None:
    """tfruns' first argument of ls_runs is a filter, ours the runs folder: no silent trap.

    A runs folder that does not exist and reads like a filter expression
    (``"eval_acc > 0.5"``) would list nothing at all; refuse it instead.
    """
    if not isinstance(runs_dir, str) or os.path.exists(runs_dir):
        return
    if any(mark in runs_dir for mark in _FILTER_MARKS):
        raise FilterError(
            f"ls_runs() takes the runs folder first, and {runs_dir!r} is no folder but looks "
            f"like a filter (tfruns' first argument); pass it as filter=, e.g. "
            f"ls_runs(filter={runs_dir!r}). Received: runs_dir={runs_dir!r}"
        )


def row_mapping(value: Any) -> Mapping[str, Any] | None:
    """A one-row reference as a mapping (a Series or dict), else None."""
    if isinstance(value, Mapping):
        return value
    if hasattr(value, "to_dict") and hasattr(value, "index") and not is_table(value):
        return value.to_dict()
    return None


def tfruns_filter(expr: Any) -> Any:
    """tfruns' ``completed`` column in a filter: ``completed`` reads ``(status == 'completed')``.

    tfruns lists a logical ``completed`` column and its users filter on it
    (``ls_runs(completed)``, ``completed == TRUE``); here the status says it, so the
    name (and R's ``TRUE``/``FALSE`` in such a filter) is rewritten before parsing. Anything else (a parsed Filter, an expression without the
    name) passes unchanged.
    """
    if not isinstance(expr, str) or "completed" not in expr:
        return expr
    words = {"completed": "(status == 'completed')", "TRUE": "true", "FALSE": "false"}
    from trainrun.runs.store._filter import tokenize

    try:
        tokens = tokenize(expr)
    except FilterError:
        return expr  # parse_filter reports it, with its caret
    out = expr
    for tok in reversed(tokens):
        if tok.kind == "name" and tok.text in words:  # R's TRUE/FALSE beside `completed`
            out = out[: tok.pos] + words[tok.text] + out[tok.pos + len(tok.text) :]
    return out
