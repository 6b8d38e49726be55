"""The shared store live (issue 16): the dashboard's refresh, change markers' retention, the mirror.

Prints figures and, at the end, each target with its figure and whether it is met; asserts
nothing (on a shared machine CPU times and ratios measured in the same run say more than
wall times). Runs moto's S3 server in this process on 127.0.0.1 (no network). Usage::

    .venv/bin/python bench/shared_store.py              # 200 runs, 3,000 old markers (~1 min)
    .venv/bin/python bench/shared_store.py --runs 50 --old-markers 500   # quicker

1. ``--runs`` finished runs pushed as the launcher pushes them, plus ``--old-markers``
   change markers two days old (a long history). A first listing on a new machine, then
   the markers' compaction (``RemoteRuns.compact``): how many are deleted, in how long,
   and how many are left (the recent ones only).
2. A listing after one run changed on another machine (one LIST of the markers since the
   last refresh, one GET of the row): wall and CPU.
3. The dashboard over the store (``create_app("s3://...", refresh_interval=1)``, in
   process): a request when no refresh is due, one when a refresh is due and nothing
   changed, and the time from a run pushed by another machine to its row in ``/api/runs``.
4. The mirror (``mirror_runs``) when one running run appended metrics: only that run's
   changed files are fetched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _moto import local_s3  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.runs.store.conftest.write_run: a run folder as launched

#: (what, figure, target, unit); printed at the end
RESULTS: list[tuple[str, float, float, str]] = []


def timed(fn: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """(median wall s, median CPU s) of ``fn`` over ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--old-markers", type=int, default=3000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainrun-bench-store-"))
    with local_s3(tmp, TRAINRUN_CACHE_DIR=str(tmp / "machine-a")):
        run(args, tmp)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    print("\ntarget                                                        figure     target  met")
    for what, figure, target, unit in RESULTS:
        met = "met" if figure <= target else "NOT MET"
        print(f"{what:<60} {figure:>8.3f}{unit:<2} {target:>7.3f}{unit:<2} {met}")


