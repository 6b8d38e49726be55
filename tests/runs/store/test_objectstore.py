"""The S3 seam against a real S3-compatible server on 127.0.0.1 (moto's server mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.runs.store.s3server import S3, auth_server, free_port

from trainrun.runs.store._objectstore import (
    ObjectStore,
    StoreError,
    StoreUnavailableError,
    StoreURL,
    change_key,
    is_remote,
    parse_url,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://team-runs", StoreURL("team-runs", "")),
        ("s3://team-runs/", StoreURL("team-runs", "")),
        ("s3://team-runs/churn//v2/", StoreURL("team-runs", "churn/v2")),
    ],
)
def test_urls_name_a_bucket_and_a_prefix(url: str, expected: StoreURL) -> None:
    assert parse_url(url) == expected
    assert is_remote(url) and not is_remote(Path(url)) and not is_remote("runs")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://A_b/x", "3 to 63 lowercase"),
        ("s3://team-runs/../other", "cannot hold '.', '..'"),
        ("s3://team-runs/.trainrun", "hidden names"),
        ("gs://team-runs", "s3://bucket/prefix"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        parse_url(url)


def test_put_get_list_since_and_delete(s3: S3) -> None:
    store = ObjectStore(s3.url)
    store.check()
    store.put("r1/run.json", b"{}")
    store.put("r1/metrics.jsonl", b"1\n")
    assert store.get("r1/run.json") == b"{}"
    assert store.get("r1/nothing") is None
    assert [e.key for e in store.list("r1/")] == ["r1/metrics.jsonl", "r1/run.json"]
    # the keys live under the URL's prefix in the bucket
    assert sorted(s3.keys()) == ["team/r1/metrics.jsonl", "team/r1/run.json"]
    # list-since: only the markers after a key
    first, second = change_key("r1", 1000), change_key("r2", 2000)
    store.put(first, b"")
    store.put(second, b"")
    assert [e.key for e in store.list(".trainrun/changes/", after=first)] == [second]
    store.delete("r1/run.json")
    store.delete("r1/run.json")  # deleting what is gone is fine
    assert store.get("r1/run.json") is None


def test_create_if_absent_is_won_once(s3: S3) -> None:
    store = ObjectStore(s3.url)
    assert store.create(".trainrun/ids/r1", b"a") is True
    assert store.create(".trainrun/ids/r1", b"b") is False
    assert store.get(".trainrun/ids/r1") == b"a"


def test_several_processes_claiming_ids_at_once_never_share_one(s3: S3) -> None:
    code = (
        "import sys\n"
        "from trainrun.runs.store._objectstore import ObjectStore\n"
        "store = ObjectStore(sys.argv[1])\n"
        "won = [n for n in range(20) if store.create(f'.trainrun/ids/id{n}', sys.argv[2].encode())]\n"
        "print(' '.join(map(str, won)))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, s3.url, f"w{i}"],
            env=s3.child_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    won = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    every = [n for w in won for n in w]
    assert sorted(every, key=int) == [str(n) for n in range(20)]  # each id won exactly once


def test_missing_credentials_name_the_variables(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="set AWS_SECRET_ACCESS_KEY") as err:
        ObjectStore(s3.url)
    assert "AWS_ACCESS_KEY_ID" not in str(err.value).split("set ")[1].split(" (")[0]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(StoreError, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        ObjectStore(s3.url)


def test_credentials_from_the_aws_files(
    s3: S3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_PROFILE", "team")
    ObjectStore(s3.url).check()


def test_wrong_credentials_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: S3
) -> None:
    proc, endpoint = auth_server(tmp_path)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
        with pytest.raises(StoreError, match="refused the credentials.*AWS_ACCESS_KEY_ID"):
            ObjectStore("s3://some-bucket/team").check()
    finally:
        proc.kill()
        proc.wait()


def test_a_bucket_that_does_not_exist(s3: S3) -> None:
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist.*create it"):
        ObjectStore("s3://no-such-bucket/team").check()


def test_no_server_is_unavailable_not_a_hang(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreUnavailableError, match="did not answer.*AWS_ENDPOINT_URL"):
        ObjectStore(s3.url, timeout_s=2).check()
