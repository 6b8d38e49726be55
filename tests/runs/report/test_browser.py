"""Reports and the dashboard in a real browser: headless Chromium.

Static pages are checked with ``--dump-dom`` (the DOM after scripts ran); the
dashboard is driven over the DevTools protocol: clicks, live updates while a
real training run starts and finishes, and no script from a hostile flag.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from trainrun.runs import record, report

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (make browser installs it)"
    ),
]

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1280,1000",
]

# the payloads set a marker if they ever run
EVIL = (
    "<script>window.__pwned = 1; document.documentElement.setAttribute('data-pwned', '1')</script>"
)
EVIL_IMG = "<img src=x onerror=\"window.__pwned = 2; document.documentElement.setAttribute('data-pwned', '2')\">"


def dump_dom(target: str, profile: Path) -> str:
    out = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            target,
        ],
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return out.stdout.decode("utf-8", errors="replace")


def series_paths(dom: str) -> list[str]:
    return re.findall(r'<path class="series[^"]*" stroke="[^"]+" d="([^"]*)"', dom)


def test_report_renders_and_runs_no_hostile_script(make_run, tmp_path):
    run_dir = make_run(
        flags={"note": EVIL, "img": EVIL_IMG}, evaluation={"accuracy": 0.9}, output=EVIL + "\n"
    )
    page = report.save_run_view(run_dir, tmp_path / "view.html")
    dom = dump_dom(page.as_uri(), tmp_path / "profile")
    paths = series_paths(dom)
    assert len(paths) == 3 and all(len(p) > 20 for p in paths)
    assert "data-pwned" not in dom.split("<head>", 1)[0]  # the <html> tag got no marker
    assert 'data-pwned="1"' not in dom and 'data-pwned="2"' not in dom
    assert "window.__pwned = 1" in dom  # shown, as text


def test_comparison_renders(make_run, tmp_path):
    a = make_run(flags={"dropout": 0.1})
    b = make_run(flags={"dropout": 0.5}, loss_scale=3.0, sources={"train.py": "changed\n"})
    page = report.save_run_comparison([a, b], tmp_path / "cmp.html")
    dom = dump_dom(page.as_uri(), tmp_path / "profile")
    assert len(series_paths(dom)) == 6  # loss, val_loss, accuracy for each run
    assert 'class="differs"' in dom and '<span class="add">+changed</span>' in dom


# ---------------------------------------------------------------- the dashboard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    """A minimal DevTools-protocol client for one headless Chromium tab."""

    def __init__(self, profile: Path, wait_until) -> None:
        import websocket  # websocket-client, a dev dependency

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until = wait_until
        port_file = profile / "DevToolsActivePort"

        def port_written() -> str:
            assert self.proc.poll() is None, "chromium exited at start"
            return port_file.exists() and port_file.read_text().strip()

        port = int(wait_until(port_written, 60, 0.1, message="chromium to start").split()[0])

        def pages() -> list:
            listed = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
            return [t for t in listed if t["type"] == "page"]

        targets = wait_until(pages, 60, 0.1, ignoring=httpx.TransportError, message="a page")
        self.ws = websocket.create_connection(
            targets[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.next_id = 0

    def send(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg["error"]
                return msg["result"]

    def js(self, expression: str):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        def value():
            # the page may be between two documents (a reload): an error means "not yet"
            result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
            return None if "exceptionDetails" in result else result["result"].get("value")

        return self.wait_until(value, timeout, 0.2, message=expression)

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(
            base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        )
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=30)


LIVE_SCRIPT = """\
import time
from pathlib import Path
from trainrun.runs.active import log_metrics
from trainrun.runs.flags import flags

FLAGS = flags(go_file="go", dropout=0.25)
step = 0
while not Path(FLAGS.go_file).exists():
    log_metrics(step=step, loss=1.0 / (step + 1))
    step += 1
    time.sleep(0.1)
