"""Values formatted for people, the same in the CLI, the reports and the dashboard.

One owner for sizes, durations, numbers and timestamps, so a run shows "1.5 MB" and
"2 min 5 s" wherever it is shown.

>>> size(1536)
'1.5 KiB'
>>> duration(125)
'2 min 5 s'
>>> duration(125, compact=True)
'2m05s'
>>> number(0.123456789)
'0.123457'
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

#: what a missing value looks like
MISSING = "—"

_SIZE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def size(n: Any) -> str:
    """A size in bytes, in binary units: ``size(1536) == '1.5 KiB'``."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        return MISSING
    value = float(n)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable: the last unit always returns")


def duration(seconds: Any, *, compact: bool = False) -> str:
    """A duration: ``'4.2 s'``, ``'2 min 5 s'``, ``'1 h 3 min'`` (compact: ``'2m05s'``, for tables)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return MISSING
    if not math.isfinite(seconds) or seconds < 0:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f}s" if compact else f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if compact else f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if compact else f"{hours} h {minutes} min"


def number(value: Any) -> str:
    """A value as a table cell shows it: six significant digits for floats, JSON for containers."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def timestamp(value: Any) -> str:
    """An ISO UTC timestamp shown to the second: ``'2026-11-27 10:15:42 UTC'``."""
    if not isinstance(value, str) or not value:
        return MISSING
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def svg_line(xs: list[float], ys: list[float], *, width: int = 360, height: int = 90) -> str:
    """A small inline SVG line chart of ``ys`` against ``xs`` (a notebook's glance at a loss
    curve), at most 400 points drawn; '' when there is nothing finite to draw."""
    points = [
        (x, y)
        for x, y in zip(xs, ys, strict=False)
        if isinstance(y, (int, float)) and math.isfinite(y)
    ]
    if len(points) < 2:
        return ""
    every = max(1, len(points) // 400)
    points = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
    x0, x1 = points[0][0], points[-1][0]
    lo = min(y for _, y in points)
    hi = max(y for _, y in points)
    span_x = (x1 - x0) or 1
    span_y = (hi - lo) or 1
    pad = 4
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{pad + (x - x0) / span_x * (width - 2 * pad):.1f},"
        f"{height - pad - (y - lo) / span_y * (height - 2 * pad):.1f}"
        for i, (x, y) in enumerate(points)
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<path d="{path}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/></svg>'
    )
