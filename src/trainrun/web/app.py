"""The dashboard's Starlette application: pages and their JSON twins over one runs folder.

Routes (every page has a JSON twin):

=====================================  ======================================
``GET /``                              the runs table, a page at a time (``?page=N``)
``GET /api/runs``                      the same rows; ``?filter=EXPR&order=COL&asc=1&latest_n=N&page=N``
``GET /api/statuses``                  ids and statuses of a page's runs alone (the live poll)
``GET /api/values?columns=a,b``        those columns of every listed run (the views), at most 2,000
``GET /runs/{id}``                     a run's page, as ``view_run`` writes it
``GET /api/runs/{id}``                 its data; ``?fields=status`` for the status alone
``GET /runs/{id}/files/{area}/{path}`` a regular file of the run's artifacts/ or plots/
``GET /compare?runs=a,b``              two or more runs side by side
``GET /api/compare?runs=a,b``          its data
``GET|POST /runs/{id}/archive``        archive (``clean_runs``) after a confirmation form
``GET|POST /runs/{id}/delete``         delete (``purge_runs``) after a confirmation form
=====================================  ======================================

What it protects (docs/security.md says it in full): a run id in a URL names a
run folder directly inside the runs folder (one or two ``stat`` calls, never a
path), and a file is served only when it is a regular file inside the run,
reached without following any link. Changes happen only through a POST that
carries the confirmation page's token (an HMAC of the action and run id with a
secret made when the app starts), comes from the dashboard's own origin
(``Origin``, else ``Referer``), and, when the dashboard is bound beyond loopback,
carries its password. Every response forbids framing and sniffing, and pages run
only the scripts they were served with (a nonce per response). Handlers that
read files run in Starlette's thread pool, never on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainrun.exceptions import FilterError, RunNotFoundError, RunRecordError, TrainrunError
from trainrun.runs import record
from trainrun.runs.report import _data as _report_data
from trainrun.runs.report import render, render_data, render_live, script_json, static_text
from trainrun.runs.store import RunRecordWarning, clean_runs, ls_runs, purge_runs
from trainrun.runs.store._objectstore import StoreError

#: how often the pages ask for fresh statuses, in milliseconds
POLL_MS = 2000
#: a dashboard over a shared store looks for its changes at most this often (seconds)
STORE_REFRESH_S = 5.0
#: ... and, while it does not answer, at most every STORE_BACKOFF_S (doubling up to it)
STORE_BACKOFF_S = 60.0
#: a machine's first listing of a store runs beside the server (every row is fetched, unless
#: a recent snapshot serves): a request waits at most this long for it, then lists what is in
FIRST_LISTING_WAIT_S = 10.0
#: runs per page of the runs table
PAGE_SIZE = 200

#: columns always shown first in the runs table (then what ls_runs puts first: the flags
#: that differ, the metrics...; see trainrun.runs.store._columns)
LEAD_COLUMNS = ("id", "status", "run_name")
GROUP_PREFIXES = ("eval_", "metric_", "flag_", "tag_", "run_", "prop_", "error_")
#: columns the table hides until the column chooser shows them (flags the same in every
#: listed run are hidden too, and named in one line above the table)
HIDDEN_COLUMNS = ("end", "exit_code", "run_dir", "error_traceback")
#: the most runs the scatter and parallel coordinates draw (the first of the listing's order)
VIEW_LIMIT = 2000
#: the most columns one request for their values may name
VIEW_COLUMNS = 40
#: the largest file a preview page shows (the download is always whole)
PREVIEW_LIMIT = 256 * 1024
#: what a preview shows of a CSV file
PREVIEW_ROWS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

ACTIONS = {
    "archive": ("Archive", "moves the run folder into the runs folder's archive (reversible)"),
    "delete": ("Delete", "deletes the run folder and everything in it; this cannot be undone"),
}
#: the run subfolders whose files the dashboard serves for download
FILE_AREAS = (record.ARTIFACTS_DIR, record.PLOTS_DIR)

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]

_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
    "img-src data: 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


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
    body = json.dumps(
        record.json_safe(record._clean(data)), default=str, ensure_ascii=False, allow_nan=False
    )
    return Response(body, status_code=status_code, media_type="application/json")


def _error_json(message: str, status_code: int) -> Response:
    return _json({"error": message}, status_code)


class SecurityHeaders:
    """ASGI middleware: every response forbids framing and MIME sniffing, and carries a
    CSP whose script nonce is made per request (``scope["state"]["csp_nonce"]``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        extra = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"content-security-policy", _CSP.format(nonce=nonce).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Dashboard:
    """The state of one dashboard: its runs folder, its secrets, and the route handlers."""

    def __init__(
        self,
        runs_dir: str | os.PathLike[str] = "runs",
        *,
        password: str | None = None,
        refresh_interval: float = STORE_REFRESH_S,
    ) -> None:
        #: a shared store (``s3://...``): the dashboard lists this machine's cache of its
        #: index, brought up to date from the store's changes at most every
        #: ``refresh_interval`` seconds when a page or the live poll asks, and fetches a run's
        #: files (into ``mirror/``) only when a page needs them (docs/shared-store.md)
        self.store: str | None = None
        self.remote: Any = None
        if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
            from trainrun.runs.store._remote_index import RemoteRuns

            self.store = runs_dir.rstrip("/")
            self.remote = RemoteRuns(self.store)
            runs_dir = self.remote.root / "mirror"
        self.runs_dir = Path(runs_dir).resolve()
        self.refresh_interval = refresh_interval
        self._wait = refresh_interval  # longer while the store does not answer
        self.store_problem: str | None = None
        self._refreshed = time.monotonic()
        self._refreshing = threading.Lock()
        #: set once a first listing running beside the server is done
        self._first_listing: threading.Event | None = None
        if self.remote is not None:
            self._start_store()
        self.secret = secrets.token_bytes(32)
        #: required with every archive/delete when set (a dashboard bound beyond loopback)
        self.password = password

    def live(self, *, now: bool = False) -> None:
        """Bring this machine's cache of a shared store's index up to date, if
        ``refresh_interval`` has passed (or ``now``): only what changed is fetched. A request
        that finds another one refreshing does not wait: it lists the cache as it is."""
        if self.store is None:
            return
        if self._first_listing is not None and not self._first_listing.is_set():
            # the first listing is under way: waited for a while, then the cache as it is
            self._first_listing.wait(FIRST_LISTING_WAIT_S)
            return
        if not now and time.monotonic() - self._refreshed < self._wait:
            return
        if not self._refreshing.acquire(blocking=now):
            return
        try:
            if not now and time.monotonic() - self._refreshed < self._wait:
                return
            self._ask_store()
        finally:
            self._refreshing.release()

    def _start_store(self) -> None:
        """Over a store: a cache listed here lately is brought up to date now (one LIST); a
        machine's first listing (every row, or a snapshot) runs in a thread beside the server,
        after one request that says now whether the store can be used at all."""
        if not self.remote.first_listing_due():
            self._ask_store(first=True)
            return
        self.remote.store.check()  # the bucket, the credentials, the server: errors now
        self.store_problem = (
            f"Listing {self.store} for the first time on this machine: the table fills "
            "when every run's row is in."
        )
        self._first_listing = threading.Event()
        self._refreshing.acquire()

        def first() -> None:
            try:
                self._ask_store()
            finally:
                self._refreshing.release()
                assert self._first_listing is not None
                self._first_listing.set()

        threading.Thread(target=first, name="trainrun-ui-first-listing", daemon=True).start()

    def _ask_store(self, *, first: bool = False) -> None:
        """One incremental refresh of the cache; a store away is noted for the pages (the
        cache listed as it was), or raised when ``first`` and nothing was ever listed here."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # a store away: said on the page instead
            try:
                self.remote.update()
                self.remote.forget_gone()  # runs archived or deleted: their copies too
                problem = next(
                    (
                        str(w.message)
                        for w in caught
                        if not issubclass(w.category, RunRecordWarning)
                    ),
                    None,
                )
            except (TrainrunError, OSError) as exc:
                if first:
                    raise
                problem = str(exc)
        self.store_problem = (
            None
            if problem is None
            else f"The runs shown are this machine's last copy of {self.store}: {problem}"
        )
        # a store away: asked less and less often (up to a minute), so that pages do not
        # wait on its timeout at every interval
        self._wait = (
            self.refresh_interval
            if problem is None
            else min(max(self._wait * 2, self.refresh_interval), STORE_BACKOFF_S)
        )
        self._refreshed = time.monotonic()

    # ------------------------------------------------------------ helpers

    def context(self, request: Request) -> dict[str, Any]:
        return {
            "root": str(request.url_for("index").path),
            "poll_ms": POLL_MS,
            "nonce": request.state.csp_nonce,
        }

    def token(self, action: str, run_id: str) -> str:
        return hmac.new(self.secret, f"{action}:{run_id}".encode(), hashlib.sha256).hexdigest()

    def run_dir(self, run_id: str) -> Path | None:
        """The folder of ``run_id``, only if it names a run folder in the runs folder (never
        a path); one or two ``stat`` calls, no listing. Over a shared store: a run the cache
        lists under exactly that id, its files fetched now if its row changed since their
        last fetch (a running run's open page stays live at the refresh interval)."""
        self.live()
        if self.remote is not None:
            return self.remote.open_run(run_id)
        return record.run_by_name(self.runs_dir, run_id)

    def has_run(self, run_id: str) -> bool:
        """True when ``run_id`` names a run here; over a store, without fetching its files."""
        if self.remote is None:
            return self.run_dir(run_id) is not None
        self.live()
        return self.remote.lists(run_id)

    def _listable(self) -> bool:
        return self.store is not None or self.runs_dir.is_dir()

    @property
    def shown(self) -> str:
        """What the pages name as the runs folder: the store's URL, or the folder."""
        return self.store or str(self.runs_dir)

    def _listing(self, params: Any) -> Any:
        """The ls_runs() DataFrame the parameters ask for."""
        self.live()
        filter_expr = (params.get("filter") or "").strip() or None
        latest_n = params.get("latest_n") or None
        if latest_n is not None:
            try:
                latest_n = int(latest_n)
            except ValueError:
                raise FilterError(
                    f"latest_n must be a positive integer. Received: latest_n={latest_n!r}"
                ) from None
        # runs skipped or listed in part are shown on the page, not raised or lost
        with warnings.catch_warnings(record=True) as caught, self._from_cache():
            warnings.simplefilter("always", RunRecordWarning)
            df = ls_runs(
                runs_dir=self.store or self.runs_dir,
                order=params.get("order") or None,
                decreasing=not params.get("asc"),
                filter=filter_expr,
                latest_n=latest_n,
            )
        df.attrs["problems"] = [
            str(w.message) for w in caught if issubclass(w.category, RunRecordWarning)
        ] + ([self.store_problem] if self.store_problem else [])
        return df

    def _from_cache(self) -> Any:
        """Over a store: ls_runs answers from the cache as it is (``live`` asks the store)."""
        from contextlib import nullcontext

        if self.remote is None:
            return nullcontext()
        from trainrun.runs.store._remote_index import from_cache

        return from_cache()

    @staticmethod
    def _page(params: Any, total: int) -> tuple[int, int]:
        """(page number from 1, number of pages) for ``total`` rows."""
        pages = max(1, math.ceil(total / PAGE_SIZE))
        try:
            page = int(params.get("page") or 1)
        except ValueError:
            raise FilterError(
                f"page must be a positive integer. Received: page={params.get('page')!r}"
            ) from None
        return min(max(page, 1), pages), pages

    def list_runs(self, params: Any) -> dict[str, Any]:
        """One page of the runs table, through ls_runs (its filter language, order and
        column order: what differs between the runs first)."""
        from trainrun.runs.store._columns import constant_columns, constant_summary

        filter_expr = (params.get("filter") or "").strip() or None
        problems: list[str] = []
        constant: list[str] = []
        summary = ""
        if not self._listable():
            records, names, total = [], [], 0
            page, pages = 1, 1
        else:
            df = self._listing(params)
            problems = df.attrs.get("problems", [])
            total = len(df)
            if total > 1:
                constant = constant_columns(df)
                summary = constant_summary(df, limit=400)
            page, pages = self._page(params, total)
            part = df.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            # only the columns this page uses: a tag/flag/metric/eval column empty here is left out
            empty = [c for c in part.columns if c.startswith(GROUP_PREFIXES)]
            part = part.drop(columns=[c for c in empty if part[c].isna().all()])
            records = part.to_dict(orient="records")
            names = list(part.columns)  # in ls_runs' order
        columns = [c for c in LEAD_COLUMNS if c in names]
        columns += [c for c in names if c not in columns]
        rows = [{c: _json_safe(rec.get(c)) for c in columns} for rec in records]
        return {
            "runs_dir": self.shown,
            "filter": filter_expr,
            "columns": columns,
            "hidden": [c for c in columns if c in HIDDEN_COLUMNS or c in constant],
            "constant": [c for c in constant if c in columns],
            "constant_summary": summary,
            "runs": rows,
            "count": len(rows),
            "total": total,
            "page": page,
            "pages": pages,
            "page_size": PAGE_SIZE,
            "problems": problems,
        }

    def view_values(self, params: Any) -> dict[str, Any]:
        """The values the scatter and parallel coordinates draw: ``columns`` of every listed
        run (the table's filter and order; all its pages), at most VIEW_LIMIT runs."""
        wanted = [c for c in (params.get("columns") or "").split(",") if c][:VIEW_COLUMNS]
        if not self._listable():
            return {"columns": [], "runs": [], "total": 0, "shown": 0, "limit": VIEW_LIMIT}
        df = self._listing(params)
        keep = [c for c in dict.fromkeys(["id", "run_name", *wanted]) if c in df.columns]
        part = df.head(VIEW_LIMIT)[keep]
        runs = [{c: _json_safe(v) for c, v in rec.items()} for rec in part.to_dict("records")]
        return {
            "columns": keep,
            "runs": runs,
            "total": len(df),
            "shown": len(runs),
            "limit": VIEW_LIMIT,
        }

    def statuses(self, params: Any) -> dict[str, Any]:
        """The ids and statuses of one page of the table: what the open tab polls."""
        if not self._listable():
            return {"runs": [], "total": 0, "page": 1, "pages": 1}
        df = self._listing(params)
        page, pages = self._page(params, len(df))
        part = df.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        runs = [[i, s] for i, s in zip(part["id"].tolist(), part["status"].tolist(), strict=True)]
        return {"runs": runs, "total": len(df), "page": page, "pages": pages}

    # ------------------------------------------------------------ routes (sync ones run in
    # Starlette's thread pool: a slow folder never holds up the event loop)

    def index(self, request: Request) -> Response:
        error = None
        try:
            listing = self.list_runs(request.query_params)
        except (FilterError, RunRecordError) as exc:
            error = str(exc)
            listing = {
                "columns": list(LEAD_COLUMNS),
                "hidden": [],
                "constant": [],
                "constant_summary": "",
                "runs": [],
                "count": 0,
                "total": 0,
                "filter": None,
                "page": 1,
                "pages": 1,
                "page_size": PAGE_SIZE,
                "problems": [],
            }
        filter_text = request.query_params.get("filter", "")
        body = render(
            "index.html",
            packages=("trainrun.web",),
            dashboard=self.context(request),
            listing=listing,
            filter_text=filter_text,
            page_query=_page_query(request.query_params),
            error=error,
            runs_dir=self.shown,
            listing_json=script_json(listing),
            dashboard_js=Markup(static_text("dashboard.js", "trainrun.web")),
        )
        return HTMLResponse(body, status_code=400 if error else 200)

    def api_runs(self, request: Request) -> Response:
        try:
            return _json(self.list_runs(request.query_params))
        except (FilterError, RunRecordError) as exc:
            return _error_json(str(exc), 400)

    def api_values(self, request: Request) -> Response:
        try:
            return _json(self.view_values(request.query_params))
        except (FilterError, RunRecordError) as exc:
            return _error_json(str(exc), 400)

    def api_statuses(self, request: Request) -> Response:
        try:
            return _json(self.statuses(request.query_params))
        except (FilterError, RunRecordError) as exc:
            return _error_json(str(exc), 400)

    def run_page(self, request: Request) -> Response:
        run_dir = self.run_dir(request.path_params["run_id"])
        if run_dir is None:
            return self.not_found(request)
        try:
            data = _report_data.run_data(run_dir, runs_dir=self.runs_dir)
        except (RunRecordError, RunNotFoundError) as exc:
            return self.error_page(request, str(exc), 500)
        context = {
            **self.context(request),
            "annotate_token": self.token("annotate", run_dir.name),
            "needs_password": self.password is not None,
        }
        return HTMLResponse(render_data(data, dashboard=context))

    def api_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            return _error_json(f"No run {run_id!r} in {self.runs_dir}.", 404)
        try:
            if request.query_params.get("fields") == "status":
                # the live poll: run.json alone, not the metric history
                run = record.read_json(run_dir / record.RUN_FILE, default={})
                if not isinstance(run, dict):
                    raise RunRecordError(
                        f"{run_dir / record.RUN_FILE} does not hold a JSON object."
                    )
                status = record.resolve_status(run)
                if status == "killed" and record.finished_since(run_dir, run):
                    # it ended between the read and the check: its end, not 'killed'
                    status = record.read_run(run_dir)["status"]
                return _json({"id": run_id, "status": status})
            if request.query_params.get("fields") == "live":
                # a running run's page: its charts and output tail, redrawn as they arrive
                return _json(render_live(_report_data.live_data(run_dir)))
            return _json(_report_data.run_data(run_dir, runs_dir=self.runs_dir))
        except (RunRecordError, RunNotFoundError) as exc:
            return _error_json(str(exc), 500)

    def run_file(self, request: Request) -> Response:
        """A regular file of a run's artifacts/ or plots/, as a download."""
        run_dir = self.run_dir(request.path_params["run_id"])
        area = request.path_params["area"]
        if run_dir is None or area not in FILE_AREAS:
            return self.not_found(request)
        parts = request.path_params["path"].split("/")
        try:
            fd = _open_inside(run_dir, [area, *parts])
        except (OSError, RunRecordError):
            return self.error_page(
                request,
                "No such file in this run: only regular files inside the run's artifacts/ "
                "and plots/ folders are served, never through a link.",
                404,
            )
        size = os.fstat(fd).st_size
        name = quote(parts[-1])
        image = IMAGE_TYPES.get(os.path.splitext(parts[-1])[1].lower())
        inline = image is not None and request.query_params.get("inline") == "1"
        return StreamingResponse(
            _chunks(fd),
            media_type=image if inline else "application/octet-stream",
            headers={
                "content-length": str(size),
                "content-disposition": f"{'inline' if inline else 'attachment'}; "
                f"filename*=UTF-8''{name}",
            },
        )

    def preview(self, request: Request) -> Response:
        """A page showing a file of the run's artifacts/ or plots/: an image, text, a CSV
        table or pretty JSON (its first PREVIEW_LIMIT bytes), with its download link."""
        run_dir = self.run_dir(request.path_params["run_id"])
        area = request.path_params["area"]
        if run_dir is None or area not in FILE_AREAS:
            return self.not_found(request)
        rel = request.path_params["path"]
        try:
            fd = _open_inside(run_dir, [area, *rel.split("/")])
        except (OSError, RunRecordError):
            return self.error_page(
                request,
                "No such file in this run: only regular files inside the run's artifacts/ "
                "and plots/ folders are shown, never through a link.",
                404,
            )
        try:
            size = os.fstat(fd).st_size
            head = os.read(fd, PREVIEW_LIMIT)
        finally:
            os.close(fd)
        root = self.context(request)["root"]
        base = f"{root}runs/{quote(run_dir.name)}/files/{area}/{quote(rel)}"
        body = render(
            "preview.html",
            packages=("trainrun.web",),
            dashboard=self.context(request),
            run_id=run_dir.name,
            path=f"{area}/{rel}",
            size=size,
            download=base,
            shown=_preview(rel, head, size, f"{base}?inline=1"),
        )
        return HTMLResponse(body)

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

    def compare_page(self, request: Request) -> Response:
        dirs = self._compare_dirs(request)
        if isinstance(dirs, Response):
            return self.error_page(request, json.loads(bytes(dirs.body))["error"], dirs.status_code)
        try:
            data = _report_data.comparison_data(dirs, runs_dir=self.runs_dir)
        except (RunRecordError, RunNotFoundError) as exc:
            return self.error_page(request, str(exc), 500)
        return HTMLResponse(render_data(data, dashboard=self.context(request)))

    def api_compare(self, request: Request) -> Response:
        dirs = self._compare_dirs(request)
        if isinstance(dirs, Response):
            return dirs
        try:
            return _json(_report_data.comparison_data(dirs, runs_dir=self.runs_dir))
        except (RunRecordError, RunNotFoundError) as exc:
            return _error_json(str(exc), 500)

    async def action(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            return self.not_found(request)
        if not await run_in_threadpool(self.has_run, run_id):  # no files fetched for a form
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
                    needs_password=self.password is not None,
                )
            )
        if not _same_origin(request):
            return self.error_page(
                request,
                "This request did not come from the dashboard's own page (its Origin or "
                "Referer names another site, or neither was sent); nothing was changed.",
                403,
            )
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0]
        if not hmac.compare_digest(token, self.token(action, run_id)):
            return self.error_page(
                request,
                "The confirmation token is missing or wrong; open the run page and use its button.",
                403,
            )
        if self.password is not None:
            given = (form.get("password") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.password.encode()):
                return self.error_page(
                    request,
                    "The dashboard's password is missing or wrong (it was printed when "
                    "`trainrun ui` started); nothing was changed.",
                    403,
                )
        try:
            await run_in_threadpool(self.perform, action, run_id)
        except TrainrunError as exc:
            return self.error_page(request, str(exc), 400)
        return RedirectResponse(self.context(request)["root"], status_code=303)

    async def annotate(self, request: Request) -> Response:
        """POST from the run page's form: tags added/removed, the note and the name."""
        run_id = request.path_params["run_id"]
        # over a store the change goes to the store: the run's files are not fetched for it
        run_dir = None if self.store is not None else await run_in_threadpool(self.run_dir, run_id)
        if run_dir is None and not await run_in_threadpool(self.has_run, run_id):
            return self.not_found(request)
        if not _same_origin(request):
            return self.error_page(
                request,
                "This request did not come from the dashboard's own page (its Origin or "
                "Referer names another site, or neither was sent); nothing was changed.",
                403,
            )
        form = parse_qs(
            (await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True
        )

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        if not hmac.compare_digest(field("token"), self.token("annotate", run_id)):
            return self.error_page(
                request, "The form's token is missing or wrong; reload the run page.", 403
            )
        if self.password is not None and not hmac.compare_digest(
            field("password").encode(), self.password.encode()
        ):
            return self.error_page(
                request, "The dashboard's password is missing or wrong; nothing was changed.", 403
            )
        from trainrun.runs.record._annotations import annotate

        changes: dict[str, Any] = {
            "add_tags": field("add").split(),
            "remove_tags": form.get("remove") or [],
        }
        for name in ("note", "name"):
            if name in form:
                changes[name] = field(name)
        try:
            if self.store is not None:  # into the store (every machine sees it), then here
                await run_in_threadpool(self.annotate_in_store, run_id, changes)
            else:
                assert run_dir is not None  # a local folder's run, checked above
                await run_in_threadpool(lambda: annotate(run_dir, **changes))
        except TrainrunError as exc:
            return self.error_page(request, str(exc), 400)
        return RedirectResponse(f"{self.context(request)['root']}runs/{quote(run_id)}", 303)

    def annotate_in_store(self, run_id: str, changes: dict[str, Any]) -> None:
        from trainrun.runs.store import name_run, note_run, tag_run

        assert self.store is not None
        ref = f"{self.store}/{run_id}"  # a full URL: that run only
        if changes["add_tags"] or changes["remove_tags"]:
            tag_run(ref, changes["add_tags"], changes["remove_tags"], self.store)
        if "note" in changes:
            note_run(ref, changes["note"], self.store)
        if "name" in changes:
            name_run(ref, changes["name"], self.store)
        self.live(now=True)

    def perform(self, action: str, run_id: str) -> None:
        func = clean_runs if action == "archive" else purge_runs
        # the store warns about (and skips) a run that is still running: tell the user instead
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # an exact folder, never an id: the store also accepts id prefixes; the
            # dashboard's form was the confirmation
            if self.store is not None:  # the store's run (its full URL: that run only)
                done = func([f"{self.store}/{run_id}"], self.store, confirm=False)
                self.live(now=True)
            else:
                done = func([str(self.runs_dir / run_id)], self.runs_dir, confirm=False)
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


def _page_query(params: Any) -> str:
    """The query string of the current listing without its page (for the page links)."""
    keep = [(k, v) for k, v in params.multi_items() if k != "page"]
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in keep)


