"""Every code snippet and shell command in README.md and docs/ runs as written.

A page's fenced blocks run in order, in one fresh project folder per page, the way a reader
would type them:

- a ```python block whose first line is a file comment (``# train.py``) is that file: it is
  written into the folder, not run;
- any other ```python block runs in one namespace shared by the page's python blocks;
- ```sh and ```console blocks run line by line in bash (``$ `` prompts are stripped; console
  lines without a prompt are output and are not run);
- ```text, ```yaml and plain blocks are output or data and are not run.

An HTML comment just before a block changes that: ``<!-- docs-test: skip (why) -->`` leaves it
out, with the reason shown; ``<!-- docs-test: file NAME -->`` writes it as the file NAME.
A page that holds ``<!-- docs-test: s3 BUCKET -->`` runs against a real S3-compatible server
(moto) started on 127.0.0.1 with BUCKET created, the AWS variables pointing at it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>[^>]*?)\s*-->\s*\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```\s*$",
    re.M | re.S,
)
FILE_COMMENT = re.compile(r"^#\s*([\w./-]+\.py)\s*$")
S3_BUCKET = re.compile(r"<!--\s*docs-test:\s*s3\s+([a-z0-9.-]+)\s*-->")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    body: str
    directive: str


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("body"))
        found.append(
            Block(page.name, line, m.group("lang"), m.group("body"), m.group("directive") or "")
        )
    return found


def test_every_skip_says_why():
    for page in PAGES:
        for block in blocks(page):
            if block.directive.startswith("skip"):
                assert re.match(r"skip \(.+\)$", block.directive), (
                    f"{block.page}:{block.line}: a skipped block must say why: "
                    "<!-- docs-test: skip (reason) -->"
                )


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""),
        TRAINRUN_NO_BROWSER="1",
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        HOME=str(project),
    )
    return env


def _run_shell(block: Block, project: Path) -> None:
    lines = block.body.splitlines()
    if block.lang == "console":
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    script = "set -euo pipefail\n" + "\n".join(lines)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (
        f"{block.page}:{block.line}: shell block failed ({result.returncode}):\n{block.body}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


def _local_s3(bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A moto S3 server on 127.0.0.1 holding ``bucket``, reached through the AWS variables."""
    import boto3
    from tests.runs.store.s3server import Server

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "TRAINRUN_CACHE_DIR": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    server = Server()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket=bucket)
    _servers.append(server)


_servers: list[object] = []


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    while _servers:
        _servers.pop().stop()  # type: ignore[attr-defined]


def _pages() -> list[object]:
    return [pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in PAGES]


@pytest.mark.parametrize("page", _pages())
def test_page_runs_as_written(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    # the examples the pages name are there, as in a checkout
    shutil.copytree(ROOT / "examples", project / "examples")
    for name, value in _env(project).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    bucket = S3_BUCKET.search(page.read_text(encoding="utf-8"))
    if bucket:
        _local_s3(bucket.group(1), tmp_path, monkeypatch)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        directive = block.directive
        if directive.startswith("skip"):
            continue
        if directive.startswith("file "):
            target = project / directive[5:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
            continue
        if block.lang == "python":
            first = block.body.splitlines()[0] if block.body.strip() else ""
            named = FILE_COMMENT.match(first)
            if named:
                (project / named.group(1)).parent.mkdir(parents=True, exist_ok=True)
                (project / named.group(1)).write_text(block.body, encoding="utf-8")
                continue
            code = compile(block.body, f"{block.page}:{block.line}", "exec")
            try:
                exec(code, namespace)
            except Exception as exc:
                raise AssertionError(
                    f"{block.page}:{block.line}: python block failed: {type(exc).__name__}: {exc}\n"
                    f"{block.body}"
                ) from exc
            ran += 1
        elif block.lang in ("sh", "bash", "console", "shell"):
            _run_shell(block, project)
            ran += 1
    if ran == 0:
        pytest.skip(f"{page.name} has no runnable block")
