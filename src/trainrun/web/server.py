"""Serving the dashboard: bind a socket first (so port 0 works and the real URL is
printed), then hand it to uvicorn."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from trainrun.exceptions import UsageError

DEFAULT_PORT = 8700
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Could not listen on {host}:{port} ({exc.strerror}). "
            "Pick another port with --port N (0 picks a free one)."
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    runs_dir: str | os.PathLike[str] = "runs",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    refresh_interval: float | None = None,
) -> None:
    """Serve the dashboard over ``runs_dir`` until interrupted (Ctrl-C).

    ``runs_dir`` may be a shared store (``s3://bucket/prefix``): the dashboard lists this
    machine's cache of its index, brought up to date from the store's changes at most every
    ``refresh_interval`` seconds (default 5) when a page or the live poll asks, and fetches a
    run's files only when its page (a comparison, a preview) is opened.

    Binds loopback unless ``host`` says otherwise; ``port=0`` picks a free port.
    The URL is printed once the socket listens.

    >>> serve("runs", port=0)     # doctest: +SKIP
    trainrun ui: serving runs at http://127.0.0.1:41234/ (Ctrl-C stops)
    """
    import uvicorn

    from trainrun.web.app import LOOPBACK_NAMES, create_app

    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise UsageError(f"The port must be an integer from 0 to 65535. Received: port={port!r}")
    store = runs_dir if isinstance(runs_dir, str) and runs_dir.startswith("s3://") else None
    if refresh_interval is not None and not (
        isinstance(refresh_interval, (int, float)) and 0 < refresh_interval < float("inf")
    ):
        raise UsageError(
            "The refresh interval must be a positive number of seconds. "
            f"Received: refresh_interval={refresh_interval!r}"
        )
    runs_path = Path(runs_dir).resolve()
    if store is None and runs_path.exists() and not runs_path.is_dir():
        raise UsageError(
            f"The runs folder {runs_path} is a file, not a folder. Pass the folder that holds "
            f"your runs. Received: runs_dir={os.fspath(runs_dir)!r}"
        )
    # a non-loopback bind was asked for explicitly: accept any Host header there, and
    # make archive/delete need a password, printed here (or TRAINRUN_UI_PASSWORD)
    password = None
    if host in LOOPBACK:
        allowed = LOOPBACK_NAMES
    else:
        allowed = ["*"]
        password = os.environ.get("TRAINRUN_UI_PASSWORD") or secrets.token_urlsafe(12)
        print(
            f"trainrun ui: warning: listening on {host}, beyond this machine: anyone who can "
            "reach the port can read every run (flags, output, source, artifacts). Archive "
            "and delete need the password "
            + (
                "in TRAINRUN_UI_PASSWORD."
                if os.environ.get("TRAINRUN_UI_PASSWORD")
                else f"{password} (set TRAINRUN_UI_PASSWORD to choose one)."
            )
            + " The dashboard speaks plain HTTP: put it behind TLS, or use an SSH tunnel.",
            file=sys.stderr,
            flush=True,
        )
    extra = {"refresh_interval": refresh_interval} if refresh_interval is not None else {}
    app = create_app(store or runs_path, allowed_hosts=allowed, password=password, **extra)
    runs_path = app.state.dashboard.runs_dir  # a store's: where opened runs are fetched to
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{actual_port}/"
    note = "" if runs_path.is_dir() else " (no runs yet: the folder does not exist)"
    if store is not None:
        note = f" (listed from this machine's index of it; runs opened fetched into {runs_path})"
    shown_runs = store or runs_path
    print(f"trainrun ui: serving {shown_runs}{note} at {url} (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