def run(args: argparse.Namespace, tmp: Path) -> None:
    import boto3
    from tests.runs.store.conftest import write_run

    from trainrun.runs.store import _remote_index, ls_runs, mirror_runs
    from trainrun.runs.store._objectstore import CHANGES, ObjectStore, change_key
    from trainrun.runs.store._sync import RunSync

    boto3.client("s3").create_bucket(Bucket="bench")
    url = "s3://bench/team"
    store = ObjectStore(url)
    n, m = args.runs, args.old_markers
    t0 = time.perf_counter()
    folders = [
        write_run(tmp / "launcher", f"r{i:05d}", flags={"lr": i / n}, evaluation={"acc": i / n})
        for i in range(n)
    ]
    two_days = time.time_ns() - 2 * 86400 * 10**9
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: RunSync(f, url).push(final=True), folders))
        list(pool.map(lambda i: store.put(change_key(f"gone{i}", two_days + i), b""), range(m)))
    print(
        f"1. {n} runs pushed and {m} markers two days old written in {time.perf_counter() - t0:.1f} s"
    )

    cutoff = time.time_ns() - int(_remote_index.changes_horizon() * 1e9)

    def old_markers() -> int:
        return sum(1 for e in store.list(CHANGES) if _remote_index._stamp(e.key) < cutoff)

    markers, old = sum(1 for _ in store.list(CHANGES)), old_markers()
    t0 = time.perf_counter()
    deleted = _remote_index.RemoteRuns(url).compact()
    took = time.perf_counter() - t0
    left = sum(1 for _ in store.list(CHANGES))
    print(
        f"   markers: {markers} ({old} older than the horizon); {deleted} deleted in "
        f"{took:.2f} s ({took / max(deleted, 1) * 1e3:.2f} ms each, DeleteObjects batches of "
        f"1,000); {left} left"
    )
    RESULTS.append(("markers older than the horizon left after compaction", old_markers(), 0, ""))
    first, _ = timed(lambda: ls_runs(url), 1)
    print(f"   first listing on a new machine: {first:.2f} s (every row fetched)")
    again, _ = timed(lambda: _remote_index.RemoteRuns(url).compact(), 3)
    print(f"   a compaction with nothing to delete: {again * 1e3:.1f} ms (one LIST page)")
    RESULTS.append(("compaction with nothing to delete (s)", again, 0.1, "s"))

    # 2. one run changed on another machine, then a listing here
    other = tmp / "machine-b-run"

    def one_change() -> None:
        folder = write_run(other, f"b{time.time_ns()}", flags={"lr": 0.5})
        RunSync(folder, url).push(final=True)

    def listing_after_a_change() -> tuple[float, float]:
        one_change()
        w, c = time.perf_counter(), time.process_time()
        ls_runs(url, latest_n=20)
        return time.perf_counter() - w, time.process_time() - c

    pairs = [listing_after_a_change() for _ in range(5)]
    wall = statistics.median(p[0] for p in pairs)
    cpu = statistics.median(p[1] for p in pairs)
    print(
        f"2. ls_runs(latest_n=20) right after a run changed elsewhere: {wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU"
    )
    RESULTS.append(("listing after one change elsewhere (s, wall)", wall, 0.15, "s"))

    # 3. the dashboard over the store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        from trainrun.web.app import create_app

    interval = 1.0
    t0 = time.perf_counter()
    client = TestClient(create_app(url, refresh_interval=interval), base_url="http://127.0.0.1")
    print(
        f"3. dashboard over {n + 5} runs started (index cache listed; run files fetched on demand) in {time.perf_counter() - t0:.1f} s"
    )
    client.get("/api/runs?latest_n=20")
    not_due, _ = timed(lambda: client.get("/api/runs?latest_n=20"), 5)
    dash = client.app.state.dashboard

    def due() -> None:
        dash._refreshed = -1e9  # a refresh is due: the store is asked what changed
        client.get("/api/runs?latest_n=20")

    due_wall, due_cpu = timed(due, 5)
    print(
        f"   /api/runs?latest_n=20: {not_due * 1e3:.0f} ms when no refresh is due, "
        f"{due_wall * 1e3:.0f} ms ({due_cpu * 1e3:.0f} ms CPU) when one is and nothing changed"
    )
    RESULTS.append(("dashboard request with a refresh due, nothing new (s)", due_wall, 0.3, "s"))
    due()  # refreshed just now: the next refresh is a whole interval away
    refreshed = time.perf_counter()
    before = client.get("/api/runs").json()["total"]
    one_change()
    pushed = time.perf_counter()
    while client.get("/api/runs").json()["total"] == before:
        if time.perf_counter() - pushed > 30:
            break
        time.sleep(0.05)
    seen = time.perf_counter() - pushed
    print(
        f"   a run pushed elsewhere (the push took {pushed - refreshed:.2f} s after the last "
        f"refresh) shows in /api/runs {seen:.2f} s after its push (interval {interval:g} s)"
    )
    RESULTS.append(
        (f"new run in the dashboard (interval {interval:g} s) (s)", seen, interval + 0.5, "s")
    )

    # 4. the mirror when one running run appended metrics
    live = write_run(tmp / "machine-c", "live", status="running", flags={"lr": 1})
    sync = RunSync(live, url)
    sync.push()
    mirror_runs(url)

    def appended() -> None:
        with open(live / "metrics.jsonl", "a") as f:
            f.write('{"step": 1, "loss": 0.5}\n')
        sync.push()

    def mirror_after_append() -> tuple[float, float]:
        appended()
        w, c = time.perf_counter(), time.process_time()
        mirror_runs(url)
        return time.perf_counter() - w, time.process_time() - c

    pairs = [mirror_after_append() for _ in range(5)]
    wall = statistics.median(p[0] for p in pairs)
    cpu = statistics.median(p[1] for p in pairs)
    print(
        f"4. mirror_runs over {n + 10} runs after one running run appended metrics: "
        f"{wall * 1e3:.0f} ms wall, {cpu * 1e3:.0f} ms CPU"
    )
    RESULTS.append(("mirror refresh, one running run changed (s)", wall, 0.25, "s"))


if __name__ == "__main__":
    main()
