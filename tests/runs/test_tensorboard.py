"""TensorBoard over a runs folder: HParams data in each run's own folder, and `trainrun board`.

The HTTP test starts the real TensorBoard (through `trainrun board`) on a loopback
port and reads runs, scalar tags, the HParams experiment and session groups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from trainrun.runs import record
from trainrun.runs.tensorboard import (
    HPARAMS_FILE_SUFFIX,
    find_run_dirs,
    link_runs,
    tensorboard_command,
    write_hparams,
    write_run_hparams,
)

# examples, servers and clusters: left out of `make test-fast`
pytestmark = pytest.mark.slow


def make_run(runs_dir: Path, name: str, flags: dict, status: str, evaluation: dict) -> Path:
    run_dir = record.new_run_dir(runs_dir)
    run_dir = run_dir.rename(runs_dir / name)
    now = record.utc_now()
    record.write_json(
        run_dir / record.RUN_FILE,
        {"id": name, "script": "train.py", "status": status, "start": now, "end": now},
    )
    record.write_json(
        run_dir / record.FLAGS_FILE,
        {
            "values": flags,
            "declared": {"activation": {"type": "string", "choices": ["relu", "tanh"]}},
        },
    )
    record.append_jsonl(
        run_dir / record.METRICS_FILE,
        [{"step": s, "time": time.time(), "loss": 1.0 / (s + 1)} for s in range(4)],
    )
    record.write_json(run_dir / record.EVALUATION_FILE, evaluation)
    return run_dir


def read_events(path: Path) -> list:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return list(EventFileLoader(str(path)).Load())


def test_hparams_file_in_the_runs_own_folder_and_idempotent(tmp_path):
    runs = tmp_path / "runs"
    a = make_run(runs, "a", {"dropout": 0.2, "activation": "relu"}, "completed", {"auc": 0.8})
    b = make_run(runs, "b", {"dropout": 0.1, "layers": [3, 2]}, "failed", {"accuracy": 0.7})
    (runs / ".archive").mkdir()  # hidden folders are not runs
    assert find_run_dirs(runs) == [a, b]
    covered = write_hparams(runs)
    assert [p.name for p in covered] == ["a", "b"]
    files = sorted((a / "tensorboard").glob(f"*{HPARAMS_FILE_SUFFIX}"))
    assert len(files) == 1 and files[0].parent == a / "tensorboard"  # not a sub-run
    events = read_events(files[0])
    tags = [v.tag for e in events if e.HasField("summary") for v in e.summary.value]
    assert "_hparams_/experiment" in tags and "_hparams_/session_start_info" in tags
    assert "_hparams_/session_end_info" in tags
    assert "eval/auc" in tags and tags.count("metrics/loss") == 4

    from tensorboard.plugins.hparams import metadata

    by_tag = {v.tag: v for e in events if e.HasField("summary") for v in e.summary.value}
    content = by_tag["_hparams_/experiment"].metadata.plugin_data.content
    experiment = metadata.parse_experiment_plugin_data(content)
    # the config of the whole folder: flags of both runs, metrics of both runs
    assert [h.name for h in experiment.hparam_infos] == ["activation", "dropout", "layers"]
    assert list(experiment.hparam_infos[0].domain_discrete) == ["relu", "tanh"]
    assert {m.name.tag for m in experiment.metric_infos} == {
        "eval/accuracy",
        "eval/auc",
        "metrics/loss",
    }
    start = metadata.parse_session_start_info_plugin_data(
        by_tag["_hparams_/session_start_info"].metadata.plugin_data.content
    )
    assert start.group_name == "a" and start.hparams["dropout"].number_value == 0.2

    # idempotent: the file is not rewritten. Its times are set an hour back first, so that
    # a rewrite shows whatever the file system's timestamp granularity
    before = files[0].stat()
    an_hour_ago = before.st_mtime_ns - 3600 * 10**9
    os.utime(files[0], ns=(an_hour_ago, an_hour_ago))
    data = files[0].read_bytes()
    write_hparams(runs)
    after = files[0].stat()
    assert files[0].read_bytes() == data
    assert (after.st_mtime_ns, after.st_ino) == (an_hour_ago, before.st_ino)
    # a single run on its own is fine too, and a non-run is a clear error
    assert write_run_hparams(b).parent == b / "tensorboard"
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        write_run_hparams(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_hparams(tmp_path / "nope")


def test_values_the_script_wrote_are_not_copied(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    runs = tmp_path / "runs"
    a = make_run(runs, "a", {"x": 1}, "completed", {"auc": 0.8, "accuracy": 0.75})
    writer = SummaryWriter(str(a / "tensorboard"))  # as an estimator does inside a run
    writer.add_scalar("eval/auc", 0.8, 3)
    writer.add_scalar("loss", 0.5, 3)
    writer.close()
    write_hparams(runs)
    (ours,) = (a / "tensorboard").glob(f"*{HPARAMS_FILE_SUFFIX}")
    events = read_events(ours)
    tags = [v.tag for e in events if e.HasField("summary") for v in e.summary.value]
    assert "eval/auc" not in tags and "metrics/loss" not in tags
    assert "eval/accuracy" in tags  # not written by the script: ours
    from tensorboard.plugins.hparams import metadata

    (content,) = [
        v.metadata.plugin_data.content
        for e in events
        for v in e.summary.value
        if v.tag == "_hparams_/experiment"
    ]
    metrics = {m.name.tag for m in metadata.parse_experiment_plugin_data(content).metric_infos}
    assert metrics == {"eval/auc", "eval/accuracy", "loss"}


def test_tensorboard_command_binds_loopback_and_names_runs(tmp_path):
    runs = tmp_path / "runs"
    a = make_run(runs, "a", {"x": 1}, "completed", {})
    cmd = tensorboard_command(runs, port=7001)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--logdir_spec") + 1] == f"a:{(a / 'tensorboard').resolve()}"
    link_runs([a], tmp_path / "links")
    assert (tmp_path / "links" / "a").resolve() == (a / "tensorboard").resolve()
    with pytest.raises(ValueError, match="port=70000"):
        tensorboard_command(runs, port=70000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_board_serves_scalars_and_hparams_over_http(tmp_path, wait_until):
    def answer(fn):
        # TensorBoard takes a while to start and to read the folder
        return wait_until(
            fn, 120, 0.5, ignoring=(urllib.error.URLError, OSError), message="TensorBoard"
        )

    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    runs = tmp_path / "runs"
    a = make_run(runs, "run-a", {"dropout": 0.2, "activation": "relu"}, "completed", {"auc": 0.8})
    make_run(runs, "run-b", {"dropout": 0.1, "activation": "tanh"}, "failed", {"auc": 0.7})
    # the script's own scalars, in the same folder as the HParams data
    writer = torch_tb.SummaryWriter(str(a / "tensorboard"))
    writer.add_scalar("loss", 0.5, 1)
    writer.close()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "board", str(runs), "--port", str(port)]
        + ["--reload-interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        answer(lambda: set(_get(f"{base}/data/runs")) >= {"run-a", "run-b"})
        tags = answer(lambda: _get(f"{base}/data/plugin/scalars/tags").get("run-a"))
        # the script's own "loss" is not copied again as metrics/loss
        assert {"loss", "eval/auc"} <= set(tags) and "metrics/loss" not in tags

        experiment = _get(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        assert {h["name"] for h in experiment["hparamInfos"]} == {"activation", "dropout"}
        assert {"eval/auc", "loss", "metrics/loss"} <= {
            m["name"]["tag"] for m in experiment["metricInfos"]
        }

        request = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        }
        groups = _get(f"{base}/data/plugin/hparams/session_groups", request)["sessionGroups"]
        by_name = {g["name"]: g for g in groups}
        assert by_name["run-a"]["hparams"] == {"dropout": 0.2, "activation": "relu"}
        assert by_name["run-a"]["sessions"][0]["status"] == "STATUS_SUCCESS"
        assert by_name["run-b"]["sessions"][0]["status"] == "STATUS_FAILURE"
        auc = {m["name"]["tag"]: m["value"] for m in by_name["run-b"]["metricValues"]}
        assert auc["eval/auc"] == pytest.approx(0.7)

        # a run that appears while the board is up is picked up
        make_run(runs, "run-c", {"dropout": 0.3, "activation": "relu"}, "completed", {"auc": 0.9})
        answer(lambda: "run-c" in _get(f"{base}/data/runs"))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "TensorBoard at http://127.0.0.1:" in out
    assert proc.returncode == 130, out  # the CLI's code for Ctrl-C


def test_board_missing_runs_folder_exits_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "trainrun", "board", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_hparams_are_never_written_through_a_link(tmp_path, capsys):
    runs = tmp_path / "runs"
    outside = tmp_path / "outside"
    outside.mkdir()
    good = make_run(runs, "a", {"lr": 0.1}, "completed", {"accuracy": 0.5})
    linked = make_run(runs, "b", {"lr": 0.2}, "completed", {"accuracy": 0.6})
    shutil.rmtree(linked / record.TENSORBOARD_DIR)
    (linked / record.TENSORBOARD_DIR).symlink_to(outside, target_is_directory=True)
    dangling = make_run(runs, "c", {"lr": 0.3}, "completed", {"accuracy": 0.7})
    shutil.rmtree(dangling / record.TENSORBOARD_DIR)
    (dangling / record.TENSORBOARD_DIR).symlink_to(tmp_path / "nowhere")
    assert write_hparams(runs) == [good]
    assert list(outside.iterdir()) == [] and not (tmp_path / "nowhere").exists()
    assert "skipping b" in capsys.readouterr().err
    logdir = tmp_path / "logdir"
    link_runs([good, linked], logdir)
    assert [p.name for p in logdir.iterdir()] == ["a"]  # TensorBoard is not pointed outside


def test_hparams_file_sorts_before_the_runs_own_event_files(tmp_path):
    # TensorBoard reads a folder's event files in name order and does not go back: an event
    # file the run made in its start second, on a host whose name sorts before ours, must
    # still come after the HParams file
    runs = tmp_path / "runs"
    a = make_run(runs, "a", {"x": 1}, "completed", {"auc": 0.8})
    iso = record.read_run(a)["start"].replace("Z", "+00:00")
    start = int(datetime.fromisoformat(iso).timestamp())
    own = a / "tensorboard" / f"events.out.tfevents.{start:010d}.aaa-host.1.0"
    own.parent.mkdir(exist_ok=True)
    own.write_bytes(b"")
    stale = a / "tensorboard" / f"events.out.tfevents.{start:010d}{HPARAMS_FILE_SUFFIX}"
    stale.write_bytes(b"")  # the name an earlier version gave it
    write_hparams(runs)
    names = sorted(p.name for p in (a / "tensorboard").iterdir())
    assert len([n for n in names if n.endswith(HPARAMS_FILE_SUFFIX)]) == 1
    assert names[0].endswith(HPARAMS_FILE_SUFFIX) and names[1] == own.name
