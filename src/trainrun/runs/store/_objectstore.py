"""The object-store seam: a runs folder at ``s3://bucket/prefix`` on any S3-compatible service.

One small class, :class:`ObjectStore`, over `obstore <https://developmentseed.org/obstore/>`_
(the ``[s3]`` extra). obstore was chosen over fsspec/s3fs by measured latency
against a local S3 server (moto, on this machine; docs/shared-store.md): a small
put 2.4 ms vs 7.1 ms, a get 1.9 ms vs 19.9 ms, listing 200 keys 157 ms vs 375 ms;
and it does conditional writes (``If-None-Match: *``), which run ids rely on.

Layout under the prefix, mirroring a local runs folder::

    s3://bucket/prefix/<run id>/run.json ...    a run folder's files, as on disk
    s3://bucket/prefix/.trainrun/ids/<run id>   who claimed the id (create-if-absent)
    s3://bucket/prefix/.trainrun/index/<run id>.json   the run's listing row + heartbeat
    s3://bucket/prefix/.trainrun/changes/<ns>-<run id> one empty object per row written,
                                                named by time: "what changed since" is a listing
                                                (kept a day: _remote_index.changes_horizon)

Endpoint, region and credentials come from the usual AWS settings: the
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN`` variables, else the profile ``AWS_PROFILE`` (or
``default``) of ``~/.aws/credentials`` and ``~/.aws/config``.

>>> parse_url("s3://team-runs/churn/")
StoreURL(bucket='team-runs', prefix='churn')
"""

from __future__ import annotations

import configparser
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, NamedTuple

from trainrun.exceptions import MissingExtraError, TrainrunError

__all__ = [
    "ObjectStore",
    "StoreError",
    "StoreUnavailableError",
    "StoreURL",
    "is_remote",
    "parse_url",
]

META = ".trainrun"
IDS = f"{META}/ids/"
INDEX = f"{META}/index/"
CHANGES = f"{META}/changes/"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class StoreError(TrainrunError, OSError):
    """The shared run store cannot be used: bad URL, credentials, missing bucket."""


class StoreUnavailableError(StoreError):
    """The store's server does not answer (yet): worth retrying later."""


class StoreURL(NamedTuple):
    bucket: str
    prefix: str  # no leading or trailing "/"; "" for the bucket's root

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def is_remote(runs_dir: Any) -> bool:
    """True for an ``s3://`` runs folder (a string; a Path is always local)."""
    return isinstance(runs_dir, str) and runs_dir.startswith("s3://")


def parse_url(url: str) -> StoreURL:
    """``s3://bucket/prefix`` as (bucket, prefix); StoreError saying what is wrong."""
    if not is_remote(url):
        raise StoreError(f"A shared run store is named s3://bucket/prefix. Received: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise StoreError(
            "The bucket name in a run store URL is 3 to 63 lowercase letters, digits, dots "
            f"and hyphens (s3://my-team-runs/project). Received: {url!r}"
        )
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") for p in parts):
        raise StoreError(
            f"The prefix of a run store URL cannot hold '.', '..' or hidden names. Received: {url!r}"
        )
    return StoreURL(bucket, "/".join(parts))


