"""The dashboard over a shared store (``trainrun ui --runs-dir s3://...``): live, not a
snapshot taken at start; archive and delete act on the store, not on a local copy.
(tests/web/test_store_dashboard_fetch.py: which run files it fetches, and when.)"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
from tests.runs.store.conftest import write_run
from tests.runs.store.s3server import S3, free_port
from tests.runs.store.test_remote_listing import push, t
from tests.web.test_store_dashboard_fetch import fetched

from trainrun.runs.store import ls_runs
from trainrun.web.app import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

SCRIPT = """\
import trainrun as tr
FLAGS = tr.flags(lr=0.1)
tr.log_metrics(step=0, loss=0.5)
tr.write_evaluation(accuracy=0.5 + FLAGS.lr)
"""


def test_trainrun_ui_over_a_store_shows_a_run_added_from_another_process(
    s3: S3, tmp_path: Path, wait_until
) -> None:
    push(s3, write_run(tmp_path / "a", "r1", start=t(1)))
    port = free_port()
    interval = 1.0
    ui = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "ui", "--runs-dir", s3.url, "--port", str(port)]
        + ["--refresh-interval", str(interval)],
        env=s3.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/runs"
    try:
        first = wait_until(
            lambda: httpx.get(api, timeout=10).json(), timeout=60, ignoring=httpx.HTTPError
        )
        assert [r["id"] for r in first["runs"]] == ["r1"]
        assert fetched(s3) == []  # listed from the index: no run's files fetched
        # another machine (its own cache) runs a script into the store
        (tmp_path / "train.py").write_text(SCRIPT)
        env = s3.child_env()
        env["TRAINRUN_CACHE_DIR"] = str(tmp_path / "machine-b")
        run = subprocess.run(
            [sys.executable, "-m", "trainrun", "run", "train.py", "--no-echo"]
            + ["--flag", "lr=0.3", "--runs-dir", s3.url],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        pushed_at = time.monotonic()
        answer = wait_until(
            lambda: (a := httpx.get(api, timeout=10).json())["count"] == 2 and a,
            timeout=30,
            message="the new run in the dashboard's listing",
        )
        seen_after = time.monotonic() - pushed_at
        new = answer["runs"][0]
        assert new["status"] == "completed" and new["eval_accuracy"] == 0.8
        # within the interval, plus a refresh's own time (a LIST, a GET, the run's files)
        assert seen_after < interval + 10
        page = httpx.get(f"http://127.0.0.1:{port}/runs/{new['id']}", timeout=10)
        assert page.status_code == 200 and "0.8" in page.text
        assert fetched(s3) == [new["id"]]  # the run opened, fetched then
    finally:
        ui.terminate()
        ui.wait(timeout=30)


@pytest.fixture
def dashboard(s3: S3, tmp_path: Path) -> TestClient:
    for name, minute in (("r1", 1), ("r2", 2)):
        push(s3, write_run(tmp_path / "a", name, start=t(minute)))
    return TestClient(
        create_app(s3.url, refresh_interval=0.2),
        base_url="http://127.0.0.1",
        headers={"origin": "http://127.0.0.1"},
    )


def _post(client: TestClient, run_id: str, action: str) -> httpx.Response:
    form = client.get(f"/runs/{run_id}/{action}")
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    return client.post(f"/runs/{run_id}/{action}", data={"token": token}, follow_redirects=False)


def test_archive_and_delete_in_a_store_dashboard_act_on_the_store(
    s3: S3, dashboard: TestClient
) -> None:
    assert [r["id"] for r in dashboard.get("/api/runs").json()["runs"]] == ["r2", "r1"]
    assert _post(dashboard, "r1", "archive").status_code == 303
    assert ls_runs(s3.url)["id"].tolist() == ["r2"]  # the store's run, not the mirror's copy
    assert ls_runs(f"{s3.url}/archive")["id"].tolist() == ["r1"]
    assert [r["id"] for r in dashboard.get("/api/runs").json()["runs"]] == ["r2"]
    assert _post(dashboard, "r2", "delete").status_code == 303
    assert ls_runs(s3.url).empty and not s3.keys("team/r2/")
    assert dashboard.get("/api/runs").json()["count"] == 0


def test_a_store_away_is_said_on_the_dashboard_which_serves_its_last_copy(
    s3: S3, dashboard: TestClient, wait_until
) -> None:
    assert dashboard.get("/api/runs").json()["count"] == 2
    s3.server.stop()
    try:
        answer = wait_until(
            lambda: (a := dashboard.get("/api/runs").json())["problems"] and a, timeout=60
        )
        assert answer["count"] == 2
        assert "last copy of " + s3.url in answer["problems"][0]
        # asked less often while it is away: pages do not wait on its timeout every interval
        assert dashboard.app.state.dashboard._wait > 0.2
    finally:
        s3.server.start()
    wait_until(lambda: not dashboard.get("/api/runs").json()["problems"], timeout=60)


def test_a_tag_note_and_name_given_on_a_store_dashboard_go_to_the_store(
    s3: S3, dashboard: TestClient
) -> None:
    page = dashboard.get("/runs/r1")
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.text).group(1)
    form = {"token": token, "add": "best", "note": "kept", "name": "baseline"}
    done = dashboard.post("/runs/r1/annotate", data=form, follow_redirects=False)
    assert done.status_code == 303
    df = ls_runs(s3.url, filter="tag_best == true")  # in the store: every machine sees it
    assert df["id"].tolist() == ["r1"] and df["run_note"].tolist() == ["kept"]
    row = dashboard.get("/api/runs").json()["runs"]
    assert [r.get("run_name") for r in row] == [None, "baseline"]  # and here, at once


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf")])
def test_a_refresh_interval_must_be_a_positive_number(interval: float) -> None:
    from trainrun.exceptions import UsageError
    from trainrun.web.server import serve

    with pytest.raises(UsageError, match="refresh interval must be a positive number"):
        serve("s3://team-runs/churn", port=0, refresh_interval=interval)
