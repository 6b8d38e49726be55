"""Metric series for the report charts: grouping, downsampling, and SVG geometry.

Charts are drawn as hand-written SVG (no charting library, nothing fetched from
the network). A series longer than :data:`MAX_POINTS` is downsampled with
min/max buckets: each bucket keeps its lowest and its highest point, so spikes
in a loss curve survive while 100,000 points shrink to 2,000.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: at most this many points are drawn per series
MAX_POINTS = 2000

#: prefixes that mark a validation series, drawn on the same chart as its training twin
VALIDATION_PREFIXES = ("val_", "validation_", "valid_", "eval_", "eval/")

#: keys of a metrics.jsonl line that are not metrics
NON_METRIC_KEYS = ("step", "time", "epoch")

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)

WIDTH, HEIGHT = 640, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 14, 36


#: Series with at most this many points get a dot at each point.
MAX_MARKED_POINTS = 40


def base_name(metric: str) -> tuple[str, str]:
    """Split a metric name into (chart name, role): 'val_loss' -> ('loss', 'validation')."""
    for prefix in VALIDATION_PREFIXES:
        if metric.startswith(prefix) and len(metric) > len(prefix):
            return metric[len(prefix) :], "validation"
    return metric, "training"


def downsample(x: Sequence[float], y: Sequence[float], max_points: int = MAX_POINTS):
    """Reduce a series to at most ``max_points`` points, keeping each bucket's min and max.

    >>> xs, ys = downsample(list(range(10_000)), [float(i % 7) for i in range(10_000)], 100)
    >>> len(xs) <= 100
    True
    """
    n = len(x)
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if n <= max_points:
        return xa.tolist(), ya.tolist()
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    # reduceat gives each bucket's min and max; their positions come from a second pass
    lo = np.minimum.reduceat(ya, starts)
    hi = np.maximum.reduceat(ya, starts)
    counts = ends - starts
    bucket_of = np.repeat(np.arange(len(starts)), counts)
    is_lo = ya == lo[bucket_of]
    is_hi = ya == hi[bucket_of]
    idx = np.arange(n)
    # the first index of each bucket where the min (max) is reached
    lo_idx = np.full(len(starts), n, dtype=np.int64)
    hi_idx = np.full(len(starts), n, dtype=np.int64)
    np.minimum.at(lo_idx, bucket_of[is_lo], idx[is_lo])
    np.minimum.at(hi_idx, bucket_of[is_hi], idx[is_hi])
    chosen = np.unique(np.concatenate([lo_idx, hi_idx, [0, n - 1]]))
    chosen = chosen[chosen < n]
    return xa[chosen].tolist(), ya[chosen].tolist()


def metric_series(history: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every numeric metric of a history as {name: {"x": steps, "y": values}} (numpy arrays).

    The x axis is the logged ``step``; a line without one takes its position in
    the history, so a script that never passes ``step`` still gets a chart.
    Non-finite values (NaN written by hand) are left out.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}
    skip = set(NON_METRIC_KEYS)
    for position, rec in enumerate(history):
        step = rec.get("step")
        # exact type checks (bool is no number here): this loop runs once per logged value
        x: float = step if type(step) in (int, float) else position  # type: ignore[assignment]
        for key, value in rec.items():
            kind = type(value)
            if (kind is float or kind is int) and key not in skip:
                pair = series.get(key)
                if pair is None:
                    pair = series[key] = ([], [])
                pair[0].append(x)
                pair[1].append(value)
    out = {}
    for key, (xs, ys) in series.items():
        xa = np.asarray(xs, dtype=float)
        ya = np.asarray(ys, dtype=float)
        ok = np.isfinite(xa) & np.isfinite(ya)
        if not ok.all():
            xa, ya = xa[ok], ya[ok]
        if len(xa):
            out[str(key)] = {"x": xa, "y": ya}
    return out


def build_charts(
    histories: Sequence[tuple[str, Iterable[Mapping[str, Any]]]], max_points: int = MAX_POINTS
) -> list[dict[str, Any]]:
    """One chart per metric, training and validation series overlaid, one run or several.

    ``histories`` is a list of (run id, metric history). The result is plain data
    (JSON-ready): [{"name", "series": [{"label", "run", "metric", "role", "color",
    "dashed", "x", "y", "points"}]}], charts in first-logged order.
    """
    charts: dict[str, dict[str, Any]] = {}
    several = len(histories) > 1
    for run_index, (run_id, history) in enumerate(histories):
        for metric, s in metric_series(history).items():
            name, role = base_name(metric)
            chart = charts.setdefault(name, {"name": name, "series": []})
            x, y = downsample(s["x"], s["y"], max_points)
            n_in_chart = len(chart["series"])
            color = PALETTE[(run_index if several else n_in_chart) % len(PALETTE)]
            chart["series"].append(
                {
                    "label": f"{run_id}: {metric}" if several else metric,
                    "run": run_id,
                    "metric": metric,
                    "role": role,
                    "color": color,
                    "dashed": role == "validation",
                    "x": x,
                    "y": y,
                    "points": len(s["x"]),
                }
            )
    # a chart whose only series are validation ones is still named after the metric
    return list(charts.values())


# ---------------------------------------------------------------- geometry


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks: list[float] = []
    v = first
    while v <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    return ticks


def format_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.6g}"


def chart_geometry(chart: Mapping[str, Any]) -> dict[str, Any]:
    """Pixel geometry of one chart for the SVG template: axes, ticks and one path per series."""
    xs = [v for s in chart["series"] for v in s["x"]]
    ys = [v for s in chart["series"] for v in s["y"]]
    empty = not xs
    if empty:
        xs, ys = [0.0, 1.0], [0.0, 1.0]
    xt = nice_ticks(min(xs), max(xs))
    yt = nice_ticks(min(ys), max(ys))
    x0, x1 = min(xt[0], min(xs)), max(xt[-1], max(xs))
    y0, y1 = min(yt[0], min(ys)), max(yt[-1], max(ys))
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pw = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    ph = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def px(v: float) -> float:
        return MARGIN_LEFT + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return MARGIN_TOP + (1 - (v - y0) / (y1 - y0)) * ph

    paths = []
    for s in chart["series"]:
        if not s["x"]:
            continue
        pts = [f"{px(a):.1f},{py(b):.1f}" for a, b in zip(s["x"], s["y"], strict=False)]
        d = "M" + " L".join(pts)
        if len(pts) == 1:
            # a single point: a short horizontal tick so it is visible
            x, y = pts[0].split(",")
            d = f"M{float(x) - 3:.1f},{y} L{float(x) + 3:.1f},{y}"
        # few points (an estimator logging every 100 steps): dots, so each one shows
        marks = [tuple(pt.split(",")) for pt in pts] if len(pts) <= MAX_MARKED_POINTS else []
        paths.append(
            {
                "d": d,
                "marks": marks,
                "color": s["color"],
                "dashed": s["dashed"],
                "label": s["label"],
                "points": s["points"],
                "last": format_number(s["y"][-1]),
            }
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": MARGIN_LEFT,
        "right": WIDTH - MARGIN_RIGHT,
        "top": MARGIN_TOP,
        "bottom": HEIGHT - MARGIN_BOTTOM,
        "xticks": [
            {"pos": round(px(t), 1), "label": format_number(t)} for t in xt if x0 <= t <= x1
        ],
        "yticks": [
            {"pos": round(py(t), 1), "label": format_number(t)} for t in yt if y0 <= t <= y1
        ],
        "paths": paths,
        "empty": empty,
        "domain": [x0, x1, y0, y1],
    }