def _aws_files(profile: str) -> dict[str, str]:
    """The profile's settings from ~/.aws/credentials and ~/.aws/config (lower-case keys)."""
    out: dict[str, str] = {}
    home = os.path.expanduser("~")
    files = [
        (os.environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config"), True),
        (
            os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
            or os.path.join(home, ".aws", "credentials"),
            False,
        ),
    ]
    for path, is_config in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
        section = f"profile {profile}" if is_config and profile != "default" else profile
        if parser.has_section(section):
            out.update({k.lower(): v for k, v in parser.items(section)})
    return out


def settings() -> dict[str, str]:
    """Endpoint, region and credentials from the environment, then the AWS files."""
    env = os.environ
    files = _aws_files(env.get("AWS_PROFILE") or "default")
    pick = {
        "endpoint": env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or files.get("endpoint_url"),
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or files.get("region"),
        "access_key_id": env.get("AWS_ACCESS_KEY_ID") or files.get("aws_access_key_id"),
        "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or files.get("aws_secret_access_key"),
        "session_token": env.get("AWS_SESSION_TOKEN") or files.get("aws_session_token"),
    }
    return {k: v for k, v in pick.items() if v}


class Entry(NamedTuple):
    key: str  # relative to the store's prefix
    size: int
    modified: float  # the server's time, seconds since the epoch


class ObjectStore:
    """A run store at ``s3://bucket/prefix``: keys below are relative to the prefix.

    >>> store = ObjectStore("s3://team-runs/churn")   # doctest: +SKIP
    >>> store.create(".trainrun/ids/2026-11-27T10-15-42Z", b"host")   # doctest: +SKIP
    True
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = parse_url(url)
        try:
            import obstore
            from obstore.store import S3Store
        except ImportError as exc:  # pragma: no cover - the s3 extra is in dev
            raise MissingExtraError("obstore", "s3", f"A run store at {url}") from exc
        self._ob = obstore
        conf = settings()
        if "access_key_id" not in conf or "secret_access_key" not in conf:
            missing = [
                name
                for name, key in (
                    ("AWS_ACCESS_KEY_ID", "access_key_id"),
                    ("AWS_SECRET_ACCESS_KEY", "secret_access_key"),
                )
                if key not in conf
            ]
            raise StoreError(
                f"No credentials for the run store {self.url}: set {' and '.join(missing)} "
                "(or AWS_PROFILE naming a profile of ~/.aws/credentials)."
            )
        self.endpoint = conf.get("endpoint") or "https://s3.amazonaws.com"
        options: dict[str, Any] = {
            "timeout": timedelta(seconds=timeout_s),
            "connect_timeout": timedelta(seconds=min(timeout_s, 3.0)),
        }
        if self.endpoint.startswith("http://"):
            options["allow_http"] = True
        self._store = S3Store(
            self.url.bucket,
            prefix=self.url.prefix or None,
            config={
                "region": conf.get("region", "us-east-1"),
                "access_key_id": conf["access_key_id"],
                "secret_access_key": conf["secret_access_key"],
                **({"session_token": conf["session_token"]} if "session_token" in conf else {}),
                **({"endpoint": conf["endpoint"]} if "endpoint" in conf else {}),
                # path-style requests: what MinIO, SeaweedFS, moto and most local servers want
                "virtual_hosted_style_request": False,
            },
            client_options=options,  # type: ignore[arg-type]  # a ClientConfig TypedDict
            # a short retry: the callers (the sync) retry on their own schedule
            retry_config={
                "max_retries": 2,
                "retry_timeout": timedelta(seconds=timeout_s),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=1),
                    "base": 2,
                },
            },
        )

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.url)!r}, endpoint={self.endpoint!r})"

    # ---------------------------------------------------------------- errors

    def _error(self, exc: BaseException, what: str) -> StoreError:
        """The client's error as a StoreError that names the setting to fix."""
        e = self._ob.exceptions
        text = str(exc)
        where = f"{self.url} at {self.endpoint}"
        if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
            return StoreError(
                f"The bucket {self.url.bucket!r} does not exist at {self.endpoint}: create it "
                f"(aws s3 mb s3://{self.url.bucket}) or fix the URL / AWS_ENDPOINT_URL."
            )
        if isinstance(exc, (e.UnauthenticatedError, e.PermissionDeniedError)) or any(
            s in text
            for s in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")
        ):
            return StoreError(
                f"The run store {where} refused the credentials while trying to {what}: check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE in use), and "
                f"that they may read and write s3://{self.url.bucket}. ({text.splitlines()[0][:200]})"
            )
        return StoreUnavailableError(
            f"The run store {where} did not answer while trying to {what}: is the server up and "
            f"AWS_ENDPOINT_URL right? ({text.splitlines()[0][:200] if text else type(exc).__name__})"
        )

    # ---------------------------------------------------------------- operations

    def check(self) -> None:
        """One cheap request: StoreError when the bucket, credentials or server are wrong."""
        try:
            next(iter(self._ob.list(self._store, f"{META}/", chunk_size=1)), None)
        except Exception as exc:
            raise self._error(exc, "list it") from exc

    def put(self, key: str, data: bytes) -> None:
        try:
            self._ob.put(self._store, key, data)
        except Exception as exc:
            raise self._error(exc, f"write {key}") from exc

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Upload a local file (large ones in parts, streamed: never whole in memory)."""
        from pathlib import Path

        try:
            self._ob.put(self._store, key, Path(path))
        except Exception as exc:
            raise self._error(exc, f"write {key}") from exc

    def create(self, key: str, data: bytes) -> bool:
        """Write ``key`` only if it does not exist (a conditional write); False if it did."""
        try:
            self._ob.put(self._store, key, data, mode="create")
        except self._ob.exceptions.AlreadyExistsError:
            return False
        except self._ob.exceptions.PreconditionError:
            return False
        except Exception as exc:
            raise self._error(exc, f"create {key}") from exc
        return True

    def get(self, key: str) -> bytes | None:
        """The object's bytes; None when there is no such key."""
        try:
            return bytes(self._ob.get(self._store, key).bytes())
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._error(exc, f"read {key}") from exc
            return None
        except Exception as exc:
            raise self._error(exc, f"read {key}") from exc

    def delete(self, key: str) -> None:
        try:
            self._ob.delete(self._store, key)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise self._error(exc, f"delete {key}") from exc
        except Exception as exc:
            raise self._error(exc, f"delete {key}") from exc

    def delete_many(self, keys: list[str]) -> None:
        """Delete many keys, up to 1,000 per request (S3's DeleteObjects); absent keys are fine."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                self._ob.delete(self._store, batch)
            except FileNotFoundError as exc:
                if "NoSuchBucket" in str(exc):
                    raise self._error(exc, f"delete {batch[0]}...") from exc
            except Exception as exc:
                raise self._error(exc, f"delete {batch[0]}...") from exc

    def list(self, prefix: str, *, after: str | None = None) -> Iterator[Entry]:
        """Keys under ``prefix`` in key order, those after the key ``after`` only (list-since)."""
        try:
            stream = self._ob.list(self._store, prefix, offset=after, chunk_size=1000)
            for chunk in stream:
                for meta in chunk:
                    yield Entry(meta["path"], int(meta["size"]), meta["last_modified"].timestamp())
        except Exception as exc:
            raise self._error(exc, f"list {prefix}") from exc


def change_key(run_id: str, ns: int | None = None) -> str:
    """The change marker of a row written now: sorts by the writer's time."""
    return f"{CHANGES}{time.time_ns() if ns is None else ns:020d}-{run_id}"
