"""The wheel, installed with no extras into a fresh environment, is the whole runs half.

Builds the wheel from a copy of the sources, installs it into a new virtual
environment (its dependencies from the package index), and there runs a
training run, ``trainrun ls``, a report page and the dashboard, and checks
that every feature of a missing extra names the extra. About 30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
#: the issue's target for a runs-only environment
MAX_ENV_MB = 250
#: what the runs half must not pull in
HEAVY = ("torch", "tensorboard", "matplotlib", "pyarrow", "safetensors", "keras", "lightning")


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pytest.importorskip("build")
    root = tmp_path_factory.mktemp("wheel")
    project = root / "project"
    shutil.copytree(
        ROOT / "src" / "trainrun",
        project / "src" / "trainrun",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(root / "dist"),
            str(project),
        ]
    )
    (wheel,) = (root / "dist").glob("trainrun-*.whl")
    venv = root / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)])
    work = root / "work"
    work.mkdir()
    return {"python": python, "trainrun": venv / "bin" / "trainrun", "venv": venv, "work": work}


def _size_mb(folder: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(dirpath, f)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total / 1e6


def test_no_extras_is_the_runs_half_only_and_small(env):
    code = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    out = _run([str(env["python"]), "-c", code, *HEAVY])
    assert out.stdout.strip() == "[]"
    size = _size_mb(env["venv"])
    print(f"runs-half environment: {size:.0f} MB")
    assert size < MAX_ENV_MB


def test_a_run_ls_a_report_and_the_dashboard_work_there(env):
    work = env["work"]
    (work / "train.py").write_text(
        "import trainrun as tr\n"
        "FLAGS = tr.flags(lr=0.1, layers=2)\n"
        "for step in range(5):\n"
        "    tr.log_metrics(step=step, loss=1.0 / (step + 1) + FLAGS.lr)\n"
        "tr.write_evaluation(accuracy=0.9 - FLAGS.lr)\n"
    )
    trainrun = str(env["trainrun"])
    _run([trainrun, "run", "train.py", "--flag", "lr=0.2"], cwd=work)
    listed = _run([trainrun, "ls", "--format", "json"], cwd=work).stdout
    (row,) = json.loads(listed)
    assert row["status"] == "completed" and row["flag_lr"] == 0.2
    assert row["eval_accuracy"] == pytest.approx(0.7)

    _run([trainrun, "view", "--no-open", "-o", "report.html"], cwd=work)
    page = (work / "report.html").read_text()
    assert row["id"] in page and "flag" in page.lower()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = work / "ui.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [trainrun, "ui", "--port", str(port)], cwd=work, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=2) as r:
                    answer = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert answer is not None, log.read_text()
        assert [r["id"] for r in answer["runs"]] == [row["id"]]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{row['id']}", timeout=5) as r:
            assert r.status == 200 and row["id"] in r.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    ("statement", "extra"),
    [
        ("import trainrun.estimators", "estimators"),
        ("import trainrun as tr; tr.DNNClassifier", "estimators"),
        ("import trainrun.keras", "keras"),
        ("import trainrun.lightning", "lightning"),
        ("import trainrun.sklearn", "sklearn"),
    ],
)
def test_each_missing_extra_is_named(env, statement, extra):
    code = f"try:\n    {statement}\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    out = _run([str(env["python"]), "-c", code])
    assert out.stdout.startswith("MissingExtraError"), out.stdout
    assert f"pip install 'trainrun[{extra}]'" in out.stdout


def test_trainrun_board_names_the_board_extra(env):
    (env["work"] / "runs").mkdir(exist_ok=True)
    out = subprocess.run(
        [str(env["trainrun"]), "board"], cwd=env["work"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "pip install 'trainrun[board]'" in out.stderr and "Traceback" not in out.stderr
