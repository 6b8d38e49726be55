"""What a launched run captures beyond its record: artifacts, figures, output scalars."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from trainrun.runs import record
from trainrun.runs.launch import _artifacts, training_run


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS", "TRAINRUN_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


WRITER = """\
import os
os.makedirs("out", exist_ok=True)
open("out/model.bin", "wb").write(b"w" * 100)
open("changed.csv", "w").write("new")
os.makedirs(".git", exist_ok=True)
open(".git/HEAD", "w").write("x")
os.makedirs("venv2", exist_ok=True)
open("venv2/pyvenv.cfg", "w").write("home = /usr")
open("big.bin", "wb").write(b"b" * 2000)
os.symlink("/etc/hostname", "link-out")
"""


def test_files_the_script_creates_or_changes_are_copied_into_artifacts(tmp_path, monkeypatch):
    monkeypatch.setattr(_artifacts, "MAX_FILE_BYTES", 1000)
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "changed.csv", "old")
    write(tmp_path, "untouched.csv", "same")
    script = write(tmp_path, "train.py", WRITER)
    run = training_run(script, runs_dir="runs", echo=False)
    art = Path(run["run_dir"]) / "artifacts"
    assert (art / "out" / "model.bin").read_bytes() == b"w" * 100
    assert (art / "changed.csv").read_text() == "new"
    assert not (art / "untouched.csv").exists() and not (art / "train.py").exists()
    assert not (art / ".git").exists() and not (art / "venv2").exists()
    assert not (art / "link-out").exists()  # never followed outside
    summary = run["artifacts"]
    assert summary["files"] == ["changed.csv", "out/model.bin"] and summary["bytes"] == 103
    assert any(s.startswith("big.bin (2,000 bytes: over") for s in summary["skipped"])
    assert "link-out (a symbolic link)" in summary["skipped"]
    assert not any("runs" in s for s in summary["skipped"])  # the runs folder is not looked at


def test_artifacts_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = write(tmp_path, "train.py", "open('x.txt', 'w').write('x')\n")
    run = training_run(script, runs_dir="runs", echo=False, artifacts=False)
    assert "artifacts" not in run and not any((Path(run["run_dir"]) / "artifacts").iterdir())
    monkeypatch.setenv("TRAINRUN_ARTIFACTS", "0")
    run = training_run(script, runs_dir="runs", echo=False)
    assert "artifacts" not in run


def test_figures_shown_or_left_open_land_in_plots(tmp_path):
    pytest.importorskip("matplotlib")
    script = write(
        tmp_path,
        "plots.py",
        """\
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.plot([1, 2, 3])
        plt.show()
        plt.close("all")
        plt.figure()
        plt.plot([3, 2, 1])
        """,
    )
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed", run["error"]
    plots = sorted(p.name for p in (Path(run["run_dir"]) / "plots").iterdir())
    assert plots == ["figure-1.png", "figure-1-2.png"] or plots == [
        "figure-1-2.png",
        "figure-1.png",
    ]
    assert all((Path(run["run_dir"]) / "plots" / p).stat().st_size > 1000 for p in plots)


def test_output_scalars_become_metrics_when_asked(tmp_path):
    script = write(
        tmp_path,
        "scalars.py",
        """\
        for epoch in range(3):
            print(f"epoch={epoch} loss={1 / (epoch + 1):.3f} acc={0.5 + epoch / 10}")
        print("val_loss: 0.25")
        print("not a scalar line: hello")
        """,
    )
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert record.read_metrics(run["run_dir"]) == []  # only when asked
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False, output_scalars=True)
    rows = record.read_metrics(run["run_dir"])
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[2]["loss"] == pytest.approx(0.333) and rows[3]["val_loss"] == 0.25
    assert run["metrics"]["acc"] == pytest.approx(0.7)
    custom = training_run(
        script, runs_dir=tmp_path / "runs", echo=False, output_scalars=r"acc=(?P<accuracy>\S+)"
    )
    assert record.read_run(custom["run_dir"])["metrics"] == {"accuracy": pytest.approx(0.7)}
    with pytest.raises(ValueError, match="named groups"):
        training_run(script, runs_dir=tmp_path / "runs", output_scalars=r"acc=\S+")
    assert os.path.isdir(tmp_path / "runs")


def test_the_source_snapshot_never_copies_a_link_out_of_the_project(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (proj / "notes.md").write_text("ok")
    os.symlink(secret, proj / "leak.txt")
    os.symlink(proj / "notes.md", proj / "alias.md")  # a link inside the project is fine
    script = write(proj, "train.py", "print('hi')\n")
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False, artifacts=False)
    source = Path(run["run_dir"]) / "source"
    assert (source / "notes.md").read_text() == "ok" and (source / "alias.md").exists()
    assert not (source / "leak.txt").exists()
    assert any(s.startswith("leak.txt (a link to a file outside") for s in run["source"]["skipped"])
