"""The dashboard over a large shared store (issue 16): its first start, its first listing, a run page.

Prints figures (wall and CPU time measured in the same run, the load average) and asserts
nothing. Runs moto's S3 server in this process on 127.0.0.1 (no network). Usage::

    .venv/bin/python bench/store_dashboard.py              # 2,000 runs (~1-2 min)
    .venv/bin/python bench/store_dashboard.py --runs 10000

1. ``--runs`` small finished runs are written straight into the store, objects put side by
   side (a run folder's record files, its listing row, its id claim, a change marker of the
   past day): what the launcher's pushes leave, without launching them.
2. A machine with an empty cache starts the dashboard (``create_app("s3://...")``), asks
   ``/api/runs`` (the first page) and opens one run page, then that page again; how many run
   folders its local copy holds after each step (the files it fetched).
3. A second machine does the same (its first listing from the snapshot the first one wrote).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _moto import local_s3  # bench/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall s, CPU s of this process: moto's threads included) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def fill(url: str, n: int) -> None:
    """``n`` finished runs written straight into the store (objects put 16 at a time)."""
    from trainrun.runs import record
    from trainrun.runs.store._objectstore import IDS, INDEX, ObjectStore, change_key

    store = ObjectStore(url)
    rng = random.Random(0)
    now = time.time()

    def one(i: int) -> None:
        rid = f"run-{i:06d}"
        start = "2026-11-24T16:00:00.000000Z"
        lr, acc = rng.choice([0.1, 0.01, 0.001]), rng.random()
        run = {
            "id": rid,
            "script": "train.py",
            "command": ["python", "train.py"],
            "status": "completed",
            "start": start,
            "end": start,
            "duration": 1.5,
            "exit_code": 0,
            "host": "bench",
            "pid": 1,
            "tags": {},
        }
        files = {
            record.RUN_FILE: record.dumps(run),
            record.FLAGS_FILE: record.dumps({"values": {"lr": lr}, "declared": {}}),
            record.METRICS_FILE: "".join(
                record.dumps({"step": s, "loss": 1 / (s + 1)}) + "\n" for s in range(20)
            ),
            record.EVALUATION_FILE: record.dumps({"accuracy": acc}),
            record.OUTPUT_FILE: "epoch 1\nepoch 2\n",
            "source/train.py": "import trainrun as tr\n",
        }
        for rel, text in files.items():
            store.put(f"{rid}/{rel}", text.encode())
        row = {
            "id": rid,
            "local_id": rid,
            "status": "completed",
            "start": 1_764_000_000_000_000 + i * 1_000_000,
            "script": "train.py",
            "exit_code": 0,
            "host": "bench",
            "heartbeat": now,
            "extra": {"flag_lr": lr, "eval_accuracy": acc, "metric_loss": 0.05},
        }
        store.put(INDEX + rid + ".json", record.dumps(row).encode())
        store.put(IDS + rid, b"{}")
        # written over the past day, as a team's runs are (not all in the last minutes)
        store.put(change_key(rid, time.time_ns() - (n - i) * 86_400 * 10**9 // n - 10**12), b"")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))


def run_folders(folder: Path) -> int:
    return (
        sum(1 for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if folder.is_dir()
        else 0
    )


def machine(url: str, cache: Path, label: str) -> None:
    """One machine's dashboard: start, first /api/runs, a run page twice; figures printed."""
    from trainrun.runs.store._sync import cache_root
    from trainrun.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    os.environ["TRAINRUN_CACHE_DIR"] = str(cache)
    root = cache_root(url)
    local = [root / "mirror", root / "copies"]

    def held() -> int:
        return sum(run_folders(p) for p in local)

    app, wall, cpu = timed(lambda: create_app(url, refresh_interval=3600))
    print(
        f"   {label}: create_app           {wall:7.2f} s wall {cpu:7.2f} s CPU; run folders here: {held()}"
    )
    first = getattr(app.state.dashboard, "_first_listing", None)
    if first is not None:  # the machine's first listing, beside the server
        _, wall, cpu = timed(first.wait)
        print(f"   {label}: first listing done     {wall:7.2f} s later (in its own thread)")
    client = TestClient(app, base_url="http://127.0.0.1")
    answer, wall, cpu = timed(lambda: client.get("/api/runs"))
    body = answer.json()
    print(
        f"   {label}: first /api/runs       {wall:7.2f} s wall {cpu:7.2f} s CPU; "
        f"{body['count']} of {body['total']} rows; run folders here: {held()}"
    )
    _, wall, cpu = timed(lambda: client.get("/api/runs?latest_n=20"))
    print(f"   {label}: /api/runs?latest_n=20 {wall * 1e3:7.0f} ms wall {cpu * 1e3:5.0f} ms CPU")
    run_id = body["runs"][len(body["runs"]) // 2]["id"]
    page, wall, cpu = timed(lambda: client.get(f"/runs/{run_id}"))
    assert page.status_code == 200, page.text[:300]
    print(
        f"   {label}: a run page, first     {wall * 1e3:7.0f} ms wall {cpu * 1e3:5.0f} ms CPU; "
        f"run folders here: {held()}"
    )
    _, wall, cpu = timed(lambda: client.get(f"/runs/{run_id}"))
    print(f"   {label}: the same page again   {wall * 1e3:7.0f} ms wall {cpu * 1e3:5.0f} ms CPU")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainrun-bench-dash-"))
    with local_s3(tmp):
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        url = "s3://bench/team"
        t0 = time.perf_counter()
        fill(url, args.runs)
        print(f"1. {args.runs:,} runs written into the store in {time.perf_counter() - t0:.1f} s")
        print("2./3. the dashboard on a machine with an empty cache:")
        machine(url, tmp / "machine-a", "machine A")
        machine(url, tmp / "machine-b", "machine B")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
