"""Tags, notes and names of runs in a shared store: pushed to the store, seen everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.runs.store.s3server import S3
from tests.runs.store.test_remote_listing import push, t

from trainrun.exceptions import RunNotFoundError, RunRecordError
from trainrun.runs.store import ls_runs, name_run, note_run, run_info, tag_run
from trainrun.runs.store._sync import RunSync

pytestmark = pytest.mark.slow


def test_a_tag_note_and_name_reach_every_machine(
    s3: S3, tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(s3, write_run(tmp_path / "a", "r1", start=t(1)))
    push(s3, write_run(tmp_path / "a", "r2", start=t(2)))
    assert run_info("r1", s3.url)["tags"] == {}  # machine A has a copy of r1 already
    assert tag_run("r1", add=["best", "dataset=v2"], runs_dir=s3.url)["tags"] == {
        "best": True,
        "dataset": "v2",
    }
    note_run("r1", "lr too high", runs_dir=s3.url)
    name_run("r1", "baseline", runs_dir=s3.url)
    for machine in ("cache", "machine-b"):  # this machine's copy is fetched again, too
        monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / machine))
        df = ls_runs(s3.url, filter="tag_best == true")
        assert df["id"].tolist() == ["r1"] and df["run_name"].tolist() == ["baseline"]
        info = run_info("r1", s3.url)
        assert info["note"] == "lr too high" and info["tags"]["dataset"] == "v2"
    # the CLI's verbs: trainrun tag / note over the store
    env = s3.child_env()
    env["TRAINRUN_CACHE_DIR"] = str(tmp_path / "machine-c")
    out = subprocess.run(
        [sys.executable, "-m", "trainrun", "tag", "r2", "--add", "draft", "--runs-dir", s3.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert ls_runs(s3.url, filter="tag_draft == true")["id"].tolist() == ["r2"]
    for verb in (["note", "r2", "second try"], ["name", "r2", "candidate"]):
        out = subprocess.run(
            [sys.executable, "-m", "trainrun", *verb, "--runs-dir", s3.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
    # a name names the run wherever one run is asked for (show, view, run_info...)
    info = run_info("candidate", s3.url)
    assert info["id"] == "r2" and info["note"] == "second try"
    name_run("r1", "candidate", runs_dir=s3.url)
    with pytest.raises(RunNotFoundError, match="given to 2 runs"):
        run_info("candidate", s3.url)


def test_a_run_still_running_elsewhere_is_not_annotated(s3: S3, tmp_path: Path, write_run) -> None:
    folder = write_run(tmp_path / "a", "live", start=t(1), status="running")
    RunSync(folder, s3.url).push()
    with pytest.raises(RunRecordError, match="still running on another machine"):
        tag_run("live", add="best", runs_dir=s3.url)


def test_copy_run_into_a_store_shares_a_local_run(
    s3: S3, tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainrun.runs.store import copy_run

    local = tmp_path / "runs"
    write_run(local, "mine", start=t(1), flags={"lr": 0.1}, evaluation={"acc": 0.9})
    assert copy_run("mine", s3.url, runs_dir=local) == f"{s3.url}/mine"
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "teammate"))
    df = ls_runs(s3.url)
    assert df["id"].tolist() == ["mine"] and df["eval_acc"].tolist() == [0.9]
    assert run_info("mine", s3.url)["flags"] == {"lr": 0.1}
    with pytest.raises(FileExistsError, match="already holds a run mine"):
        copy_run("mine", s3.url, runs_dir=local)  # never two runs under one id, nor a duplicate
    assert copy_run("mine", s3.url, runs_dir=local, rename="mine-v2") == f"{s3.url}/mine-v2"
    write_run(local, "live", start=t(2), status="running")
    with pytest.raises(RunRecordError, match="still running"):
        copy_run("live", s3.url, runs_dir=local)
    # the CLI: trainrun copy RUN s3://... (no local folder named 's3:')
    out = subprocess.run(
        [sys.executable, "-m", "trainrun", "copy", "mine", s3.url, "--rename", "mine-v3"]
        + ["--runs-dir", str(local)],
        env=s3.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert f"{s3.url}/mine-v3" in out.stdout and not (tmp_path / "s3:").exists()
