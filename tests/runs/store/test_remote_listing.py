"""Listing, showing and fetching runs of a shared store through this machine's index cache."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from tests.runs.store.s3server import S3, free_port

from trainrun.exceptions import FilterError, RunNotFoundError
from trainrun.runs import record
from trainrun.runs.store import (
    _sync,
    clean_runs,
    copy_run,
    get_run_dir,
    latest_run,
    ls_runs,
    mirror_runs,
    purge_runs,
    restore_runs,
    run_info,
)
from trainrun.runs.store._objectstore import INDEX, ObjectStore
from trainrun.runs.store._sync import RunSync

pytestmark = pytest.mark.slow


def t(minute: int) -> str:
    return f"2026-11-27T10:{minute:02d}:00.000000Z"


def push(s3: S3, folder: Path) -> str:
    """A finished local run pushed as the launcher's sync does at the end; its id in the store."""
    sync = RunSync(folder, s3.url)
    sync.push(final=True)
    assert sync.run_id is not None
    return sync.run_id


@pytest.fixture
def pushed(s3: S3, tmp_path: Path, write_run) -> dict[str, str]:
    local = tmp_path / "machine-a"
    ids = {}
    for name, minute, acc, dropout in (
        ("r1", 1, 0.81, 0.1),
        ("r2", 2, None, 0.4),
        ("r3", 3, 0.9, 0.2),
    ):
        folder = write_run(
            local,
            name,
            start=t(minute),
            status="failed" if name == "r2" else "completed",
            flags={"dropout": dropout, "activation": "relu"},
            metrics=[{"step": 0, "loss": 1.0 / minute}],
            evaluation=None if acc is None else {"accuracy": acc, "loss": math.nan},
        )
        (folder / "plots").mkdir(exist_ok=True)
        (folder / "plots" / "loss.png").write_bytes(b"\x89PNG fake")
        ids[name] = push(s3, folder)
    return ids


def test_a_store_lists_like_a_folder(s3: S3, pushed: dict[str, str]) -> None:
    df = ls_runs(s3.url)
    assert df["id"].tolist() == ["r3", "r2", "r1"]
    row = df.set_index("id").loc["r3"]
    assert row["status"] == "completed" and row["flag_dropout"] == 0.2
    assert row["eval_accuracy"] == 0.9 and math.isnan(row["eval_loss"])  # NaN kept as NaN
    assert row["run_dir"] == f"{s3.url}/r3"
    # filters, latest_n and limit through SQL over the cache, as locally
    assert ls_runs(s3.url, filter="eval_accuracy > 0.85")["id"].tolist() == ["r3"]
    assert ls_runs(s3.url, latest_n=2)["id"].tolist() == ["r3", "r2"]
    assert ls_runs(s3.url, order="flag_dropout", limit=1)["id"].tolist() == ["r2"]
    assert ls_runs(s3.url, filter="status == 'failed'", columns=["id"])["id"].tolist() == ["r2"]
    with pytest.raises(FilterError, match="Did you mean: flag_dropout"):
        ls_runs(s3.url, filter="flag_dropuot > 1")


def test_a_refresh_reads_only_what_changed(
    s3: S3, pushed: dict[str, str], tmp_path: Path, write_run
) -> None:
    assert len(ls_runs(s3.url)) == 3
    # a row removed behind the index's back (no change marker): an incremental refresh does
    # not list every row again, so it is still listed; a full refresh drops it
    ObjectStore(s3.url).delete(INDEX + "r1.json")
    # a new run from another machine, pushed with its marker: seen at once
    other = write_run(tmp_path / "machine-b", "r9", start=t(9), flags={"dropout": 0.3})
    push(s3, other)
    assert ls_runs(s3.url)["id"].tolist() == ["r9", "r3", "r2", "r1"]
    assert ls_runs(s3.url, refresh=True)["id"].tolist() == ["r9", "r3", "r2"]


