"""Report pages for runs: ``view_run``, ``compare_runs`` and their ``save_*`` twins.

A page is a dict of data built once (:mod:`trainrun.runs.report._data`) plus one
jinja2 template shipped with the package. The HTML file, the notebook display
and the dashboard (``trainrun ui``) render the same dict with the same
template. Pages are self-contained: CSS, JavaScript, SVG charts and plots are
inlined, nothing is fetched from the network, so a saved page can be mailed or
archived.

>>> from trainrun import view_run, compare_runs      # doctest: +SKIP
>>> view_run()                        # the latest run   # doctest: +SKIP
>>> compare_runs()                    # the latest two   # doctest: +SKIP
>>> save_run_view("2026-11-27T10-15-42Z", "best.html")   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import html
import json
import os
import tempfile
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from trainrun import _humanize, _interactive
from trainrun.exceptions import UsageError
from trainrun.runs.report import _data as _report_data
from trainrun.runs.report._chart import chart_geometry

__all__ = [
    "RunReport",
    "compare_runs",
    "comparison_report",
    "run_report",
    "save_run_comparison",
    "save_run_view",
    "view_run",
]

RunLike = Any  # an id, a path, an index (0 = latest), a record dict or an ls_runs() row
Viewer = Callable[[str], Any]

#: environment variables that mark a CI job: never open a browser there
CI_VARIABLES = _interactive.CI_VARIABLES


# ---------------------------------------------------------------- templates


_fmt = _humanize.number
_filesize = _humanize.size
_duration = _humanize.duration
_when = _humanize.timestamp


def _cell(value: Any, column: str = "") -> str:
    """A runs-table cell: the script's file name, long values cut (the dashboard's script
    shows the whole value in a tooltip once it re-renders the table)."""
    text = _fmt(value)
    if column == "script" and isinstance(value, str):
        text = value.replace("\\", "/").rsplit("/", 1)[-1]
    return text if len(text) <= 60 else text[:59] + "…"


def script_json(obj: Any) -> Markup:
    """JSON that is safe inside a <script> element: '<', '>' and '&' can end nothing."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=str)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return Markup(text)


@functools.lru_cache(maxsize=4)
def environment(*packages: str) -> jinja2.Environment:
    """The jinja2 environment of the report pages, autoescaped.

    ``packages`` name further packages whose ``templates/`` folders come first (the
    dashboard's own pages extend the report's ``base.html``).
    """
    loaders = [jinja2.PackageLoader(p, "templates") for p in (*packages, __name__)]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cell=_cell, fmt=_fmt, filesize=_filesize, duration=_duration, when=_when)
    return env


@functools.lru_cache(maxsize=8)
def static_text(name: str, package: str = __name__) -> str:
    """A file of ``package``'s ``static/`` folder, for inlining into a page."""
    return resources.files(package).joinpath("static").joinpath(name).read_text(encoding="utf-8")


def render(
    template: str,
    *,
    dashboard: Mapping[str, Any] | None = None,
    packages: tuple[str, ...] = (),
    **context: Any,
) -> str:
    """Render one page template with the shared stylesheet and script inlined."""
    from trainrun import __version__

    return (
        environment(*packages)
        .get_template(template)
        .render(
            css=Markup(static_text("report.css")),
            js=Markup(static_text("report.js")),
            version=__version__,
            dashboard=dashboard,
            **context,
        )
    )


def _chart_views(data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Markup]:
    views = [{"chart": c, "geometry": chart_geometry(c)} for c in data["charts"]]
    embedded = [
        {
            "geometry": {k: v["geometry"][k] for k in ("width", "left", "right", "domain")},
            "series": [
                {"label": s["label"], "color": s["color"], "x": s["x"], "y": s["y"]}
                for s in v["chart"]["series"]
            ],
        }
        for v in views
    ]
    return views, script_json(embedded)


def render_live(data: Mapping[str, Any]) -> dict[str, Any]:
    """A running run's redrawn parts (``_data.live_data``) as HTML fragments and chart data,
    rendered by the same macros as the page, so the page and its updates cannot differ."""
    views, charts_json = _chart_views(data)
    env = environment()
    charts_html = env.get_template("_live.html").module.charts(views)  # type: ignore[attr-defined]
    output_html = env.get_template("_live.html").module.output_part(data["output"])  # type: ignore[attr-defined]
    return {
        "id": data["id"],
        "status": data["status"],
        "elapsed": data["elapsed"],
        "elapsed_text": _humanize.duration(data["elapsed"]),
        "metric_points": data["metric_points"],
        "charts_html": str(charts_html),
        "charts": json.loads(str(charts_json)),
        "output_html": str(output_html),
    }


