"""The dashboard's Starlette application: pages and their JSON twins over one runs folder.

Routes (every page has a JSON twin):

=============================  ======================================
``GET /``                      the runs table (sortable, filterable, live)
``GET /api/runs``              the same rows; ``?filter=EXPR&order=COL&asc=1&latest_n=N``
``GET /runs/{id}``             a run's page, as ``view_run`` writes it
``GET /api/runs/{id}``         its data; ``?fields=status`` for the status alone
``GET /compare?runs=a,b``      two or more runs side by side
``GET /api/compare?runs=a,b``  its data
``GET|POST /runs/{id}/archive`` archive (``clean_runs``) after a confirmation form
``GET|POST /runs/{id}/delete``  delete (``purge_runs``) after a confirmation form
=============================  ======================================

A run id in a URL must be one of the folders listed in the runs folder, so no
URL reaches outside it. Changes happen only through POST with a token the
confirmation page carries (an HMAC of the action and run id with a secret made
when the app starts), so another site cannot trigger them.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import math
import os
import secrets
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from trainrun.exceptions import FilterError, RunRecordError, TrainrunError
from trainrun.runs import record
from trainrun.runs.report import _data as _report_data
from trainrun.runs.report import render, render_data, script_json, static_text

#: how often the pages ask for fresh statuses, in milliseconds
POLL_MS = 2000

#: columns always shown first in the runs table, then eval_*, metric_*, flag_*, tag_* (as tfruns)
LEAD_COLUMNS = ("id", "status", "start", "duration", "script")
GROUP_PREFIXES = ("eval_", "metric_", "flag_", "tag_")

ACTIONS = {
    "archive": ("Archive", "moves the run folder into the runs folder's archive (reversible)"),
    "delete": ("Delete", "deletes the run folder and everything in it; this cannot be undone"),
}

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _json_safe(value: Any) -> Any:
    pandas = sys.modules.get("pandas")
    if pandas is not None and value is not None and pandas.api.types.is_scalar(value):
        if pandas.isna(value):
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return _json_safe(value.item())
        except (TypeError, ValueError):
            return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(record._clean(data), default=str, ensure_ascii=False, allow_nan=False)
    return Response(body, status_code=status_code, media_type="application/json")


def _error_json(message: str, status_code: int) -> Response:
    return _json({"error": message}, status_code)


class Dashboard:
    """The state of one dashboard: its runs folder, its secret, and the route handlers."""

    def __init__(self, runs_dir: str | os.PathLike[str] = "runs") -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.secret = secrets.token_bytes(32)

    # ------------------------------------------------------------ helpers

    def context(self, request: Request) -> dict[str, Any]:
        return {"root": str(request.url_for("index").path), "poll_ms": POLL_MS}

    def token(self, action: str, run_id: str) -> str:
        return hmac.new(self.secret, f"{action}:{run_id}".encode(), hashlib.sha256).hexdigest()

    def run_dir(self, run_id: str) -> Path | None:
        """The folder of ``run_id``, only if it is one of the listed runs (never a path)."""
        if run_id in _report_data.run_ids(self.runs_dir):
            return self.runs_dir / run_id
        return None

    def list_runs(self, params: Any) -> dict[str, Any]:
        """Rows of the runs table, through ls_runs (its filter language and order)."""
        filter_expr = (params.get("filter") or "").strip() or None
        order = params.get("order") or None
        latest_n = params.get("latest_n") or None
        if latest_n is not None:
            try:
                latest_n = int(latest_n)
            except ValueError:
                raise FilterError(
                    f"latest_n must be a positive integer. Received: latest_n={latest_n!r}"
                ) from None
        try:
            from trainrun.runs.store import ls_runs
        except ImportError:
            ls_runs = None
        if not self.runs_dir.is_dir():
            records, names = [], []
        elif ls_runs is not None:
            df = ls_runs(
                runs_dir=self.runs_dir,
                order=order,
                decreasing=not params.get("asc"),
                filter=filter_expr,
                latest_n=latest_n,
            )
            records = df.to_dict(orient="records")
            names = list(df.columns)
        else:
            if filter_expr or order:
                raise FilterError(
                    "Filtering and ordering need trainrun.runs.store, which is not installed. "
                    f"Received: filter={filter_expr!r}, order={order!r}"
                )
            records = _report_data.folder_listing(self.runs_dir)[:latest_n]
            names = list(dict.fromkeys(k for rec in records for k in rec))
        columns = [c for c in LEAD_COLUMNS if c in names]
        for prefix in GROUP_PREFIXES:
            columns += sorted(c for c in names if c.startswith(prefix) and c not in columns)
        rows = [{c: _json_safe(rec.get(c)) for c in columns} for rec in records]
        return {
            "runs_dir": str(self.runs_dir),
            "filter": filter_expr,
            "columns": columns,
            "runs": rows,
            "count": len(rows),
        }

    # ------------------------------------------------------------ routes

    async def index(self, request: Request) -> Response:
        error = None
        try:
            listing = self.list_runs(request.query_params)
        except (FilterError, RunRecordError) as exc:
            error = str(exc)
            listing = {"columns": list(LEAD_COLUMNS), "runs": [], "count": 0, "filter": None}
        body = render(
            "index.html",
            packages=("trainrun.web",),
            dashboard=self.context(request),
            listing=listing,
            filter_text=request.query_params.get("filter", ""),
            error=error,
            runs_dir=str(self.runs_dir),
            listing_json=script_json(listing),
            dashboard_js=Markup(static_text("dashboard.js", "trainrun.web")),
        )
        return HTMLResponse(body, status_code=400 if error else 200)

    async def api_runs(self, request: Request) -> Response:
        try:
            return _json(self.list_runs(request.query_params))
        except (FilterError, RunRecordError) as exc:
            return _error_json(str(exc), 400)

    async def run_page(self, request: Request) -> Response:
        run_dir = self.run_dir(request.path_params["run_id"])
        if run_dir is None:
            return self.not_found(request)
        data = _report_data.run_data(run_dir, runs_dir=self.runs_dir)
        return HTMLResponse(render_data(data, dashboard=self.context(request)))

    async def api_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            return _error_json(f"No run {run_id!r} in {self.runs_dir}.", 404)
        if request.query_params.get("fields") == "status":
            # the live poll: run.json alone, not the metric history
            try:
                run = record.read_json(run_dir / record.RUN_FILE, default={}) or {}
            except RunRecordError as exc:
                return _error_json(str(exc), 500)
            return _json({"id": run_id, "status": record.resolve_status(run)})
        return _json(_report_data.run_data(run_dir, runs_dir=self.runs_dir))

    def _compare_dirs(self, request: Request) -> list[Path] | Response:
        ids = [r for r in (request.query_params.get("runs") or "").split(",") if r]
        if len(ids) < 2:
            return _error_json(
                "Comparing needs two or more run ids, e.g. /compare?runs=ID1,ID2. "
                f"Received: runs={request.query_params.get('runs')!r}",
                400,
            )
        dirs = []
        for run_id in ids:
            run_dir = self.run_dir(run_id)
            if run_dir is None:
                return _error_json(f"No run {run_id!r} in {self.runs_dir}.", 404)
            dirs.append(run_dir)
        return dirs

    async def compare_page(self, request: Request) -> Response:
        dirs = self._compare_dirs(request)
        if isinstance(dirs, Response):
            return self.error_page(request, json.loads(dirs.body)["error"], dirs.status_code)
        data = _report_data.comparison_data(dirs, runs_dir=self.runs_dir)
        return HTMLResponse(render_data(data, dashboard=self.context(request)))

    async def api_compare(self, request: Request) -> Response:
        dirs = self._compare_dirs(request)
        if isinstance(dirs, Response):
            return dirs
        return _json(_report_data.comparison_data(dirs, runs_dir=self.runs_dir))

    async def action(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            return self.not_found(request)
        if self.run_dir(run_id) is None:
            return self.not_found(request)
        if request.method == "GET":
            title, effect = ACTIONS[action]
            return HTMLResponse(
                render(
                    "confirm.html",
                    packages=("trainrun.web",),
                    dashboard=self.context(request),
                    run_id=run_id,
                    action=action,
                    title=title,
                    effect=effect,
                    token=self.token(action, run_id),
                )
            )
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0]
        if not hmac.compare_digest(token, self.token(action, run_id)):
            return self.error_page(
                request,
                "The confirmation token is missing or wrong; open the run page and use its button.",
                403,
            )
        try:
            self.perform(action, run_id)
        except TrainrunError as exc:
            return self.error_page(request, str(exc), 400)
        return RedirectResponse(self.context(request)["root"], status_code=303)

    def perform(self, action: str, run_id: str) -> None:
        from trainrun.runs import store

        func = store.clean_runs if action == "archive" else store.purge_runs
        kwargs: dict[str, Any] = {"runs_dir": self.runs_dir}
        params = inspect.signature(func).parameters
        if "confirm" in params:
            kwargs["confirm"] = False  # the dashboard's form was the confirmation
        # the store warns about (and skips) a run that is still running: tell the user instead
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # an exact folder, never an id: the store also accepts id prefixes
            done = func([str(self.runs_dir / run_id)], **kwargs)
        if not done:
            reason = "; ".join(str(w.message) for w in caught) or "the runs store did nothing"
            raise TrainrunError(f"Could not {action} run {run_id}: {reason}")

    def not_found(self, request: Request) -> Response:
        return self.error_page(request, "No such page or run in this runs folder.", 404)

    def error_page(self, request: Request, message: str, status_code: int) -> Response:
        body = render(
            "message.html",
            packages=("trainrun.web",),
            dashboard=self.context(request),
            title=f"Error {status_code}",
            message=message,
        )
        return HTMLResponse(body, status_code=status_code)


def create_app(
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The dashboard application over ``runs_dir``, ready for uvicorn or a test client.

    ``allowed_hosts`` guards against DNS rebinding: requests naming another
    Host are refused. The default accepts loopback names only.

    >>> from starlette.testclient import TestClient      # doctest: +SKIP
    >>> client = TestClient(create_app("runs"), base_url="http://127.0.0.1")  # doctest: +SKIP
    >>> client.get("/api/runs").json()["count"]          # doctest: +SKIP
    3
    """
    dash = Dashboard(runs_dir)
    routes = [
        Route("/", dash.index, name="index"),
        Route("/api/runs", dash.api_runs),
        Route("/api/runs/{run_id}", dash.api_run),
        Route("/api/compare", dash.api_compare),
        Route("/runs/{run_id}", dash.run_page),
        Route("/compare", dash.compare_page),
        Route("/runs/{run_id}/{action}", dash.action, methods=["GET", "POST"]),
    ]
    hosts = list(allowed_hosts) if allowed_hosts is not None else LOOPBACK_NAMES
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={404: _not_found_handler(dash)},
    )
    app.state.dashboard = dash
    return app


def _not_found_handler(dash: Dashboard):
    async def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _error_json("Not found.", 404)
        return dash.not_found(request)

    return handler
