"""The dashboard's listing columns, annotations, live run page and file previews (in process)."""

from __future__ import annotations

import json
import os
import re
import warnings

import pytest

from trainrun.runs import record
from trainrun.web.app import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


@pytest.fixture
def client(runs_dir, make_run):
    runs_dir.mkdir(parents=True, exist_ok=True)
    return TestClient(
        create_app(runs_dir), base_url="http://127.0.0.1", headers={"origin": "http://127.0.0.1"}
    )


def test_listing_puts_varying_flags_first_and_hides_constant_ones(client, make_run):
    for lr in (0.1, 0.2, 0.3):
        make_run(flags={"lr": lr, "epochs": 5}, evaluation={"accuracy": 0.5 + lr})
    data = client.get("/api/runs").json()
    assert data["columns"][:4] == ["id", "status", "flag_lr", "eval_accuracy"]
    assert "flag_epochs" in data["hidden"] and "flag_lr" not in data["hidden"]
    assert data["constant"] == ["flag_epochs"]
    assert data["constant_summary"] == "same in every run: epochs=5"
    page = client.get("/").text
    assert "same in every run: epochs=5" in page
    header = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    assert 'data-col="flag_lr"' in header and 'data-col="flag_epochs"' not in header


def _annotate_token(client, run_id):
    page = client.get(f"/runs/{run_id}").text
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)


def test_tags_note_and_name_from_the_run_page(client, make_run):
    run = make_run()
    token = _annotate_token(client, run.name)
    form = {"token": token, "name": "baseline", "note": "first try", "add": "best data=v2"}
    done = client.post(f"/runs/{run.name}/annotate", data=form, follow_redirects=False)
    assert done.status_code == 303
    stored = record.read_json(run / record.RUN_FILE)
    assert stored["name"] == "baseline" and stored["note"] == "first try"
    assert stored["tags"] == {"best": True, "data": "v2"}
    listed = client.get("/api/runs").json()["runs"][0]
    assert listed["run_name"] == "baseline" and listed["tag_best"] is True
    done = client.post(
        f"/runs/{run.name}/annotate",
        data={"token": token, "remove": "best", "note": ""},
        follow_redirects=False,
    )
    assert done.status_code == 303
    stored = record.read_json(run / record.RUN_FILE)
    assert (
        stored["tags"] == {"data": "v2"} and "note" not in stored and stored["name"] == "baseline"
    )


def test_annotations_need_the_origin_and_the_token(runs_dir, make_run):
    run = make_run()
    before = (run / record.RUN_FILE).read_bytes()
    plain = TestClient(create_app(runs_dir), base_url="http://127.0.0.1")
    token = _annotate_token(plain, run.name)
    # no Origin (a form posted from another site, or a script): refused
    assert (
        plain.post(f"/runs/{run.name}/annotate", data={"token": token, "note": "x"}).status_code
        == 403
    )
    evil = {"origin": "http://evil.example"}
    assert (
        plain.post(
            f"/runs/{run.name}/annotate", data={"token": token, "note": "x"}, headers=evil
        ).status_code
        == 403
    )
    ok = {"origin": "http://127.0.0.1"}
    assert (
        plain.post(
            f"/runs/{run.name}/annotate", data={"token": "0" * 64, "note": "x"}, headers=ok
        ).status_code
        == 403
    )
    assert (run / record.RUN_FILE).read_bytes() == before
    bad = plain.post(
        f"/runs/{run.name}/annotate", data={"token": token, "name": "a\nb"}, headers=ok
    )
    assert bad.status_code == 400 and "line break" in bad.text


def test_a_running_runs_live_twin_has_its_charts_and_output(client, make_run):
    run = make_run(status="running", steps=3, output="hello\n")
    live = client.get(f"/api/runs/{run.name}?fields=live").json()
    assert live["status"] == "running" and live["metric_points"] == 3
    assert isinstance(live["elapsed"], float) and live["elapsed_text"].endswith("s")
    assert '<figure class="chart"' in live["charts_html"] and "hello" in live["output_html"]
    record.append_jsonl(run / record.METRICS_FILE, [{"step": 3, "time": 4.0, "loss": 0.1}])
    again = client.get(f"/api/runs/{run.name}?fields=live").json()
    assert again["metric_points"] == 4
    page = client.get(f"/runs/{run.name}").text
    assert "fields=live" in page and 'id="elapsed"' in page


