"""Runs launched into a shared store: pushed as they go, killed writers, a server restart,
several machines at once, and the errors of a store that cannot work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.runs.store.s3server import S3

from trainrun.runs import record
from trainrun.runs.store import ls_runs

pytestmark = pytest.mark.slow

SCRIPT = """\
import os, time
import trainrun as tr

FLAGS = tr.flags(lr=0.1)
for step in range(3):
    tr.log_metrics(step=step, loss=1 / (step + 1))
print("logged", flush=True)
go = os.environ.get("GO_FILE")
deadline = time.time() + 120
while go and not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
tr.write_evaluation(accuracy=0.5 + FLAGS.lr)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def launch(s3: S3, script: Path, machine: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``trainrun run`` on another 'machine' (its own cache and staging folder)."""
    child = s3.child_env()
    child.update({"TRAINRUN_CACHE_DIR": str(machine), "TRAINRUN_SYNC_INTERVAL": "0.3", **env})
    return subprocess.Popen(
        [sys.executable, "-m", "trainrun", "run", str(script), "--no-echo", "--runs-dir", s3.url]
        + list(args),
        env=child,
        cwd=script.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def end(proc: subprocess.Popen[str]) -> None:
    """The launcher gone (killed if still there) and its pipes closed."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def listed(s3: S3, **kw: object) -> list[dict[str, object]]:
    return ls_runs(s3.url, **kw).to_dict("records")  # type: ignore[arg-type]


def test_a_run_is_pushed_as_it_goes_and_whole_at_the_end(
    s3: S3, script: Path, tmp_path: Path, wait_until
) -> None:
    go = tmp_path / "go"
    proc = launch(s3, script, tmp_path / "machine-a", "--flag", "lr=0.25", GO_FILE=str(go))
    try:
        # metrics while it runs, within a few sync intervals
        rows = wait_until(
            lambda: [
                r for r in listed(s3) if r["status"] == "running" and r.get("metric_loss") == 1 / 3
            ],
            timeout=60,
            message="the running run's metrics in the store",
        )
        assert rows[0]["flag_lr"] == 0.25
        go.touch()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        end(proc)
    (row,) = listed(s3)
    assert row["status"] == "completed" and row["eval_accuracy"] == 0.75
    keys = s3.keys("team/")
    run_id = row["id"]
    for rel in ("run.json", "flags.json", "metrics.jsonl", "evaluation.json", "output.log"):
        assert f"team/{run_id}/{rel}" in keys
    assert f"team/{run_id}/source/train.py" in keys  # everything at the end
    assert not [k for k in keys if "reserve" in k.lower()]


def test_a_writer_killed_mid_run_reads_killed(
    s3: S3, script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    monkeypatch.setenv("TRAINRUN_HEARTBEAT_TIMEOUT", "2")
    proc = launch(s3, script, tmp_path / "machine-a", GO_FILE=str(tmp_path / "never"))
    try:
        wait_until(lambda: [r["status"] for r in listed(s3)] == ["running"], timeout=60)
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher, its sync and the script: gone at once
    finally:
        end(proc)
    wait_until(
        lambda: [r["status"] for r in listed(s3)] == ["killed"],
        timeout=60,
        message="the dead writer's run to read as killed",
    )
    assert listed(s3, filter="status == 'killed'")[0]["metric_loss"] == 1 / 3


def test_a_server_restart_mid_run_is_pushed_when_it_returns(
    s3: S3, script: Path, tmp_path: Path, wait_until
) -> None:
    go = tmp_path / "go"
    machine = tmp_path / "machine-a"
    proc = launch(s3, script, machine, GO_FILE=str(go), TRAINRUN_SYNC_FINAL_TIMEOUT="90")
    try:
        wait_until(lambda: [r["status"] for r in listed(s3)] == ["running"], timeout=60)
        s3.server.stop()
        go.touch()  # the run finishes while the server is down: locally, as always

        def finished_locally() -> bool:
            found = list(machine.glob("s3/*/*/staging/*/run.json"))
            return bool(found) and json.loads(found[0].read_text())["status"] == "completed"

        wait_until(finished_locally, timeout=60, message="the run to complete locally")
        assert proc.poll() is None  # still retrying the final push
        s3.server.start()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        end(proc)
        if s3.server._server is None:
            s3.server.start()
    (row,) = listed(s3)
    assert row["status"] == "completed" and row["eval_accuracy"] == pytest.approx(0.6)


def test_a_run_that_ends_while_the_server_stays_away_is_pushed_later(
    s3: S3, script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = tmp_path / "machine-a"
    s3.server.stop()
    try:
        proc = launch(s3, script, machine, TRAINRUN_SYNC_FINAL_TIMEOUT="1")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err  # the run itself is fine
        assert "not yet in" in err and "did not answer" in err
    finally:
        s3.server.start()
    # the next listing from that machine pushes it
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(machine))
    (row,) = listed(s3)
    assert row["status"] == "completed"
    assert not list(machine.glob("s3/*/*/staging/.trainrun/unpushed/*"))


def test_several_machines_writing_at_once_lose_nothing(
    s3: S3, script: Path, tmp_path: Path
) -> None:
    procs = [
        launch(s3, script, tmp_path / f"machine-{i}", "--flag", f"lr=0.{i + 1}") for i in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    rows = listed(s3)
    assert len({r["id"] for r in rows}) == 4
    assert sorted(r["flag_lr"] for r in rows) == [0.1, 0.2, 0.3, 0.4]
    assert all(r["status"] == "completed" for r in rows)
    # every id was claimed once in the store, whatever the local names were
    claims = [k for k in s3.keys("team/.trainrun/ids/")]
    assert len(claims) == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AWS_SECRET_ACCESS_KEY": None}, "set AWS_SECRET_ACCESS_KEY"),
        ({"bucket": "no-such-bucket"}, "bucket 'no-such-bucket' does not exist"),
    ],
)
def test_a_store_that_cannot_work_refuses_the_run_before_it_starts(
    s3: S3, script: Path, tmp_path: Path, change: dict[str, str | None], message: str
) -> None:
    env = s3.child_env()
    env["TRAINRUN_CACHE_DIR"] = str(tmp_path / "machine")
    url = s3.url
    for key, value in change.items():
        if key == "bucket":
            url = f"s3://{value}/team"
        elif value is None:
            env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", str(script), "--no-echo", "--runs-dir", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "machine").glob("s3/*/*/staging/*/" + record.RUN_FILE))


def test_a_tuning_run_into_a_store(s3: S3, script: Path, tmp_path: Path, monkeypatch) -> None:
    from trainrun.runs.tuning import tuning_run

    monkeypatch.setenv("TRAINRUN_SYNC_INTERVAL", "0.3")
    monkeypatch.chdir(tmp_path)
    runs = tuning_run(
        str(script),
        flags={"lr": [0.1, 0.2, 0.3]},
        runs_dir=s3.url,
        workers=2,
        confirm=False,
        echo=False,
        progress=False,
        metric="eval_accuracy",
    )
    assert sorted(runs["flag_lr"]) == [0.1, 0.2, 0.3]
    best = runs.attrs["best"]
    assert best["value"] == pytest.approx(0.8) and best["run_dir"].startswith(s3.url + "/")
    listed_ids = {r["id"] for r in listed(s3, filter="status == 'completed'")}
    assert listed_ids == set(runs["id"])
    # the same tuning again, from another machine: its completed trials are reused, not rerun
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "machine-b"))
    again = tuning_run(
        str(script),
        flags={"lr": [0.1, 0.2, 0.3]},
        runs_dir=s3.url,
        confirm=False,
        echo=False,
        progress=False,
    )
    assert set(again["id"]) == listed_ids and len(listed(s3)) == 3


def test_a_ray_tuning_run_into_a_store(s3: S3, script: Path, tmp_path: Path, monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    from trainrun.runs.tuning import tuning_run

    monkeypatch.chdir(tmp_path)
    # the Ray workers get the store's settings as a cluster's nodes would have them
    env = {**s3.env, "TRAINRUN_SYNC_INTERVAL": "0.3", "TRAINRUN_CACHE_DIR": str(tmp_path / "node")}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    try:
        runs = tuning_run(
            str(script),
            flags={"lr": [0.1, 0.2]},
            runs_dir=s3.url,
            backend="ray",
            workers=2,
            resources_per_trial={"cpu": 1},
            confirm=False,
            echo=False,
            progress=False,
            metric="eval_accuracy",
        )
    finally:
        ray.shutdown()
    assert sorted(runs["flag_lr"]) == [0.1, 0.2]
    assert list(runs["status"]) == ["completed"] * 2
    assert {r["id"] for r in listed(s3)} == set(runs["id"])


def test_an_in_process_run_into_a_store(s3: S3, tmp_path: Path, monkeypatch) -> None:
    from trainrun.runs.active import log_metrics, write_evaluation
    from trainrun.runs.launch._inprocess import start_run

    monkeypatch.chdir(tmp_path)
    with start_run(flags={"lr": 0.5}, runs_dir=s3.url, capture_output=False, artifacts=False):
        log_metrics(step=0, loss=0.5)
        write_evaluation(accuracy=0.7)
    (row,) = listed(s3)
    assert row["status"] == "completed" and row["flag_lr"] == 0.5
    assert row["eval_accuracy"] == 0.7 and row["metric_loss"] == 0.5


def test_a_final_push_refused_for_good_leaves_the_run_marked_not_raised(
    s3: S3, tmp_path: Path, write_run
) -> None:
    from trainrun.runs.store._sync import RunSync

    folder = write_run(tmp_path / "staging", "r1")
    sync = RunSync(folder, "s3://no-such-bucket/team")  # the bucket went away mid-run
    assert sync.stop(timeout=30) is False
    assert "does not exist" in (sync.error or "")
    assert (tmp_path / "staging" / ".trainrun" / "unpushed" / "r1").exists()


def test_a_plain_script_recording_itself_into_a_store(s3: S3, script: Path, tmp_path: Path) -> None:
    env = s3.child_env()
    env.update(
        TRAINRUN_RECORD="1", TRAINRUN_RUNS_DIR=s3.url, TRAINRUN_CACHE_DIR=str(tmp_path / "m")
    )
    proc = subprocess.run(
        [sys.executable, str(script), "--lr", "0.2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = listed(s3)
    assert row["status"] == "completed" and row["flag_lr"] == 0.2
    assert row["eval_accuracy"] == pytest.approx(0.7)
