"""Importing R tfruns run folders (tfruns.d), as tfruns writes them, safely."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import trainrun as tr
from trainrun.exceptions import RunRecordError
from trainrun.runs import record
from trainrun.runs.tfruns_import import import_tfruns


def _tfruns_run(root: Path, name: str, *, completed: bool, error: bool = False) -> Path:
    """A run folder as tfruns 1.5 writes it (jsonlite output, one file per property)."""
    run = root / name
    meta = run / "tfruns.d"
    (meta / "properties").mkdir(parents=True)
    (meta / "flags.json").write_text(json.dumps({"dropout": [0.4], "units": 128}))
    (meta / "evaluation.json").write_text(json.dumps({"loss": 0.31, "acc": [0.91]}))
    metrics = {"loss": [0.9, 0.5, 0.3], "acc": [0.6, 0.8, "NA"], "epoch": [1, 2, 3]}
    (meta / "metrics.json").write_text(json.dumps(metrics))
    props = {
        "script": "train.R",
        "start": "1507843838.123",
        "end": "1507843900.5",
        "completed": "TRUE" if completed else "FALSE",
        "model": "Model: sequential",
        "optimizer": "RMSprop",
        "learning_rate": "0.001",
        "batch_size": "128",
        "output": "Epoch 1/3\nloss: 0.9\n",
    }
    for key, value in props.items():
        (meta / "properties" / key).write_text(value + "\n")
    if error:
        (meta / "error.json").write_text(
            json.dumps({"message": "object 'x' not found", "traceback": ["f()", "g()"]})
        )
    with tarfile.open(meta / "source.tar.gz", "w:gz") as tar:
        for member, data in (("train.R", b"library(keras)\n"), ("../escape.R", b"evil")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("shadow")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        tar.addfile(link)
    (run / "plots").mkdir()
    (run / "plots" / "Rplot001.png").write_bytes(b"\x89PNG fake")
    (run / "model.h5").write_bytes(b"weights")
    os.symlink("/etc/hostname", run / "outside")
    return run


def test_import_tfruns_brings_flags_metrics_properties_output_source(tmp_path):
    src = tmp_path / "tfruns-project" / "runs"
    _tfruns_run(src, "2017-10-12T21-30-38Z", completed=True)
    _tfruns_run(src, "2017-10-12T21-40-00Z", completed=False, error=True)
    runs = tmp_path / "runs"
    assert import_tfruns(src, runs) == ["2017-10-12T21-30-38Z", "2017-10-12T21-40-00Z"]
    good = record.read_run(runs / "2017-10-12T21-30-38Z")
    assert good["status"] == "completed" and good["script"] == "train.R"
    assert good["flags"] == {"dropout": 0.4, "units": 128}
    assert good["evaluation"] == {"loss": 0.31, "acc": 0.91}
    assert good["metrics"] == {"loss": 0.3, "acc": 0.8}
    assert good["start"].startswith("2017-10-12T21:30:38.123") and good["duration"] == 62.377
    assert good["properties"]["optimizer"] == "RMSprop"
    assert good["properties"]["learning_rate"] == 0.001
    assert good["tags"]["imported_from"] == "tfruns"
    folder = runs / "2017-10-12T21-30-38Z"
    assert (folder / "output.log").read_text().startswith("Epoch 1/3")
    assert (folder / "source" / "train.R").read_text() == "library(keras)\n"
    assert not (folder / "source" / "shadow").exists() and not (tmp_path / "escape.R").exists()
    assert (folder / "plots" / "Rplot001.png").is_file()
    assert (folder / "artifacts" / "model.h5").read_bytes() == b"weights"
    assert not (folder / "artifacts" / "outside").exists()
    bad = record.read_run(runs / "2017-10-12T21-40-00Z")
    assert bad["status"] == "failed" and bad["error"] == "object 'x' not found"
    assert bad["traceback"] == "f()\ng()"
    df = tr.ls_runs(runs, order="eval_acc")
    assert list(df["prop_optimizer"]) == ["RMSprop", "RMSprop"]
    assert len(tr.ls_runs(runs, filter="completed")) == 1
    assert import_tfruns(src, runs) == []  # again: nothing new


def test_import_tfruns_command_and_a_folder_without_runs(tmp_path):
    src = tmp_path / "old"
    _tfruns_run(src, "2018-01-01T00-00-00Z", completed=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINRUN_")}
    proc = subprocess.run(
        [sys.executable, "-m", "trainrun", "import-tfruns", str(src / "2018-01-01T00-00-00Z"),
         "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2018-01-01T00-00-00Z"
    with pytest.raises(RunRecordError, match="holds no tfruns run"):
        import_tfruns(tmp_path / "runs", tmp_path / "other")


def test_links_and_fifos_in_a_tfruns_folder_are_never_read(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    run = _tfruns_run(tmp_path / "src", "2019-01-01T00-00-00Z", completed=True)
    meta = run / "tfruns.d"
    (meta / "evaluation.json").unlink()
    os.symlink(secret, meta / "evaluation.json")
    os.symlink(secret, meta / "properties" / "leak")
    os.mkfifo(meta / "properties" / "pipe")
    os.mkfifo(run / "fifo.bin")
    import_tfruns(tmp_path / "src", tmp_path / "runs")
    got = record.read_run(tmp_path / "runs" / "2019-01-01T00-00-00Z")
    assert got["evaluation"] == {} and "leak" not in got["properties"]
    assert "pipe" not in got["properties"]
    assert "hunter2" not in json.dumps(got)
    assert any(s.startswith("fifo.bin") for s in got["import_skipped"])