def test_a_run_launched_into_a_store_is_named_by_its_id_there(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainrun.runs.launch import training_run
    from trainrun.runs.store._objectstore import IDS

    script = tmp_path / "train.py"
    script.write_text("import trainrun as tr\ntr.write_evaluation(accuracy=0.5)\n")
    ObjectStore(s3.url).create(IDS + "fixed", b"{}")  # another machine took this id first
    monkeypatch.chdir(tmp_path)
    run = training_run(
        str(script), runs_dir=s3.url, run_dir=str(tmp_path / "here" / "fixed"), echo=False
    )
    assert run["id"] == "fixed" and run["run_url"] == f"{s3.url}/fixed-2"
    assert run_info("fixed-2", s3.url)["evaluation"] == {"accuracy": 0.5}
    # the CLI names the run by its id in the store
    (tmp_path / "runs").mkdir()
    env = s3.child_env()
    out = subprocess.run(
        [sys.executable, "-m", "trainrun", "run", str(script), "--no-echo", "--runs-dir", s3.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    url = out.stderr.strip().splitlines()[-1].split("(")[-1].rstrip(")")
    assert url.startswith(s3.url + "/") and url.rsplit("/", 1)[-1] in ls_runs(s3.url)["id"].tolist()


def test_same_local_ids_from_two_machines_get_distinct_store_ids(
    s3: S3, tmp_path: Path, write_run
) -> None:
    a = write_run(tmp_path / "a", "2026-11-27T10-00-00Z", start=t(0), flags={"m": "a"})
    b = write_run(tmp_path / "b", "2026-11-27T10-00-00Z", start=t(0), flags={"m": "b"})
    assert (push(s3, a), push(s3, b)) == ("2026-11-27T10-00-00Z", "2026-11-27T10-00-00Z-2")
    df = ls_runs(s3.url).set_index("id")
    assert df.loc["2026-11-27T10-00-00Z", "flag_m"] == "a"
    assert df.loc["2026-11-27T10-00-00Z-2", "flag_m"] == "b"
    # pushing again keeps the claimed id (remembered beside the local run)
    assert push(s3, b) == "2026-11-27T10-00-00Z-2"


def test_show_fetches_a_local_copy_of_one_run(
    s3: S3, pushed: dict[str, str], tmp_path: Path
) -> None:
    folder = get_run_dir(0, s3.url)
    assert folder.name == "r3" and (folder / "plots" / "loss.png").read_bytes() == b"\x89PNG fake"
    # fetched again only when its row changed: a file removed behind its back stays in the copy
    ObjectStore(s3.url).delete("r3/plots/loss.png")
    assert (get_run_dir("r3", s3.url) / "plots" / "loss.png").exists()
    assert run_info("r1", s3.url)["flags"]["dropout"] == 0.1
    assert latest_run(s3.url)["evaluation"]["accuracy"] == 0.9
    copied = copy_run("r2", tmp_path / "shared", runs_dir=s3.url)
    assert record.read_json(copied / record.RUN_FILE)["status"] == "failed"
    with pytest.raises(RunNotFoundError, match="No run 'r7'"):
        get_run_dir("r7", s3.url)
    with pytest.raises(RunNotFoundError, match="It matches 3 runs"):
        get_run_dir("r", s3.url)


def test_a_run_whose_heartbeat_stops_reads_killed(
    s3: S3, tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    monkeypatch.setenv("TRAINRUN_HEARTBEAT_TIMEOUT", "1.5")
    folder = write_run(tmp_path / "a", "live", start=t(5), status="running")
    sync = RunSync(folder, s3.url)
    sync.push()  # a heartbeat now, then none: its machine died
    assert ls_runs(s3.url)["status"].tolist() == ["running"]
    wait_until(lambda: ls_runs(s3.url)["status"].tolist() == ["killed"], timeout=20)
    sync.push()  # a late heartbeat (the machine was only cut off): running again
    assert ls_runs(s3.url, filter="status == 'running'")["id"].tolist() == ["live"]


def test_reports_and_the_cli_over_a_store(s3: S3, pushed: dict[str, str], tmp_path: Path) -> None:
    from trainrun.runs.report import save_run_comparison, save_run_view

    page = save_run_view(0, tmp_path / "view.html", runs_dir=s3.url)
    assert "r3" in page.read_text()
    both = save_run_comparison(None, tmp_path / "compare.html", runs_dir=s3.url)
    text = both.read_text()
    assert "r3" in text and "r2" in text
    env = s3.child_env()
    ls = subprocess.run(
        [sys.executable, "-m", "trainrun", "ls", "--runs-dir", s3.url, "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ls.returncode == 0, ls.stderr
    assert [line.split(",")[0] for line in ls.stdout.splitlines()[1:]] == ["r3", "r2", "r1"]
    show = subprocess.run(
        [sys.executable, "-m", "trainrun", "show", "r1", "--runs-dir", s3.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stderr
    assert "dropout" in show.stdout and "0.1" in show.stdout
    assert f"store      {s3.url}/r1" in show.stdout  # where it is, beside its local copy


def test_clean_restore_and_purge_over_a_store(s3: S3, pushed: dict[str, str]) -> None:
    moved = clean_runs(ls_runs(s3.url, filter="status == 'failed'"), s3.url)
    assert moved == [f"{s3.url}/archive/r2"]
    assert ls_runs(s3.url)["id"].tolist() == ["r3", "r1"]
    assert ls_runs(f"{s3.url}/archive")["id"].tolist() == ["r2"]
    assert not [k for k in s3.keys("team/r2/")]
    assert "team/archive/r2/run.json" in s3.keys("team/archive/")
    assert restore_runs("r2", s3.url) == [f"{s3.url}/r2"]
    assert ls_runs(s3.url)["id"].tolist() == ["r3", "r2", "r1"]
    clean_runs("r1", s3.url)
    assert purge_runs(runs_dir=s3.url, confirm=False) == ["r1"]  # every archived run
    assert ls_runs(f"{s3.url}/archive").empty
    assert purge_runs("r3", s3.url, confirm=False) == ["r3"]  # one named run, not archived
    assert ls_runs(s3.url)["id"].tolist() == ["r2"]
    assert not [k for k in s3.keys("team/") if k.startswith(("team/r1/", "team/r3/"))]


def test_a_mirror_for_tensorboard_and_the_dashboard(
    s3: S3, pushed: dict[str, str], tmp_path: Path, write_run, wait_until
) -> None:
    folder = mirror_runs(s3.url)
    assert ls_runs(folder)["id"].tolist() == ["r3", "r2", "r1"]
    assert (folder / "r3" / "plots" / "loss.png").exists()
    purge_runs("r1", s3.url, confirm=False)
    push(s3, write_run(tmp_path / "b", "r9", start=t(9), flags={"dropout": 0.5}))
    assert mirror_runs(s3.url) == folder
    assert ls_runs(folder)["id"].tolist() == ["r9", "r3", "r2"]
    # trainrun ui --runs-dir s3://...: the dashboard over the mirror
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "ui", "--runs-dir", s3.url, "--port", str(port)],
        env=s3.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer = wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=5).json(),
            timeout=60,
            ignoring=httpx.HTTPError,
        )
        assert answer["count"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_mirror_fetches_only_what_changed_and_appends_what_grew(
    s3: S3, tmp_path: Path, write_run
) -> None:
    folder = write_run(tmp_path / "a", "live", start=t(1), status="running", flags={"lr": 1})
    events = folder / "tensorboard" / "events.out.tfevents.1.host"
    events.write_bytes(b"record-1;")
    huge = folder / "tensorboard" / "events.out.tfevents.2.host"
    with open(huge, "wb") as f:
        f.truncate(_sync.LIVE_EVENTS_MAX + 1)  # rewritten whole every tick: too big until the end
    sync = RunSync(folder, s3.url)
    sync.push()  # a tick while it runs: the record files and the event files
    assert f"team/live/tensorboard/{events.name}" in s3.keys("team/live/")
    assert f"team/live/tensorboard/{huge.name}" not in s3.keys("team/live/")
    huge.unlink()
    mirrored = mirror_runs(s3.url) / "live" / "tensorboard" / events.name
    reader = open(mirrored, "rb")  # TensorBoard holds its event files open
    try:
        assert reader.read() == b"record-1;"
        flags = mirrored.parent.parent / record.FLAGS_FILE
        flags_inode = os.stat(flags).st_ino
        with open(events, "ab") as f:
            f.write(b"record-2;")
        sync.push()
        mirror_runs(s3.url)
        assert reader.read() == b"record-2;"  # appended: the open reader sees the new records
        assert os.stat(flags).st_ino == flags_inode  # unchanged: not fetched again
        ObjectStore(s3.url).delete(f"live/tensorboard/{events.name}")
        sync.push()
        mirror_runs(s3.url)
        assert not mirrored.exists()  # gone from the store, gone from the mirror
    finally:
        reader.close()


MIRROR_LOOP = """
import sys, time, warnings
from trainrun.runs.store import mirror_runs
warnings.simplefilter("ignore")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    mirror_runs(sys.argv[1])
    try:
        open(sys.argv[2]).close()
        break  # the writer is done
    except OSError:
        pass
mirror_runs(sys.argv[1])
"""


def test_two_mirrors_of_one_machine_never_append_twice(s3: S3, tmp_path: Path, write_run) -> None:
    # `trainrun ui` and `trainrun board` on one machine: two processes, one mirror
    folder = write_run(tmp_path / "a", "live", start=t(1), status="running", flags={"lr": 1})
    sync = RunSync(folder, s3.url)
    sync.push()
    mirror_runs(s3.url)
    done = tmp_path / "done"
    mirrors = [
        subprocess.Popen([sys.executable, "-c", MIRROR_LOOP, s3.url, str(done)], env=s3.child_env())
        for _ in range(2)
    ]
    try:
        for step in range(30):
            record.append_jsonl(folder / record.METRICS_FILE, [{"step": step, "loss": 1.0}])
            sync.push()
    finally:
        done.touch()
        for proc in mirrors:
            assert proc.wait(timeout=120) == 0
    mirrored = mirror_runs(s3.url) / "live" / record.METRICS_FILE
    assert mirrored.read_bytes() == (folder / record.METRICS_FILE).read_bytes()


def test_a_fetch_never_writes_through_a_link_nor_stops_at_an_odd_key(
    s3: S3, tmp_path: Path, write_run
) -> None:
    folder = write_run(tmp_path / "a", "r1", start=t(1), flags={"lr": 1})
    sync = RunSync(folder, s3.url)
    sync.push(final=True)
    store = ObjectStore(s3.url)
    store.put("r1/artifacts/a", b"a file")
    store.put("r1/artifacts/a/b", b"a file under a file: cannot be one here")
    mirror = mirror_runs(s3.url)
    assert (mirror / "r1" / "artifacts" / "a").read_bytes() == b"a file"
    assert record.read_run(mirror / "r1")["flags"] == {"lr": 1}  # the rest is all there
    # a link planted in the copy, leading out of it: nothing is written through it
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(mirror / "r1" / "plots", ignore_errors=True)
    (mirror / "r1" / "plots").symlink_to(outside)
    store.put("r1/plots/loss.png", b"png")
    sync.push()  # the row changes: the mirror looks at r1 again
    mirror_runs(s3.url)
    assert list(outside.iterdir()) == []


def test_a_large_file_goes_in_parts_and_comes_back_whole(s3: S3, tmp_path: Path, write_run) -> None:
    folder = write_run(tmp_path / "a", "big", start=t(1))
    blob = os.urandom(12 * 1024 * 1024 + 7)  # past obstore's part size: a multipart upload
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "weights.bin").write_bytes(blob)
    push(s3, folder)
    assert (get_run_dir("big", s3.url) / "model" / "weights.bin").read_bytes() == blob


def test_a_store_away_lists_from_the_last_copy_with_a_warning(
    s3: S3, pushed: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from trainrun.runs.store._objectstore import StoreUnavailableError
    from trainrun.runs.store._remote_index import StaleListingWarning

    assert len(ls_runs(s3.url)) == 3
    s3.server.stop()
    try:
        with pytest.warns(StaleListingWarning, match="did not answer.*last copy"):
            assert ls_runs(s3.url, filter="eval_accuracy > 0.85")["id"].tolist() == ["r3"]
        # a machine that never listed it has nothing to fall back on: the error, clearly
        monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "other-machine"))
        with pytest.raises(StoreUnavailableError, match="did not answer"):
            ls_runs(s3.url)
    finally:
        s3.server.start()


def test_a_first_listing_starts_from_the_stores_snapshot(
    s3: S3, tmp_path: Path, write_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainrun.runs.store import _remote_index
    from trainrun.runs.store._objectstore import change_key

    monkeypatch.setattr(_remote_index, "SNAPSHOT_MIN_RUNS", 1)
    store = ObjectStore(s3.url)
    hour_ago = time.time_ns() - 3600 * 10**9
    for i, name in enumerate(("r1", "r2", "r3")):  # runs pushed an hour ago
        folder = write_run(
            tmp_path / "a",
            name,
            start=t(i + 1),
            flags={"dropout": 0.1 * (i + 1), "bn": i % 2 == 0},
            evaluation={"accuracy": 0.8 + i / 100, "loss": math.nan},
        )
        sync = RunSync(folder, s3.url)
        run_id = sync.claim()
        store.put(INDEX + run_id + ".json", sync.row(run_id))
        store.put(change_key(run_id, hour_ago + i), b"")
    before = ls_runs(s3.url)  # machine A lists every row, and writes the snapshot
    assert "team/.trainrun/snapshot.jsonl.gz" in s3.keys("team/.trainrun/")
    # a row gone behind the snapshot's back (no marker): a machine that starts from the
    # snapshot still lists it, which shows it fetched the snapshot, not every row
    store.delete(INDEX + "r1.json")
    # a run pushed after the snapshot, with its marker: listed as well
    push(s3, write_run(tmp_path / "b", "r9", start=t(9), flags={"dropout": 0.5}))
    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "machine-b"))
    df = ls_runs(s3.url)
    assert df["id"].tolist() == ["r9", "r3", "r2", "r1"]
    # the snapshot's rows list as the rows themselves do: NaN, booleans, times
    same = df[df["id"] != "r9"].reset_index(drop=True)[before.columns]
    pd.testing.assert_frame_equal(same, before, check_dtype=False)
    assert same["flag_bn"].tolist() == [True, False, True]
    assert ls_runs(s3.url, refresh=True)["id"].tolist() == ["r9", "r3", "r2"]


def add_scalars(path: Path, steps: range) -> None:
    """Append TensorBoard scalar events (``loss``) to the event file ``path``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    with open(path, "ab") as f:
        writer = RecordWriter(f)
        if f.tell() == 0:
            writer.write(
                event_pb2.Event(
                    wall_time=time.time(), file_version="brain.Event:2"
                ).SerializeToString()
            )
        for step in steps:
            value = summary_pb2.Summary.Value(tag="loss", simple_value=1 / (step + 1))
            event = event_pb2.Event(
                wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=[value])
            )
            writer.write(event.SerializeToString())


def test_trainrun_board_over_a_store(
    s3: S3, pushed: dict[str, str], wait_until, tmp_path: Path, write_run
) -> None:
    pytest.importorskip("tensorboard")
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "trainrun", "board", "--runs-dir", s3.url, "--port", str(port)]
        + ["--reload-interval", "1"],
        env=s3.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        runs = wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/data/runs", timeout=5).json(),
            timeout=120,
            ignoring=(httpx.HTTPError, ValueError),
            message="TensorBoard over the store's mirror",
        )
        assert {r.split("/")[0] for r in runs} >= {"r1", "r2", "r3"}
        # a run of another machine, running while TensorBoard serves: it appears, and its
        # scalars grow as its event file does (live, not a snapshot taken at start)
        folder = write_run(
            tmp_path / "machine-b", "r9", start=t(9), flags={"dropout": 0.5}, status="running"
        )
        # named as a SummaryWriter names it: after the HParams file board writes beside it
        events = folder / "tensorboard" / "events.out.tfevents.1796294000.machine-b.1.0"
        add_scalars(events, range(2))
        sync = RunSync(folder, s3.url)
        sync.push()

        def points() -> int:
            runs = httpx.get(f"http://127.0.0.1:{port}/data/runs", timeout=5).json()
            name = next((r for r in runs if r.split("/")[0] == "r9"), None)
            if name is None:
                return 0
            url = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars"
            answer = httpx.get(url, params={"run": name, "tag": "loss"}, timeout=5)
            return len(answer.json()) if answer.status_code == 200 else 0

        wait_until(
            lambda: points() == 2,
            timeout=60,
            ignoring=(httpx.HTTPError, ValueError),
            message="the run pushed after TensorBoard started, with its 2 points",
        )
        add_scalars(events, range(2, 5))
        sync.push()
        wait_until(
            lambda: points() == 5,
            timeout=60,
            ignoring=(httpx.HTTPError, ValueError),
            message="the points its event file gained since",
        )
        # the HParams file board wrote into the mirror outlives the mirror's updates
        board_dir = Path(os.environ["TRAINRUN_CACHE_DIR"])
        assert list(board_dir.glob("s3/*/*/mirror/r9/tensorboard/*.trainrun-hparams"))
    finally:
        board.terminate()
        board.wait(timeout=30)