def _same_origin(request: Request) -> bool:
    """True when the request's Origin (else its Referer) is the dashboard's own origin."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is None:
        origin = request.headers.get("referer")
    if not origin or origin == "null":  # "null": a sandboxed frame or a data: page
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host


def _open_inside(run_dir: Path, parts: list[str]) -> int:
    """An fd on the regular file ``run_dir/parts...``, each folder on the way opened without
    following links (``O_NOFOLLOW`` relative to its parent's fd), so nothing outside the run
    is reached even if the folder changes while we look."""
    if not parts or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise RunRecordError(f"Not a path inside the run: {'/'.join(parts)!r}")
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise RunRecordError(f"Not a regular file: {'/'.join(parts)!r}")
    return leaf


def _preview(name: str, head: bytes, size: int, image_url: str) -> dict[str, Any]:
    """What the preview page shows of a file whose first bytes are ``head``."""
    ext = os.path.splitext(name)[1].lower()
    cut = size > len(head)
    if ext in IMAGE_TYPES:
        return {"kind": "image", "url": image_url}
    if b"\0" in head[:8192]:
        return {"kind": "binary"}
    text = head.decode("utf-8", errors="replace")
    if ext == ".json" and not cut:
        try:
            return {
                "kind": "text",
                "text": json.dumps(json.loads(text), indent=2, ensure_ascii=False),
                "cut": False,
            }
        except ValueError:
            pass
    if ext in (".csv", ".tsv"):
        import csv
        import io

        lines = text.splitlines()
        if cut and lines:
            lines = lines[:-1]  # the last line may be cut in the middle
        rows = list(
            csv.reader(
                io.StringIO("\n".join(lines[: PREVIEW_ROWS + 1])),
                delimiter="\t" if ext == ".tsv" else ",",
            )
        )
        return {"kind": "table", "rows": rows, "more": cut or len(lines) > PREVIEW_ROWS + 1}
    return {"kind": "text", "text": text, "cut": cut}


def _chunks(fd: int, size: int = 1 << 16) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time (Starlette iterates this in its thread pool)."""
    try:
        while True:
            data = os.read(fd, size)
            if not data:
                return
            yield data
    finally:
        os.close(fd)


def create_app(
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    allowed_hosts: Sequence[str] | None = None,
    password: str | None = None,
    refresh_interval: float = STORE_REFRESH_S,
) -> Starlette:
    """The dashboard application over ``runs_dir``, ready for uvicorn or a test client.

    ``runs_dir`` may be a shared store (``s3://bucket/prefix``): the dashboard lists this
    machine's cache of its index (what ``trainrun ls`` over the store lists), refreshed
    from the store's changes at most every ``refresh_interval`` seconds when a page or the
    live poll asks; a run's files are fetched only when its page, a comparison or a
    preview needs them (then only the files that changed, at most once per refresh).

    ``allowed_hosts`` guards against DNS rebinding: requests naming another
    Host are refused. The default accepts loopback names only. ``password``,
    when given, must accompany every archive and delete (``serve`` sets one
    when it binds beyond loopback).

    >>> from starlette.testclient import TestClient      # doctest: +SKIP
    >>> client = TestClient(create_app("runs"), base_url="http://127.0.0.1")  # doctest: +SKIP
    >>> client.get("/api/runs").json()["count"]          # doctest: +SKIP
    3
    """
    dash = Dashboard(runs_dir, password=password, refresh_interval=refresh_interval)
    routes = [
        Route("/", dash.index, name="index"),
        Route("/api/runs", dash.api_runs),
        Route("/api/statuses", dash.api_statuses),
        Route("/api/values", dash.api_values),
        Route("/api/runs/{run_id}", dash.api_run),
        Route("/api/compare", dash.api_compare),
        Route("/runs/{run_id}", dash.run_page),
        Route("/runs/{run_id}/files/{area}/{path:path}", dash.run_file),
        Route("/runs/{run_id}/preview/{area}/{path:path}", dash.preview),
        Route("/runs/{run_id}/annotate", dash.annotate, methods=["POST"]),
        Route("/compare", dash.compare_page),
        Route("/runs/{run_id}/{action}", dash.action, methods=["GET", "POST"]),
    ]
    hosts = list(allowed_hosts) if allowed_hosts is not None else LOOPBACK_NAMES
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
        ],
        exception_handlers={404: _not_found_handler(dash), StoreError: _store_error_handler(dash)},
    )
    app.state.dashboard = dash
    return app


def _not_found_handler(dash: Dashboard):
    def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _error_json("Not found.", 404)
        return dash.not_found(request)

    return handler


def _store_error_handler(dash: Dashboard):
    def handler(request: Request, exc: Exception) -> Response:
        # a run's files could not be fetched (the store away, and no copy here yet)
        message = f"The run's files could not be fetched from {dash.store}: {exc}"
        if request.url.path.startswith("/api/"):
            return _error_json(message, 503)
        return dash.error_page(request, message, 503)

    return handler
