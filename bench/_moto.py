"""A local S3-compatible server (moto's) for the store benches; not a bench itself.

>>> with local_s3(tmp, TRAINRUN_CACHE_DIR=str(tmp / "a")):   # doctest: +SKIP
...     ...   # AWS_* variables point at http://127.0.0.1:<port>
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_s3(tmp: Path, **env: str) -> Iterator[None]:
    """moto's server on 127.0.0.1 for the block, the AWS environment pointed at it (no
    config or credentials files read), plus ``env``; warnings and moto's request log off."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
            **env,
        }
    )
    warnings.simplefilter("ignore")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    try:
        yield
    finally:
        server.stop()