def test_previews_of_text_csv_json_and_images(client, make_run):
    run = make_run()
    art = run / record.ARTIFACTS_DIR
    (art / "notes.txt").write_text("<script>alert(1)</script> plain text\n")
    (art / "table.csv").write_text("a,b\n1,<b>x</b>\n2,y\n")
    (art / "conf.json").write_text('{"z": [1, 2], "name": "<i>"}')
    (art / "blob.bin").write_bytes(b"\0\1\2")
    text = client.get(f"/runs/{run.name}/preview/artifacts/notes.txt")
    assert (
        text.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt; plain text" in text.text
    )
    assert "<script>alert(1)" not in text.text
    table = client.get(f"/runs/{run.name}/preview/artifacts/table.csv").text
    assert "<th>a</th><th>b</th>" in table and "<td>&lt;b&gt;x&lt;/b&gt;</td>" in table
    conf = client.get(f"/runs/{run.name}/preview/artifacts/conf.json").text
    assert "&#34;z&#34;: [\n    1," in conf or "&#34;z&#34;: [" in conf
    assert "A binary file" in client.get(f"/runs/{run.name}/preview/artifacts/blob.bin").text
    image = client.get(f"/runs/{run.name}/preview/plots/history.png").text
    src = re.search(r'<img class="preview" src="([^"]+)"', image).group(1)
    shown = client.get(src.replace("&amp;", "&"))
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline")
    download = client.get(f"/runs/{run.name}/files/plots/history.png")
    assert download.headers["content-disposition"].startswith("attachment")
    # a text file is never served inline, whatever the query says
    assert (
        client.get(f"/runs/{run.name}/files/artifacts/notes.txt?inline=1")
        .headers["content-disposition"]
        .startswith("attachment")
    )


def test_previews_never_follow_links(client, make_run, tmp_path):
    run = make_run()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, run / record.ARTIFACTS_DIR / "link.txt")
    got = client.get(f"/runs/{run.name}/preview/artifacts/link.txt")
    assert got.status_code == 404 and "top secret" not in got.text
    assert client.get(f"/runs/{run.name}/preview/artifacts/../run.json").status_code == 404
    assert client.get(f"/runs/{run.name}/preview/source/train.py").status_code == 404


def test_page_json_is_escaped_inside_script(client, make_run):
    make_run(flags={"x": "</script><script>alert(1)</script>"})
    page = client.get("/").text
    data = re.search(r'id="trainrun-listing">(.*?)</script>', page, re.S).group(1)
    assert "</script>" not in data and json.loads(data)["runs"][0]["flag_x"].startswith("</script>")


def test_the_views_values_cover_every_listed_run_not_one_page(client, make_run, monkeypatch):
    from trainrun.web import app as web_app

    monkeypatch.setattr(web_app, "PAGE_SIZE", 2)
    for lr in (0.1, 0.2, 0.3, 0.4, 0.5):
        make_run(flags={"lr": lr}, evaluation={"accuracy": lr + 0.4})
    assert client.get("/api/runs").json()["count"] == 2  # a page
    data = client.get("/api/values?columns=flag_lr,eval_accuracy,nope").json()
    assert data["columns"] == ["id", "flag_lr", "eval_accuracy"]  # unknown names left out
    assert sorted(r["flag_lr"] for r in data["runs"]) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert data["total"] == data["shown"] == 5
    kept = client.get("/api/values?columns=flag_lr&filter=eval_accuracy%20%3E%200.75").json()
    assert sorted(r["flag_lr"] for r in kept["runs"]) == [0.4, 0.5]
    monkeypatch.setattr(web_app, "VIEW_LIMIT", 3)
    capped = client.get("/api/values?columns=flag_lr&order=flag_lr&asc=1").json()
    assert [r["flag_lr"] for r in capped["runs"]] == [0.1, 0.2, 0.3] and capped["total"] == 5
    bad = client.get("/api/values?columns=flag_lr&filter=flag_lr%20%3E")
    assert bad.status_code == 400 and "error" in bad.json()
