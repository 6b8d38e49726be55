"""Change markers are kept for a stated horizon, then deleted; a machine whose cache is older
than the horizon starts again (every row) instead of trusting markers that are gone."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from tests.runs.store.s3server import S3
from tests.runs.store.test_remote_listing import push, t

from trainrun.runs.store import _remote_index, ls_runs
from trainrun.runs.store._objectstore import CHANGES, INDEX, ObjectStore, change_key

pytestmark = pytest.mark.slow


@pytest.fixture
def short_horizon(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(_remote_index, "WINDOW_S", 0.25)
    monkeypatch.setattr(_remote_index, "SNAPSHOT_CHECK_S", 0.0)  # look at every listing
    monkeypatch.setenv("TRAINRUN_CHANGES_HORIZON", "2")
    return _remote_index.changes_horizon()


def markers(s3: S3) -> list[str]:
    return [k.rsplit("-", 1)[-1] for k in s3.keys(f"team/{CHANGES}")]


def test_old_markers_are_deleted_and_recent_ones_kept(
    s3: S3, tmp_path: Path, write_run, short_horizon: float, wait_until
) -> None:
    assert short_horizon == 2.0
    day_ago = time.time_ns() - 86400 * 10**9  # a marker of a machine long gone
    ObjectStore(s3.url).put(change_key("old", day_ago), b"")
    push(s3, write_run(tmp_path / "a", "r1", start=t(1)))
    assert ls_runs(s3.url)["id"].tolist() == ["r1"]
    assert "old" not in markers(s3) and "r1" in markers(s3)  # compacted at once; r1's kept
    # r1's markers age past the horizon: the next listings delete them, and keep r2's
    wait_until(lambda: ls_runs(s3.url) is not None and not markers(s3), timeout=30)
    push(s3, write_run(tmp_path / "a", "r2", start=t(2)))
    assert ls_runs(s3.url)["id"].tolist() == ["r2", "r1"]
    assert set(markers(s3)) == {"r2"}


def test_a_cache_older_than_the_horizon_lists_every_row_again(
    s3: S3,
    tmp_path: Path,
    write_run,
    short_horizon: float,
    monkeypatch: pytest.MonkeyPatch,
    wait_until,
) -> None:
    push(s3, write_run(tmp_path / "a", "r1", start=t(1)))
    push(s3, write_run(tmp_path / "a", "r2", start=t(2)))
    here = str(tmp_path / "cache")
    machine_b = str(tmp_path / "machine-b")
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", machine_b)
    assert ls_runs(s3.url)["id"].tolist() == ["r2", "r1"]  # machine B lists once, then sleeps
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", here)
    ObjectStore(s3.url).delete(INDEX + "r1.json")  # gone behind the markers' back
    push(s3, write_run(tmp_path / "a", "r3", start=t(3)))
    # machine A lists on; r3's marker ages past the horizon and is deleted
    wait_until(lambda: ls_runs(s3.url) is not None and not markers(s3), timeout=30)
    # machine B wakes: r3's marker is gone, so an incremental refresh would never see r3;
    # its cache is older than the horizon, so it lists every row (and r1 is gone)
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", machine_b)
    assert ls_runs(s3.url)["id"].tolist() == ["r3", "r2"]


def test_a_snapshot_older_than_the_horizon_is_not_a_starting_point(
    s3: S3, tmp_path: Path, write_run, short_horizon: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(s3, write_run(tmp_path / "a", "r1", start=t(1)))
    old = time.time_ns() - 3600 * 10**9  # good to an hour ago: markers since may be gone
    row = {"id": "ghost", "status": "completed", "start": t(0), "extra": {}}
    body = "\n".join([json.dumps({"after": old, "written": old / 1e9}), json.dumps(row)])
    ObjectStore(s3.url).put(_remote_index.SNAPSHOT, gzip.compress(body.encode()))
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "new-machine"))
    assert ls_runs(s3.url)["id"].tolist() == ["r1"]  # every row listed, not the old snapshot
