"""The dashboard over a shared store lists the index cache and fetches a run's files only
when a page needs them: its first start over many runs fetches none, an opened run is
fetched (and kept live while it runs), and nothing but the runs the store lists is served."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest
from tests.runs.store.conftest import write_run
from tests.runs.store.s3server import S3
from tests.runs.store.test_remote_listing import push, t

from trainrun.runs import record
from trainrun.runs.store import ls_runs
from trainrun.runs.store._sync import RunSync, cache_root
from trainrun.web.app import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

RUNS = 24


def fetched(s3: S3) -> list[str]:
    """The run folders this machine holds of the store (mirror/ and copies/), by name."""
    root = cache_root(s3.url)
    out = []
    for folder in (root / "mirror", root / "copies"):
        if folder.is_dir():
            out += [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(out)


@pytest.fixture
def many(s3: S3, tmp_path: Path) -> list[str]:
    ids = []
    for i in range(RUNS):
        folder = write_run(
            tmp_path / "machine-a",
            f"r{i:02d}",
            start=t(i),
            flags={"lr": i / 100},
            metrics=[{"step": 0, "loss": 1.0}],
            evaluation={"accuracy": i / RUNS},
        )
        (folder / "artifacts" / "notes.txt").write_text("hello from the run\n")
        ids.append(push(s3, folder))
    return ids


def client_for(s3: S3, interval: float = 0.2) -> TestClient:
    return TestClient(
        create_app(s3.url, refresh_interval=interval),
        base_url="http://127.0.0.1",
        headers={"origin": "http://127.0.0.1"},
    )


def test_the_first_page_over_many_runs_fetches_no_run_files(s3: S3, many: list[str]) -> None:
    client = client_for(s3)
    assert fetched(s3) == []  # started: the index listed, not one run's files
    answer = client.get("/api/runs").json()
    assert answer["total"] == RUNS and answer["runs_dir"] == s3.url
    # the same rows `trainrun ls` over the store lists
    assert [r["id"] for r in answer["runs"]] == ls_runs(s3.url)["id"].tolist()
    assert client.get("/api/runs?filter=eval_accuracy > 0.9").json()["total"] == 2
    assert client.get("/api/statuses").json()["total"] == RUNS
    assert client.get("/api/values?columns=eval_accuracy").json()["shown"] == RUNS
    assert client.get("/").status_code == 200
    assert fetched(s3) == []


def test_opening_a_run_fetches_that_run_only(s3: S3, many: list[str]) -> None:
    client = client_for(s3)
    page = client.get("/runs/r03")
    assert page.status_code == 200 and "r03" in page.text
    assert fetched(s3) == ["r03"]
    preview = client.get("/runs/r05/preview/artifacts/notes.txt")
    assert preview.status_code == 200 and "hello from the run" in preview.text
    assert client.get("/runs/r07/files/artifacts/notes.txt").content == b"hello from the run\n"
    assert client.get("/api/compare?runs=r01,r02").status_code == 200
    assert fetched(s3) == ["r01", "r02", "r03", "r05", "r07"]
    # a confirmation form and a run the store does not list fetch nothing
    assert client.get("/runs/r09/archive").status_code == 200
    assert client.get("/runs/nope").status_code == 404
    assert fetched(s3) == ["r01", "r02", "r03", "r05", "r07"]


@pytest.mark.parametrize("name", [".fetched", "archive", "%2e%2e", "r0", "0", "r01%2f..%2fr02"])
def test_only_a_run_the_store_lists_under_that_exact_id_is_served(
    s3: S3, many: list[str], name: str
) -> None:
    client = client_for(s3)
    client.get("/runs/r01")  # mirror/.fetched exists now
    assert client.get(f"/runs/{name}").status_code == 404
    assert client.get(f"/api/runs/{name}").status_code == 404


def test_a_folder_in_the_mirror_that_the_store_does_not_list_is_not_served(
    s3: S3, many: list[str], tmp_path: Path
) -> None:
    client = client_for(s3)
    planted = write_run(cache_root(s3.url) / "mirror", "planted")
    assert record.run_by_name(planted.parent, "planted") is not None
    assert client.get("/runs/planted").status_code == 404
    assert client.get("/api/runs/planted").status_code == 404


def test_a_link_in_an_opened_run_is_not_followed(s3: S3, many: list[str], tmp_path: Path) -> None:
    client = client_for(s3)
    assert client.get("/runs/r04").status_code == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("not a run's file")
    link = cache_root(s3.url) / "mirror" / "r04" / "artifacts" / "leak.txt"
    os.symlink(secret, link)
    assert client.get("/runs/r04/files/artifacts/leak.txt").status_code == 404
    assert "not a run" not in client.get("/runs/r04/preview/artifacts/leak.txt").text


def test_an_open_running_run_is_refreshed_at_the_interval(
    s3: S3, tmp_path: Path, wait_until
) -> None:
    folder = write_run(tmp_path / "gpu-box", "live", status="running", start=t(30))
    record.append_jsonl(folder / record.METRICS_FILE, [{"step": 0, "loss": 1.0}])
    sync = RunSync(folder, s3.url)
    sync.push()
    push(s3, write_run(tmp_path / "machine-a", "done", start=t(1)))
    client = client_for(s3)
    live = client.get("/api/runs/live?fields=live").json()
    assert live["status"] == "running" and live["metric_points"] == 1
    record.append_jsonl(folder / record.METRICS_FILE, [{"step": 1, "loss": 0.5}])
    sync.push()  # the running run's next tick on its machine: new metrics, a new heartbeat
    wait_until(
        lambda: client.get("/api/runs/live?fields=live").json()["metric_points"] == 2,
        timeout=30,
        message="the open run's new metrics",
    )
    assert fetched(s3) == ["live"]  # the run never opened was not fetched meanwhile


def test_a_run_pushed_after_the_start_is_listed_then_fetched_when_opened(
    s3: S3, many: list[str], tmp_path: Path, wait_until
) -> None:
    client = client_for(s3)
    assert client.get("/api/runs").json()["total"] == RUNS
    push(s3, write_run(tmp_path / "machine-b", "late", start=t(59)))
    answer = wait_until(
        lambda: (a := client.get("/api/runs").json())["total"] == RUNS + 1 and a, timeout=30
    )
    assert answer["runs"][0]["id"] == "late" and fetched(s3) == []
    assert client.get("/runs/late").status_code == 200 and fetched(s3) == ["late"]


def _post(client: TestClient, run_id: str, action: str) -> int:
    form = client.get(f"/runs/{run_id}/{action}")
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    done = client.post(f"/runs/{run_id}/{action}", data={"token": token}, follow_redirects=False)
    return done.status_code


def test_an_opened_run_archived_or_deleted_leaves_this_machine_too(s3: S3, many: list[str]) -> None:
    client = client_for(s3)
    assert client.get("/runs/r01").status_code == 200
    assert client.get("/runs/r02").status_code == 200
    assert _post(client, "r01", "archive") == 303
    assert _post(client, "r02", "delete") == 303
    assert "r01" not in ls_runs(s3.url)["id"].tolist()
    assert ls_runs(f"{s3.url}/archive")["id"].tolist() == ["r01"]
    assert not s3.keys("team/r02/")
    assert fetched(s3) == []  # their copies removed here
    assert client.get("/runs/r01").status_code == 404
    assert client.get("/api/runs").json()["total"] == RUNS - 2


def test_pages_opening_one_run_at_once_fetch_it_once_whole(s3: S3, many: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    dash = client_for(s3).app.state.dashboard
    with ThreadPoolExecutor(8) as pool:  # a run page, its polls, a comparison: side by side
        folders = list(pool.map(lambda _: dash.run_dir("r06"), range(16)))
    assert {str(f) for f in folders} == {str(cache_root(s3.url) / "mirror" / "r06")}
    assert record.read_run(folders[0])["id"] == "r06" and fetched(s3) == ["r06"]
    leftovers = [p.name for p in (cache_root(s3.url) / "mirror").iterdir() if "fetching" in p.name]
    assert leftovers == []


def test_a_first_listing_runs_beside_the_server(
    s3: S3, many: list[str], monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    from trainrun.web import app as web_app

    monkeypatch.setattr(web_app, "FIRST_LISTING_WAIT_S", 0.0)  # pages do not wait for it
    client = client_for(s3)
    dash = client.app.state.dashboard
    assert dash._first_listing is not None  # never listed here: in a thread of its own
    first = client.get("/api/runs").json()
    if first["total"] < RUNS:  # still listing: the page says so
        assert any("for the first time" in p for p in first["problems"])
    # every row may be in a moment before the listing thread marks itself done
    done = wait_until(
        lambda: (a := client.get("/api/runs").json())["total"] == RUNS and not a["problems"] and a,
        timeout=60,
    )
    assert done["problems"] == [] and fetched(s3) == []


def test_a_cache_listed_lately_is_brought_up_to_date_before_the_first_page(
    s3: S3, many: list[str], tmp_path: Path
) -> None:
    assert len(ls_runs(s3.url)) == RUNS  # this machine listed the store before
    push(s3, write_run(tmp_path / "machine-b", "new", start=t(58)))
    client = client_for(s3, interval=3600)
    assert client.app.state.dashboard._first_listing is None
    assert client.get("/api/runs").json()["runs"][0]["id"] == "new"


def test_a_store_that_cannot_be_used_is_refused_at_start(s3: S3) -> None:
    from trainrun.runs.store._objectstore import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        create_app(f"s3://no-such-bucket-{os.getpid()}/team")
