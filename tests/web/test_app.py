"""The dashboard's routes and their JSON twins, in process (Starlette's TestClient)."""

from __future__ import annotations

import re
import warnings

import pytest

from trainrun.runs import record
from trainrun.web.app import create_app

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 for its test client; httpx is what is installed here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


@pytest.fixture
def client(runs_dir, make_run):
    runs_dir.mkdir(parents=True, exist_ok=True)
    # a browser sends its page's origin with every POST; the dashboard checks it
    return TestClient(
        create_app(runs_dir), base_url="http://127.0.0.1", headers={"origin": "http://127.0.0.1"}
    )


def test_index_and_api_runs_list_every_run(client, make_run):
    a = make_run(flags={"dropout": 0.1}, evaluation={"accuracy": 0.7})
    b = make_run(flags={"dropout": 0.3}, evaluation={"accuracy": 0.9})
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert a.name in page.text and b.name in page.text
    assert 'data-col="eval_accuracy"' in page.text
    api = client.get("/api/runs").json()
    assert api["count"] == 2
    assert [r["id"] for r in api["runs"]] == [b.name, a.name]  # newest first
    assert {"id", "status", "flag_dropout", "eval_accuracy"} <= set(api["columns"])
    assert api["runs"][0]["eval_accuracy"] == 0.9


def test_filter_uses_the_ls_language(client, make_run):
    make_run(evaluation={"accuracy": 0.7})
    good = make_run(evaluation={"accuracy": 0.9})
    api = client.get("/api/runs", params={"filter": "eval_accuracy > 0.8"}).json()
    assert [r["id"] for r in api["runs"]] == [good.name]
    page = client.get("/", params={"filter": "eval_accuracy > 0.8"})
    assert good.name in page.text and page.text.count('class="select"') == 1
    bad = client.get("/api/runs", params={"filter": "eval_accuracy >> 1"})
    assert bad.status_code == 400 and bad.json()["error"]
    bad_page = client.get("/", params={"filter": "eval_accuracy >> 1"})
    assert bad_page.status_code == 400 and 'id="filter-error"' in bad_page.text


def test_run_page_and_twin(client, make_run):
    run_dir = make_run(evaluation={"auc": 0.81})
    page = client.get(f"/runs/{run_dir.name}")
    assert page.status_code == 200
    assert "0.81" in page.text and "Archive…" in page.text
    assert re.search(r'<path class="series[^"]*" stroke="[^"]+" d="M', page.text)
    data = client.get(f"/api/runs/{run_dir.name}").json()
    assert data["kind"] == "run" and data["id"] == run_dir.name
    assert data["evaluation"] == {"auc": 0.81}
    status = client.get(f"/api/runs/{run_dir.name}", params={"fields": "status"}).json()
    assert status == {"id": run_dir.name, "status": "completed"}


def test_status_turns_from_running_to_killed(client, runs_dir):
    run_dir = record.new_run_dir(runs_dir)
    record.write_json(
        run_dir / record.RUN_FILE, {"status": "running", "pid": 999_999_999, "host": record.HOST}
    )
    status = client.get(f"/api/runs/{run_dir.name}", params={"fields": "status"}).json()
    assert status["status"] == "killed"


def test_status_poll_of_a_run_that_ends_while_it_is_polled(client, runs_dir, monkeypatch):
    # the owner writes its end and exits between the poll's read and its liveness check
    run_dir = record.new_run_dir(runs_dir)
    run = {"status": "running", "pid": 999_999_999, "host": record.HOST}
    record.write_json(run_dir / record.RUN_FILE, run)
    alive = record.process_alive

    def check(pid, pid_start=None):
        record.write_json(run_dir / record.RUN_FILE, {**run, "status": "completed"})
        return alive(pid, pid_start)

    monkeypatch.setattr(record, "process_alive", check)
    status = client.get(f"/api/runs/{run_dir.name}", params={"fields": "status"}).json()
    assert status["status"] == "completed"


def test_compare_page_and_twin(client, make_run):
    a, b = make_run(flags={"dropout": 0.1}), make_run(flags={"dropout": 0.5})
    page = client.get("/compare", params={"runs": f"{a.name},{b.name}"})
    assert page.status_code == 200 and 'class="differs"' in page.text
    data = client.get("/api/compare", params={"runs": f"{a.name},{b.name}"}).json()
    assert data["kind"] == "compare" and data["ids"] == [a.name, b.name]
    one = client.get("/api/compare", params={"runs": a.name})
    assert one.status_code == 400 and "two or more" in one.json()["error"]
    assert client.get("/compare", params={"runs": f"{a.name},nope"}).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/runs/..%2F..%2Fetc",
        "/runs/%2Fetc%2Fpasswd",
        "/api/runs/%2E%2E",
        "/api/runs/..%2Frecord",
        "/api/runs/%2Ftmp",
        "/runs/.",
        "/api/compare?runs=..,/etc",
        "/runs/..%2F..%2Fetc/archive",
        "/nowhere",
    ],
)
def test_nothing_outside_the_runs_folder(client, make_run, url):
    make_run()
    response = client.get(url)
    assert response.status_code == 404
    if url.startswith("/api/"):
        assert "error" in response.json()


def test_other_hosts_are_refused(client):
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8700"}).status_code == 200


def test_archive_and_delete_need_the_confirmation_token(client, make_run, runs_dir):
    keep, victim = make_run(), make_run()
    form = client.get(f"/runs/{victim.name}/archive")
    assert form.status_code == 200 and 'method="post"' in form.text
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    assert client.post(f"/runs/{victim.name}/archive").status_code == 403
    assert client.post(f"/runs/{victim.name}/archive", data={"token": "0" * 64}).status_code == 403
    # a token is bound to its action and run
    assert client.post(f"/runs/{keep.name}/archive", data={"token": token}).status_code == 403
    done = client.post(
        f"/runs/{victim.name}/archive", data={"token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert not victim.exists() and (runs_dir / "archive" / victim.name).is_dir()
    assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == [keep.name]
    assert client.get(f"/runs/{victim.name}").status_code == 404

    form = client.get(f"/runs/{keep.name}/delete")
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    done = client.post(f"/runs/{keep.name}/delete", data={"token": token}, follow_redirects=False)
    assert done.status_code == 303 and not keep.exists()
    assert client.get("/api/runs").json()["count"] == 0
    assert client.get(f"/runs/{keep.name}/explode").status_code == 404


def test_a_running_run_is_not_archived(client, runs_dir):
    run_dir = record.new_run_dir(runs_dir)
    record.write_json(
        run_dir / record.RUN_FILE,
        {"status": "running", "pid": record.os.getpid(), "host": record.HOST},
    )
    form = client.get(f"/runs/{run_dir.name}/archive")
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    response = client.post(f"/runs/{run_dir.name}/archive", data={"token": token})
    assert response.status_code == 400 and "running" in response.text
    assert run_dir.exists()


def test_empty_and_missing_runs_folder(tmp_path):
    client = TestClient(create_app(tmp_path / "absent"), base_url="http://127.0.0.1")
    assert client.get("/api/runs").json()["count"] == 0
    assert "No runs yet" in client.get("/").text


def test_hostile_flag_is_escaped_everywhere(client, make_run):
    evil = "<script>alert(1)</script>"
    run_dir = make_run(flags={"note": evil})
    for url in ("/", f"/runs/{run_dir.name}"):
        assert evil not in client.get(url).text
    listing = client.get("/").text.split('id="trainrun-listing">', 1)[1].split("</script>", 1)[0]
    assert "<" not in listing
    assert client.get("/api/runs").json()["runs"][0]["flag_note"] == evil
