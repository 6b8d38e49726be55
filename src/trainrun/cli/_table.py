"""``trainrun ls``'s table: what differs between the runs first, fitted to the terminal.

The columns come in ``ls_runs()``'s order (``trainrun.runs.store._columns``): id, status,
name, the flags that differ, the metrics. Flags that are the same in every run are not
columns: one line under the table names them with their value (``--all`` shows them).
When the terminal is too narrow, columns are dropped from the right, but never the id,
the status, a flag that differs or the ordering metric: their headers lose the ``flag_``
and ``eval_`` prefixes, the id is shortened and long values are cut instead (only a
terminal too narrow even for that loses its last columns).
"""

from __future__ import annotations

from trainrun import _humanize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: ANSI colours of the statuses (on a terminal only)
STATUS_COLORS = {
    "completed": "32",  # green
    "failed": "31",  # red
    "running": "36",  # cyan
    "interrupted": "33",  # yellow
    "killed": "35",  # magenta
}
#: columns shown after what varies, while the width allows (the rest need --all)
OPTIONAL = ("metric_", "duration", "start", "tag_", "run_note", "script")
_CUT = 40  # longest cell text
_TIGHT_CUT = 12  # longest cell text of a column kept when nothing else fits


def cell(value: Any, column: str) -> str:
    """One value as the table shows it (missing values as empty cells)."""
    if value is None or value.__class__.__name__ in ("NAType", "NaTType"):
        return ""
    if isinstance(value, float) and value != value:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if column == "duration":
        return _humanize.duration(value, compact=True)
    if isinstance(value, float):
        return f"{value:.4g}"
    if column == "script" and isinstance(value, str):
        value = value.replace("\\", "/").rsplit("/", 1)[-1]
    text = _humanize.number(value).replace("\n", " ")
    return text if len(text) <= _CUT else text[: _CUT - 1] + "…"


def _numeric(values: list[Any]) -> bool:
    return all(
        (isinstance(v, (int, float)) and not isinstance(v, bool)) or cell(v, "") == ""
        for v in values
    )


def _wanted(
    names: Sequence[str], order: Any, show_all: bool, constant: set[str]
) -> tuple[list[str], set[str]]:
    """(columns to try, in order; the ones that must stay)"""
    from trainrun.runs.store._columns import LEAD, is_metric

    primary = [order] if isinstance(order, str) else list(order or ())
    must = {c for c in names if c in LEAD or (c.startswith("flag_") and c not in constant)}
    metrics = [c for c in names if is_metric(c)]
    must |= {c for c in primary if c in names} or set(metrics[:1])
    if show_all:
        return list(names), must
    out = []
    for name in names:
        if name in constant or name == "run_dir":
            continue
        if name in must or name.startswith("eval_") or name.startswith(OPTIONAL):
            out.append(name)
    return out, must


def format_table(
    df: Any,
    width: int | None = None,
    columns: list[str] | None = None,
    *,
    color: bool = False,
    show_all: bool = False,
    order: Any = None,
) -> str:
    """The runs as an aligned text table that fits ``width`` characters."""
    from trainrun.runs.store._columns import constant_columns, constant_summary, values

    if len(df) == 0:
        return "No runs."
    constant = set(constant_columns(df)) if len(df) > 1 and columns is None else set()
    if columns is not None:
        names, must = list(columns), set(columns)
    else:
        names, must = _wanted(list(df.columns), order, show_all, constant)
    cols = {n: values(df, n) for n in names}  # a DataFrame, or plain rows (_rows.Rows)
    texts = {n: [cell(v, n) for v in cols[n]] for n in names}
    headers = {n: n for n in names}

    shown = _fit(names, must, headers, texts, df, width) if columns is None else list(names)
    hidden = len(names) - len(shown)
    widths = {n: _width(n, headers, texts) for n in shown}
    numeric = {n: _numeric(cols[n]) for n in shown}

    def line(values: dict[str, str], paint: bool) -> str:
        parts = []
        for n in shown:
            text = values[n]
            padded = text.rjust(widths[n]) if numeric[n] else text.ljust(widths[n])
            if paint and n == "status" and text in STATUS_COLORS:
                padded = f"\x1b[{STATUS_COLORS[text]}m{text}\x1b[0m" + padded[len(text) :]
            parts.append(padded)
        return "  ".join(parts).rstrip()

    lines = [line(headers, False)]
    for i in range(len(df)):
        lines.append(line({n: texts[n][i] for n in shown}, color))
    summary = constant_summary(df) if columns is None and not show_all else ""
    if summary:
        cut = (width or 10_000) - len(" (--all shows them)")
        if len(summary) > cut > 20:
            summary = summary[: cut - 1] + "…"
        lines.append(summary + " (--all shows them)")
    if hidden:
        lines.append(
            f"({hidden} more column(s) hidden: widen the terminal, or use --columns, --all "
            "or --format csv)"
        )
    return "\n".join(lines)


def _width(n: str, headers: dict[str, str], texts: dict[str, list[str]]) -> int:
    return max([len(headers[n]), *(len(t) for t in texts[n])])


def _fit(
    names: list[str],
    must: set[str],
    headers: dict[str, str],
    texts: dict[str, list[str]],
    df: Any,
    width: int | None,
) -> list[str]:
    """The columns that fit ``width``: optional ones dropped from the right, then the
    must-haves made narrower."""
    shown = list(names)
    if width is None:
        return shown

    def total() -> int:
        return sum(_width(c, headers, texts) + 2 for c in shown) - 2

    for n in reversed(names):
        if total() <= width:
            break
        if n not in must:
            shown.remove(n)
    if total() > width:
        _tighten(shown, headers, texts, df)
    # a terminal narrower than what varies: the last columns go, the footer says so
    while total() > width and len(shown) > 2:
        shown.pop()
    return shown


def _tighten(
    shown: list[str], headers: dict[str, str], texts: dict[str, list[str]], df: Any
) -> None:
    """Make the must-have columns narrower: short ids, flag names without ``flag_``, cut cells."""
    from trainrun.runs.store._columns import short_id, values

    if "id" in shown:
        texts["id"] = [short_id(str(v)) for v in values(df, "id")]
    for n in shown:
        if n.startswith(("flag_", "eval_")):
            headers[n] = n.split("_", 1)[1]
        if n not in ("id", "status"):
            texts[n] = [t if len(t) <= _TIGHT_CUT else t[: _TIGHT_CUT - 1] + "…" for t in texts[n]]
