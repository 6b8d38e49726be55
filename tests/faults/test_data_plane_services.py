"""The dashboard and the board under attack, reproduced first: framing by another origin
(driven in headless Chromium), cross-origin and origin-less POSTs, a bind beyond loopback,
slow pages holding up the poll, a 10,000-run index page, and SIGTERM to ``trainrun board``."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest
from tests.runs.report.conftest import write_run
from tests.runs.report.test_browser import CHROMIUM, Page, free_port

from trainrun.runs import record

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def client_for(runs: Path, **kw) -> TestClient:
    from trainrun.web.app import create_app

    return TestClient(create_app(runs, **kw), base_url="http://127.0.0.1")


def token_of(client: TestClient, url: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', client.get(url).text).group(1)


# ---------------------------------------------------------------- headers and origins


def test_every_response_forbids_framing_and_sniffing(runs):
    run = write_run(runs)
    client = client_for(runs)
    for url in ("/", "/api/runs", f"/runs/{run.name}", f"/runs/{run.name}/delete", "/nowhere"):
        response = client.get(url)
        assert response.headers["x-frame-options"] == "DENY", url
        assert response.headers["x-content-type-options"] == "nosniff", url
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        # every script the page carries has this response's nonce
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        scripts = re.findall(r"<script(?![^>]*application/json)([^>]*)>", response.text)
        assert all(f'nonce="{nonce}"' in attrs for attrs in scripts), url
    other = client.get("/").headers["content-security-policy"]
    assert other != client.get("/").headers["content-security-policy"]  # a nonce per response


def test_state_changes_need_the_dashboards_own_origin(runs):
    keep = write_run(runs)
    client = client_for(runs)
    url = f"/runs/{keep.name}/delete"
    token = token_of(client, url)
    for headers in (
        {},  # neither Origin nor Referer
        {"origin": "http://127.0.0.1:9999"},  # another port: another origin
        {"origin": "http://evil.example"},
        {"origin": "null"},  # a sandboxed frame, a data: page
        {"referer": "http://evil.example/page"},
    ):
        response = client.post(url, data={"token": token}, headers=headers)
        assert response.status_code == 403, headers
        assert keep.exists()
    done = client.post(
        url,
        data={"token": token},
        headers={"referer": f"http://127.0.0.1{url}"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and not keep.exists()


def test_beyond_loopback_delete_and_archive_need_the_password(runs):
    run = write_run(runs)
    client = client_for(runs, allowed_hosts=["*"], password="open sesame")
    client.headers["origin"] = "http://127.0.0.1"
    url = f"/runs/{run.name}/archive"
    assert 'name="password"' in client.get(url).text
    token = token_of(client, url)
    for password in (None, "", "wrong"):
        data = {"token": token} | ({} if password is None else {"password": password})
        assert client.post(url, data=data).status_code == 403
    assert run.exists()
    done = client.post(
        url, data={"token": token, "password": "open sesame"}, follow_redirects=False
    )
    assert done.status_code == 303 and not run.exists()


def test_trainrun_ui_beyond_loopback_warns_and_makes_a_password(runs):
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trainrun",
            "ui",
            "--runs-dir",
            str(runs),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stderr.readline()
        assert "warning: listening on 0.0.0.0" in line and "need the password" in line
        assert "anyone who can reach the port" in line
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
        server.stderr.close()


# ---------------------------------------------------------------- paging and polling


def test_the_index_is_paged_and_the_poll_fetches_statuses(runs):
    for i in range(450):
        run = runs / f"2026-11-27T10-{i // 60:02d}-{i % 60:02d}Z"
        run.mkdir()
        record.write_json(
            run / record.RUN_FILE,
            {"status": "completed", "start": f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}Z"},
        )
        record.write_json(run / record.FLAGS_FILE, {"values": {"i": i}})
    client = client_for(runs)
    page = client.get("/")
    assert page.text.count('class="select"') == 200 and 'id="next-page"' in page.text
    api = client.get("/api/runs", params={"page": 3}).json()
    assert (api["count"], api["total"], api["page"], api["pages"]) == (50, 450, 3, 3)
    assert api["runs"][-1]["flag_i"] == 0  # the oldest, last
    statuses = client.get("/api/statuses", params={"filter": "flag_i >= 100"}).json()
    assert statuses["total"] == 350 and len(statuses["runs"]) == 200
    assert statuses["runs"][0] == ["2026-11-27T10-07-29Z", "completed"]
    # the poll's answer is a small fraction of the page's rows
    assert len(json.dumps(statuses)) * 3 < len(client.get("/api/runs").text)


def serve_ui(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "ui", "--runs-dir", str(runs), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "api/runs", timeout=30).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_slow_pages_do_not_hold_up_the_status_poll(runs, wait_until):
    slow = write_run(runs, steps=0)
    quick = write_run(runs, steps=3)
    # a long history makes the run page take a while to build
    record.append_jsonl(
        slow / record.METRICS_FILE,
        ({"step": i, "loss": 1 / (i + 1), "acc": i * 1e-6} for i in range(300_000)),
    )
    server, url = serve_ui(runs)
    try:
        done: dict[str, float] = {}

        def fetch(name: str, path: str) -> None:
            httpx.get(url + path, timeout=300)
            done[name] = time.monotonic()

        threads = [
            threading.Thread(target=fetch, args=(f"slow{i}", f"api/runs/{slow.name}"))
            for i in range(3)
        ]
        before = cpu_seconds(server.pid)
        for t in threads:
            t.start()
        # the server is busy building the slow pages before the poll is sent
        wait_until(lambda: cpu_seconds(server.pid) > before + 0.3, timeout=120)
        fetch("poll", f"api/runs/{quick.name}?fields=status")
        assert len(done) == 1, "the slow pages ended before the poll: make them slower"
        for t in threads:
            t.join()
        # on the event loop the poll would wait for every slow page; in the pool it does not
        assert done["poll"] < max(done[f"slow{i}"] for i in range(3))
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- framing, in a browser


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_a_page_on_another_port_cannot_frame_the_delete_button(runs, tmp_path, wait_until):
    victim = write_run(runs)
    server, url = serve_ui(runs)
    attacker_dir = tmp_path / "attacker"
    attacker_dir.mkdir()
    target = f"{url}runs/{victim.name}/delete"
    (attacker_dir / "index.html").write_text(
        "<!doctype html><body style='margin:0'><p id='bait'>Click to win!</p>"
        f"<iframe id='f' src='{target}' style='position:absolute;top:0;left:0;"
        "width:1280px;height:1000px;border:0;opacity:0.5'></iframe></body>"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=attacker_dir)
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    page = Page(tmp_path / "profile", wait_until)
    try:
        # where the confirm button is when the page is shown on its own
        page.goto(target)
        x, y = page.js(
            "(() => { const r = document.getElementById('confirm').getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        evil = f"http://127.0.0.1:{attacker.server_address[1]}/index.html"
        page.goto(evil)

        def child_frame():
            frames = page.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
            frame = frames[0]["frame"] if frames else {}
            return frame if frame.get("url") not in (None, "", "about:blank") else None

        child = wait_until(child_frame, timeout=60)
        # refused: the frame shows Chromium's error page, not the dashboard
        assert child.get("unreachableUrl") or not child["url"].startswith(url), child
        for kind in ("mousePressed", "mouseReleased"):
            page.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        assert child_frame() == child  # the click reached no form: the frame did not move
        assert victim.is_dir(), "the framed delete button was clicked through"
    finally:
        page.close()
        attacker.shutdown()
        attacker.server_close()
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- trainrun board


@pytest.mark.slow
def test_trainrun_board_stops_within_two_seconds_of_sigterm(runs):
    pytest.importorskip("tensorboard")
    write_run(runs)
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "board", str(runs), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert board.poll() is None and time.monotonic() < deadline, "TensorBoard never served"
            time.sleep(0.3)
        sent = time.monotonic()
        board.send_signal(signal.SIGTERM)
        code = board.wait(timeout=10)
        assert time.monotonic() - sent < 2.0
        assert code == 130
        with pytest.raises(httpx.TransportError):  # TensorBoard is gone too
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        if board.poll() is None:
            board.kill()
            board.wait()
