"""Nothing outside a run is read, served, embedded or copied through it, reproduced first:
links to a secret file, FIFOs, /dev/zero, symlink loops in the runs folder."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from tests.runs.report.conftest import PNG, write_run

from trainrun.runs import record, report
from trainrun.runs.report import _data
from trainrun.runs.store import ls_runs, run_info

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
    pytest.mark.timeout(120),  # a FIFO read would hang: fail instead
]

SECRET = "s3cr3t-do-not-serve"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def client(runs: Path):
    from trainrun.web.app import create_app

    return TestClient(create_app(runs), base_url="http://127.0.0.1")


def booby_trapped(runs: Path, secret: Path) -> Path:
    """A run whose output, source, plot and artifact are links to a file outside it."""
    run = write_run(runs, plots=False, sources={})
    (run / record.OUTPUT_FILE).unlink()
    (run / record.OUTPUT_FILE).symlink_to(secret)
    (run / "source" / "train.py").symlink_to(secret)
    (run / "source" / "etc").symlink_to("/etc", target_is_directory=True)
    (run / "plots" / "leak.png").symlink_to(secret)
    (run / "plots" / "ok.png").write_bytes(PNG)
    (run / "artifacts" / "leak.bin").symlink_to(secret)
    (run / "artifacts" / "model.bin").write_bytes(b"weights")
    return run


def test_links_inside_a_run_are_shown_as_links_never_followed(runs, secret, client, tmp_path):
    run = booby_trapped(runs, secret)
    data = _data.run_data(run)
    assert SECRET not in repr(data)
    assert "not followed" in data["output"]["note"]
    sources = {s["path"]: s for s in data["sources"]}
    assert sources["train.py"]["kind"] == "link" and sources["train.py"]["text"] is None
    assert sources["etc"]["kind"] == "link"  # the folder link is not entered
    plots = {p["name"]: p for p in data["plots"]}
    assert plots["leak.png"]["data_uri"] is None and plots["ok.png"]["data_uri"]
    artifacts = {a["path"]: a for a in data["artifacts"]}
    assert artifacts["leak.bin"]["kind"] == "link" and artifacts["model.bin"]["size"] == 7

    page = report.save_run_view(run, tmp_path / "view.html").read_text()
    assert SECRET not in page and "not followed" in page
    for url in (f"/runs/{run.name}", f"/api/runs/{run.name}"):
        response = client.get(url)
        assert response.status_code == 200 and SECRET not in response.text


def test_artifacts_and_plots_download_regular_files_inside_the_run_only(runs, secret, client):
    run = booby_trapped(runs, secret)
    (run / "artifacts" / "sub").mkdir()
    (run / "artifacts" / "sub" / "deep.txt").write_text("deep")
    (run / "artifacts" / "linkdir").symlink_to(secret.parent, target_is_directory=True)
    base = f"/runs/{run.name}/files"
    got = client.get(f"{base}/artifacts/model.bin")
    assert got.status_code == 200 and got.content == b"weights"
    assert got.headers["content-type"] == "application/octet-stream"
    assert "attachment" in got.headers["content-disposition"]
    assert client.get(f"{base}/artifacts/sub/deep.txt").content == b"deep"
    assert client.get(f"{base}/plots/ok.png").content == PNG
    page = client.get(f"/runs/{run.name}").text
    assert f'href="/runs/{run.name}/files/artifacts/model.bin"' in page
    for path in (
        "artifacts/leak.bin",
        "plots/leak.png",
        "artifacts/linkdir/secret.txt",
        "artifacts/..%2F..%2F..%2Fsecret.txt",
        "artifacts/../run.json",
        "source/train.py",
        "output.log/x",
        "artifacts/sub",
        "artifacts/",
    ):
        response = client.get(f"{base}/{path}")
        assert response.status_code == 404, path
        assert SECRET not in response.text


def test_output_as_a_fifo_or_dev_zero_does_not_hang_or_exhaust(runs, client, tmp_path):
    fifo_run = write_run(runs)
    (fifo_run / record.OUTPUT_FILE).unlink()
    os.mkfifo(fifo_run / record.OUTPUT_FILE)
    os.mkfifo(fifo_run / "source" / "pipe.py")
    zero_run = write_run(runs)
    (zero_run / record.OUTPUT_FILE).unlink()
    (zero_run / record.OUTPUT_FILE).symlink_to("/dev/zero")
    (zero_run / record.METRICS_FILE).unlink()
    (zero_run / record.METRICS_FILE).symlink_to("/dev/zero")
    for run in (fifo_run, zero_run):
        data = _data.run_data(run)
        assert not data["output"]["exists"] and data["output"]["note"]
        assert client.get(f"/runs/{run.name}").status_code == 200
        assert client.get(f"/api/runs/{run.name}", params={"fields": "status"}).status_code == 200
    assert "FIFO" in _data.run_data(fifo_run)["output"]["note"]
    # the metrics file that is a link is a problem of that run alone
    assert any("metrics.jsonl" in p for p in _data.run_data(zero_run)["problems"])
    with pytest.warns(UserWarning, match="metrics.jsonl"):
        listed = ls_runs(runs)
    assert len(listed) == 2
    # `trainrun view` in a process of its own: it finishes, it does not hang on the FIFO
    done = subprocess.run(
        [sys.executable, "-m", "trainrun", "view", fifo_run.name, "--runs-dir", str(runs)]
        + ["-o", str(tmp_path / "v.html")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_run_json_that_is_a_link_is_not_read(runs, secret):
    run = write_run(runs)
    (run / record.RUN_FILE).unlink()
    (run / record.RUN_FILE).symlink_to(secret)
    with pytest.raises(record.RunRecordError, match="link"):
        run_info(run.name, runs)
    with pytest.warns(UserWarning, match="skipped"):
        assert ls_runs(runs).empty


def test_symlink_loops_in_the_runs_folder_break_nothing(runs, client, tmp_path):
    a, b = write_run(runs), write_run(runs)
    (runs / "loop").symlink_to(runs / "loop")
    (runs / "up").symlink_to("..", target_is_directory=True)
    (runs / "self").symlink_to(".", target_is_directory=True)
    (runs / "dangling").symlink_to(tmp_path / "nothing")
    (a / "source" / "loop").symlink_to(a / "source", target_is_directory=True)
    (a / "artifacts" / "a").symlink_to("b")
    (a / "artifacts" / "b").symlink_to("a")
    assert sorted(ls_runs(runs)["id"]) == sorted([a.name, b.name])
    assert sorted(ls_runs(runs, refresh=True)["id"]) == sorted([a.name, b.name])
    report.save_run_view(a.name, tmp_path / "a.html", runs_dir=runs)
    report.save_run_comparison([a.name, b.name], tmp_path / "c.html", runs_dir=runs)
    assert client.get("/").status_code == 200
    assert client.get(f"/runs/{a.name}").status_code == 200
    assert client.get("/compare", params={"runs": f"{a.name},{b.name}"}).status_code == 200
    for name in ("loop", "up", "self", "dangling"):
        assert client.get(f"/runs/{name}").status_code == 404