print("done after", step, "steps")
"""


def shot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot; kept in $TRAINRUN_SCREENSHOTS when set, to look at by eye."""
    path = page.screenshot(tmp_path / name)
    assert path.stat().st_size > 10_000  # a blank page is a few hundred bytes
    if os.environ.get("TRAINRUN_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["TRAINRUN_SCREENSHOTS"]) / name)


def column(page: Page, col: str) -> list:
    return page.js(
        f"Array.from(document.querySelectorAll('#runs tbody td.{col}')).map(td => td.textContent)"
    )


@pytest.fixture
def dashboard(runs_dir, tmp_path, wait_until):
    runs_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "ui", "--runs-dir", str(runs_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"

    def serving() -> bool:
        assert server.poll() is None, server.stdout.read().decode()
        return httpx.get(url + "api/runs").status_code == 200

    wait_until(serving, 60, 0.2, ignoring=httpx.TransportError, message="the dashboard")
    page = Page(tmp_path / "profile", wait_until)
    yield url, page
    page.close()
    server.terminate()
    server.wait(timeout=30)
    server.stdout.close()


def test_dashboard_sorts_updates_live_and_compares(dashboard, make_run, runs_dir, tmp_path):
    url, page = dashboard
    low = make_run(flags={"dropout": 0.1, "note": "plain"}, evaluation={"accuracy": 0.7})
    high = make_run(flags={"dropout": 0.5, "note": EVIL + EVIL_IMG}, evaluation={"accuracy": 0.9})
    page.goto(url)
    page.wait_for("document.querySelectorAll('#runs tbody tr').length === 2")

    # sorting: click a header, then again to reverse
    page.js("document.querySelector('th[data-col=eval_accuracy]').click()")
    assert column(page, "eval_accuracy") == ["0.7", "0.9"]
    page.js("document.querySelector('th[data-col=eval_accuracy]').click()")
    assert column(page, "eval_accuracy") == ["0.9", "0.7"]
    page.js("document.querySelector('th[data-col=id]').click()")
    assert column(page, "id") == [low.name, high.name]

    # a real training run started now appears, running, then completed
    script = tmp_path / "live.py"
    script.write_text(LIVE_SCRIPT)
    go = tmp_path / "go"
    code = (
        "import sys; from trainrun.runs.launch import training_run; "
        "training_run(sys.argv[1], flags={'go_file': sys.argv[2]}, runs_dir=sys.argv[3], echo=False)"
    )
    launcher = subprocess.Popen([sys.executable, "-c", code, str(script), str(go), str(runs_dir)])
    try:
        page.wait_for("document.querySelectorAll('#runs tbody tr').length === 3")
        page.wait_for("!!document.querySelector('#runs tbody .badge.running')")
        go.write_text("go")
        assert launcher.wait(timeout=60) == 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
    page.wait_for(
        "Array.from(document.querySelectorAll('#runs tbody .badge')).map(b => b.textContent).join() "
        "=== 'completed,completed,completed'"
    )
    assert page.js("typeof window.__pwned") == "undefined"
    assert page.js("document.documentElement.hasAttribute('data-pwned')") is False
    # shown as text: cut in the cell, whole in its tooltip
    notes = page.js(
        "Array.from(document.querySelectorAll('#runs td.flag_note')).map(td => [td.textContent, td.title])"
    )
    assert [EVIL[:59] + "\u2026", EVIL + EVIL_IMG] in notes
    shot(page, tmp_path, "dashboard.png")

    # select two runs and compare them
    assert page.js("document.getElementById('compare').disabled") is True
    for run_id in (low.name, high.name):
        page.js(
            f"document.querySelector('#runs tbody tr[data-id=\"{run_id}\"] input.select').click()"
        )
    assert page.js("document.getElementById('compare').disabled") is False
    page.js("document.getElementById('compare').click()")
    page.wait_for("location.pathname === '/compare' && document.readyState === 'complete'")
    assert page.js("document.querySelectorAll('svg.chart path.series').length") >= 4
    assert page.js(
        "Array.from(document.querySelectorAll('svg.chart path.series')).every(p => p.getAttribute('d').length > 20)"
    )
    assert page.js("document.querySelectorAll('tr.differs').length") > 0
    assert page.js("typeof window.__pwned") == "undefined"
    shot(page, tmp_path, "compare.png")

    # the hostile run's own page
    page.goto(f"{url}runs/{high.name}")
    assert page.js("document.querySelectorAll('svg.chart path.series').length") == 3
    assert page.js("typeof window.__pwned") == "undefined"
    assert EVIL + EVIL_IMG in page.js("document.querySelector('table.flags').textContent")


def test_run_page_follows_a_running_run(dashboard, make_run, tmp_path):
    url, page = dashboard
    run_dir = make_run(status="running", pid=os.getpid())  # this process: alive
    page.goto(f"{url}runs/{run_dir.name}")
    assert page.js("document.querySelector('#run-status .badge').textContent") == "running"
    run = json.loads((run_dir / "run.json").read_text())
    run.update(status="completed", end=run["start"], duration=3.0, exit_code=0)
    record.write_json(run_dir / "run.json", run)
    page.wait_for("document.querySelector('#run-status .badge').textContent === 'completed'")
    shot(page, tmp_path, "run.png")
    # hovering a chart shows the values at the nearest step
    box = page.js(
        "(() => { const svg = document.querySelector('svg.chart'); svg.scrollIntoView({block: 'center'});"
        " const r = svg.getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
    tip = page.wait_for(
        "(() => { const t = document.querySelector('figure.chart .tooltip');"
        " return t.style.display === 'block' && t.textContent; })()"
    )
    assert tip.startswith("step ") and "loss:" in tip and "val_loss:" in tip


def test_a_report_in_a_notebook_takes_the_height_of_its_content(make_run, tmp_path, wait_until):
    # the notebook's output area, as Jupyter shows a RunReport: our frame and its script
    rep = report.run_report(make_run(flags={f"f{i}": i for i in range(30)}))
    shown = rep._repr_html_()
    guess = int(re.search(r"height:(\d+)px", shown).group(1))
    host = tmp_path / "notebook.html"
    host.write_text(f"<!doctype html><html><body><div class='output'>{shown}</div></body></html>")
    # A live tab polled until the frame reports its height: a --dump-dom snapshot could
    # be taken before the frame's message arrived on a loaded machine (failed so in CI).
    page = Page(tmp_path / "profile", wait_until)
    try:
        page.goto(host.as_uri())
        height = page.wait_for(
            "(() => { const h = parseInt(document.querySelector('iframe').style.height);"
            f" return h !== {guess} && h > 1000 ? h : null; }})()"
        )
    finally:
        page.close()
    assert height != guess and 1000 < height < 20000, (guess, height)  # its own height