def render_data(data: Mapping[str, Any], *, dashboard: Mapping[str, Any] | None = None) -> str:
    """The HTML page of a run or comparison dict built by ``_report_data``."""
    views, charts_json = _chart_views(data)
    template = {"run": "run.html", "compare": "compare.html"}[data["kind"]]
    return render(template, data=data, charts=views, charts_json=charts_json, dashboard=dashboard)


# ---------------------------------------------------------------- reports


class RunReport:
    """A report page (one run or a comparison): its data, its HTML, and a notebook display.

    In Jupyter, a ``RunReport`` as the last expression of a cell displays the
    page inline (in an isolated iframe, so its styles do not leak).

    >>> report = run_report()            # doctest: +SKIP
    >>> report.data["evaluation"]        # doctest: +SKIP
    {'accuracy': 0.81, ...}
    >>> report.save("report.html")       # doctest: +SKIP
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @functools.cached_property
    def html(self) -> str:
        return render_data(self.data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (atomically) and return the path."""
        path = Path(path).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.html)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def _repr_html_(self) -> str:
        """The page in an isolated frame that takes the height of its content.

        The page tells its height to the notebook (``postMessage``, see report.js) and a
        small script there sizes the frame; where the notebook runs no scripts (an
        untrusted notebook) the frame starts at a height estimated from the content.
        """
        frame = f"trainrun-report-{id(self):x}"
        srcdoc = html.escape(
            self.html.replace("<body>", f'<body data-frame="{frame}">', 1), quote=True
        )
        return (
            f'<iframe id="{frame}" srcdoc="{srcdoc}" style="width:100%;height:{self._height()}px;'
            'border:1px solid #ddd" sandbox="allow-scripts allow-downloads"></iframe>'
            "<script>(function(){var f=document.getElementById(" + json.dumps(frame) + ");"
            "window.addEventListener('message',function(e){var d=e.data;"
            "if(f&&d&&d.trainrunFrame===f.id&&typeof d.height==='number')"
            "{f.style.height=Math.min(Math.max(d.height,80),20000)+'px';}});})();</script>"
        )

    def _height(self) -> int:
        """A first guess at the page's height in pixels, from what it holds."""
        d = self.data
        rows = (
            len(d.get("flags") or []) + len(d.get("evaluation") or {}) + len(d.get("summary") or [])
        )
        height = 260 + 28 * min(rows, 60) + 330 * ((len(d.get("charts") or []) + 1) // 2)
        height += 120 * len(d.get("sources") or d.get("diffs") or []) + 300
        return int(min(max(height, 300), 4000))

    def __repr__(self) -> str:
        if self.kind == "run":
            return f"<RunReport run {self.data['id']} ({self.data['status']})>"
        return f"<RunReport comparing {', '.join(self.data['ids'])}>"


def run_report(run: RunLike = None, runs_dir: str | os.PathLike[str] = "runs") -> RunReport:
    """The report of one run (default: the latest), for display or saving.

    >>> run_report("2026-11-27T10-15-42Z", runs_dir="runs")   # doctest: +SKIP
    <RunReport run 2026-11-27T10-15-42Z (completed)>
    """
    run_dir = _report_data.resolve_run_dir(run, runs_dir)
    return RunReport(_report_data.run_data(run_dir, runs_dir=_runs_root(run_dir, runs_dir)))


def comparison_report(
    runs: Sequence[RunLike] | None = None, runs_dir: str | os.PathLike[str] = "runs"
) -> RunReport:
    """The comparison of two or more runs (default: the latest two, older first)."""
    dirs = _comparison_dirs(runs, runs_dir)
    return RunReport(_report_data.comparison_data(dirs, runs_dir=_runs_root(dirs[0], runs_dir)))


def _runs_root(run_dir: Path, runs_dir: str | os.PathLike[str]) -> Path:
    root = Path(runs_dir).resolve()
    return root if run_dir.parent == root else run_dir.parent


def _comparison_dirs(
    runs: Sequence[RunLike] | None, runs_dir: str | os.PathLike[str]
) -> list[Path]:
    if runs is None:
        # oldest first, so that the diff reads from the earlier run to the later one
        return list(reversed(_report_data.latest_run_dirs(2, runs_dir)))
    if isinstance(runs, (str, bytes, os.PathLike)) or not hasattr(runs, "__iter__"):
        raise UsageError(
            "compare_runs() takes a list of two or more runs (ids, paths or records). "
            f"Received: runs={runs!r}"
        )
    if hasattr(runs, "columns") and "run_dir" in getattr(runs, "columns", ()):
        runs = list(runs["run_dir"])  # type: ignore[call-overload]  # an ls_runs() DataFrame
    items = list(runs)
    if len(items) < 2:
        raise UsageError(f"compare_runs() needs at least two runs. Received: runs={items!r}")
    return [_report_data.resolve_run_dir(r, runs_dir) for r in items]


# ---------------------------------------------------------------- opening


def is_interactive() -> bool:
    """True when a browser can be shown: not under CI, a display exists, stdout is a terminal."""
    return _interactive.can_open_browser()


_in_notebook = _interactive.in_notebook


def _show(report: RunReport, path: Path, viewer: Viewer | bool | None, label: str) -> None:
    if viewer not in (None, True, False) and not callable(viewer):
        # no silent trap: a misspelt viewer must not quietly do nothing (tfruns users pass names)
        raise UsageError(
            "viewer must be None (open when interactive), True, False or a function given "
            f"the page's path; save a page with save_run_view(). Received: viewer={viewer!r}"
        )
    print(f"{label}: {path}")
    if viewer is False:
        return
    if callable(viewer):
        viewer(str(path))
        return
    if viewer is True:
        webbrowser.open(path.as_uri())
    elif _in_notebook():
        from IPython.display import display  # present wherever a notebook kernel runs

        display(report)
    elif is_interactive():
        webbrowser.open(path.as_uri())


def _view_path(name: str) -> Path:
    folder = Path(tempfile.gettempdir()) / "trainrun-views"
    return folder / name


def view_run(
    run: RunLike = None,
    runs_dir: str | os.PathLike[str] = "runs",
    viewer: Viewer | bool | None = None,
) -> Path:
    """Write the report of a run (default: the latest) and open it when interactive.

    The page goes to a temporary folder; its path is printed and returned. A
    browser opens only in an interactive session with a display (never under
    CI); in Jupyter the page displays inline. ``viewer=False`` never opens,
    ``viewer=True`` always does, a callable is given the path instead.

    >>> path = view_run(viewer=False)          # doctest: +SKIP
    Run report: /tmp/trainrun-views/run-2026-11-27T10-15-42Z.html
    """
    report = run_report(run, runs_dir)
    path = report.save(_view_path(f"run-{report.data['id']}.html"))
    _show(report, path, viewer, "Run report")
    if report.data.get("status") == "running":
        # tfruns' view_run_metrics: the dashboard's page of a running run redraws live
        print(
            f"The run is still running; this page is a snapshot. `trainrun ui --runs-dir "
            f"{runs_dir}` shows it live at http://127.0.0.1:8700/runs/{report.data['id']}"
        )
    return path


def save_run_view(
    run: RunLike = None,
    path: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
) -> Path:
    """Write the report of a run to ``path`` (default: report.html in the run folder); no browser.

    >>> save_run_view("2026-11-27T10-15-42Z", "best.html")   # doctest: +SKIP
    PosixPath('/home/me/project/best.html')
    """
    report = run_report(run, runs_dir)
    if path is None:
        path = Path(report.data["run_dir"]) / "report.html"
    return report.save(path)


def compare_runs(
    runs: Sequence[RunLike] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    viewer: Viewer | bool | None = None,
) -> Path:
    """Write a side-by-side comparison of runs (default: the latest two) and open it when interactive.

    >>> compare_runs(["2026-11-27T10-15-42Z", "2026-11-27T10-20-03Z"], viewer=False)  # doctest: +SKIP
    """
    report = comparison_report(runs, runs_dir)
    ids = report.data["ids"]
    name = f"compare-{ids[0]}-{ids[-1]}" + (f"-{len(ids)}" if len(ids) > 2 else "")
    path = report.save(_view_path(name + ".html"))
    _show(report, path, viewer, "Run comparison")
    return path


def save_run_comparison(
    runs: Sequence[RunLike] | None = None,
    path: str | os.PathLike[str] = "comparison.html",
    runs_dir: str | os.PathLike[str] = "runs",
) -> Path:
    """Write a comparison of runs (default: the latest two) to ``path``; no browser.

    >>> save_run_comparison(None, "latest-two.html")   # doctest: +SKIP
    """
    return comparison_report(runs, runs_dir).save(path)
