"""Listings at 100,000 and 1,000,000 runs: SQL pushdown and the change journal (issue 16).

Prints figures, asserts nothing (the machine is shared: compare the ratios,
measured in the same run). Usage::

    .venv/bin/python bench/million_runs.py              # 100,000 and 1,000,000 (~5-10 min)
    .venv/bin/python bench/million_runs.py --quick      # 10,000 and 100,000 index rows

1. ``--small`` runs (100,000) written as real run folders (bench/runs.py's
   generator: run.json, flags.json, metrics.jsonl of 20 steps, evaluation.json),
   then timed: the index rebuilt from scratch; ``ls_runs(latest_n=20)`` and a
   filtered sorted top-20, as the first listing in a process (``trainrun ls``);
   a full ``ls_runs()`` DataFrame, first in a process and warm; and, for
   "before", the same answers the way ls_runs gave them until now (every folder
   stat-ed, the whole DataFrame built, then filtered). Also the wall time of
   ``trainrun ls --latest 20`` as a command, beside ``python -c 'import pandas'``.
2. ``--large`` runs (1,000,000) generated as index rows only (not launched, no
   folders): the index is filled by the index's own writer, marked up to date,
   and the same listings timed.

Index bytes per run (and the store's bytes per run for real folders) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runs import write_synthetic  # noqa: E402  (bench/runs.py, beside this file)

from trainrun.runs import record  # noqa: E402
from trainrun.runs.record._journal import JOURNAL_FILE  # noqa: E402
from trainrun.runs.store import _index, _pushdown, ls_runs  # noqa: E402
from trainrun.runs.store._filter import parse_filter  # noqa: E402
from trainrun.runs.store._index import INDEX_FILE, load_table  # noqa: E402

FILTER = "eval_accuracy > 0.5 and flag_dropout < 0.3"
ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], object], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        _index._TABLES.clear()  # as in a new process: no table kept from before
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def warm(fn: Callable[[], object], repeat: int) -> float:
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 1 else f"{seconds:9.2f} s "


def line(label: str, seconds: float, target: float | None = None, before: float | None = None):
    note = f"target <= {fmt(target).strip()}" if target else ""
    if target:
        note += "  met" if seconds <= target else "  NOT met"
    if before:
        note = f"{before / seconds:7.1f}x faster than before   " + note
    print(f"   {label:<52} {fmt(seconds)}   {note}")


def old_listing(runs_dir: Path, expr: str | None, order: str | None, n: int | None) -> object:
    """ls_runs as it was before pushdown: every folder checked, the whole frame, then filtered."""
    saved = _pushdown.JOURNAL_MIN_RUNS
    _pushdown.JOURNAL_MIN_RUNS = 10**12
    try:
        df = load_table(runs_dir).frame()
    finally:
        _pushdown.JOURNAL_MIN_RUNS = saved
    if expr:
        df = df[parse_filter(expr).apply(df).to_numpy()]
    if n:
        df = df.head(n)
    if order:
        df = df.sort_values(order, ascending=False, na_position="last", kind="mergesort")
    return df


def index_bytes(runs_dir: Path) -> int:
    return sum(f.stat().st_size for f in runs_dir.glob(INDEX_FILE + "*"))


def settle(runs_dir: Path) -> None:
    """The runs folder an hour old and listed twice: its time stored, the journal started."""
    old = time.time() - 3600
    os.utime(runs_dir, (old, old))
    _index._TABLES.clear()
    ls_runs(runs_dir, latest_n=1)
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir, latest_n=1)


def cli_wall(runs_dir: Path, repeat: int = 3) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
    ls = [sys.executable, "-m", "trainrun", "ls", "--latest", "20", "--runs-dir", str(runs_dir)]
    pandas = [sys.executable, "-c", "import pandas"]
    out = []
    for cmd in (ls, pandas):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        out.append(min(times))
    return out[0], out[1]


def bench_folders(tmp: Path, n: int, repeat: int) -> None:
    runs_dir = tmp / f"folders_{n}"
    t0 = time.perf_counter()
    write_synthetic(runs_dir, n)
    print(f"\n1. {n:,} runs as real folders (written in {time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    ls_runs(runs_dir)
    rebuild = time.perf_counter() - t0
    settle(runs_dir)
    latest_before = best(lambda: old_listing(runs_dir, None, None, 20), 2)
    query_before = best(lambda: old_listing(runs_dir, FILTER, "eval_accuracy", 20), 2)
    latest = best(lambda: ls_runs(runs_dir, latest_n=20), repeat)
    query = best(
        lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", latest_n=20), repeat
    )
    top = best(lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20), repeat)
    full_first = best(lambda: ls_runs(runs_dir), 2)
    full_warm = warm(lambda: ls_runs(runs_dir), repeat)
    cli, pandas = cli_wall(runs_dir)
    size = index_bytes(runs_dir)
    store = (
        sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(runs_dir) for f in fs)
        - size
    )
    target = n >= 100_000
    print(f"   {'':<52} {'wall':>12}")
    line("index rebuilt from scratch (ls_runs, no index)", rebuild, 8.0 if target else None)
    line("before: latest 20 (stat every folder, whole frame)", latest_before)
    line("before: filter + order, latest 20", query_before)
    line(
        "ls_runs(latest_n=20), first in a process", latest, 0.15 if target else None, latest_before
    )
    line(
        "filter + order, latest 20, first in a process",
        query,
        0.15 if target else None,
        query_before,
    )
    line("filter + order, top 20 (limit=20)", top, 0.15 if target else None)
    line("full ls_runs() DataFrame, first in a process", full_first)
    line("full ls_runs() DataFrame, warm", full_warm, 0.2 if target else None)
    line("`trainrun ls --latest 20` (whole command)", cli)
    line("   of which: python -c 'import pandas'", pandas)
    print(f"   index {size / n:,.0f} bytes per run; run folders {store / n:,.0f} bytes per run")
    shutil.rmtree(runs_dir)


def fill_index(runs_dir: Path, n: int) -> None:
    """n runs' rows written straight into the index by its own writer (no folders)."""
    rng = random.Random(0)
    runs_dir.mkdir(parents=True)
    base_us = 1_764_000_000 * 1_000_000
    old_ns = time.time_ns() - 3600 * 10**9
    index = _index._Index(str(runs_dir))
    try:
        batch = []
        for i in range(n):
            rid = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(base_us // 10**6 + i))
            batch.append(
                {
                    "id": rid,
                    "status": "completed" if i % 10 else "failed",
                    "start": base_us + i * 1_000_000,
                    "end": base_us + i * 1_000_000 + 5_000_000,
                    "duration": rng.uniform(1, 100),
                    "script": "train.py",
                    "exit_code": 0 if i % 10 else 1,
                    "host": record.HOST,
                    "pid": 1,
                    "pid_start": 1,
                    "problem": None,
                    "mtime": old_ns,
                    "sig": None,
                    "extra": {
                        "tag_tuning_id": f"t{i // 100}",
                        "flag_dropout": rng.choice([0.1, 0.2, 0.3, 0.4]),
                        "flag_layer1": rng.choice([64, 128, 256]),
                        "flag_activation": "relu",
                        "metric_loss": 0.05,
                        "eval_accuracy": rng.random(),
                        "eval_auc": rng.random(),
                        "eval_loss": rng.random(),
                        "eval_label_mean": 0.27,
                    },
                }
            )
            if len(batch) == 50_000:
                index._write(batch, [], [], None)
                batch = []
        if batch:
            index._write(batch, [], [], None)
        # up to date: the runs folder's time stored, the journal started and read to its end
        old = time.time() - 3600
        os.utime(runs_dir, (old, old))
        journal = runs_dir / JOURNAL_FILE
        journal.touch()
        st = journal.stat()
        index.db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('dir_mtime', ?)",
            (str(runs_dir.stat().st_mtime_ns),),
        )
        index.db.execute("INSERT OR REPLACE INTO meta VALUES ('journal', ?)", (f"{st.st_ino}:0",))
        _pushdown._ensure_indexes(index.db)
    finally:
        index.close()


def bench_rows(tmp: Path, n: int, repeat: int) -> None:
    runs_dir = tmp / f"rows_{n}"
    t0 = time.perf_counter()
    fill_index(runs_dir, n)
    print(f"\n2. {n:,} runs as index rows only (generated in {time.perf_counter() - t0:.1f} s)")
    latest = best(lambda: ls_runs(runs_dir, latest_n=20), repeat)
    query = best(
        lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", latest_n=20), repeat
    )
    t0 = time.perf_counter()
    ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20)
    top_first = time.perf_counter() - t0  # indexes eval_accuracy's column on the way
    top = best(lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20), repeat)
    rare = best(lambda: ls_runs(runs_dir, filter="eval_accuracy > 0.9999", latest_n=20), repeat)
    line("ls_runs(latest_n=20), first in a process", latest, 0.5)
    line("filter + order, latest 20, first in a process", query, 0.5)
    line("top 20 by eval_accuracy, filtered, first time (indexes it)", top_first)
    line("filter + order, top 20 by eval_accuracy (limit=20)", top, 0.5)
    line("a filter matching ~0.01% of runs, latest 20", rare, 0.5)
    cli, pandas = cli_wall(runs_dir, 2)
    line("`trainrun ls --latest 20` (whole command)", cli)
    line("   of which: python -c 'import pandas'", pandas)
    print(f"   index {index_bytes(runs_dir) / n:,.0f} bytes per run")
    shutil.rmtree(runs_dir)


def bench_store(tmp: Path, n: int, repeat: int) -> None:
    """3. ls_runs over a shared store (moto's S3 server on 127.0.0.1), first and incremental."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    from trainrun.runs.store._objectstore import INDEX, ObjectStore, change_key

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        TRAINRUN_CACHE_DIR=str(tmp / "cache"),
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(
            Bucket="bench-runs"
        )
        url = "s3://bench-runs/team"
        store = ObjectStore(url)
        rng = random.Random(0)
        t0 = time.perf_counter()
        for i in range(n):
            rid = f"run-{i:07d}"
            row = {
                "id": rid,
                "status": "completed",
                "start": 1_764_000_000_000_000 + i * 1_000_000,
                "script": "train.py",
                "exit_code": 0,
                "heartbeat": time.time(),
                "extra": {
                    "flag_dropout": rng.choice([0.1, 0.2, 0.3]),
                    "eval_accuracy": rng.random(),
                },
            }
            store.put(INDEX + rid + ".json", record.dumps(row).encode())
            # written over the past day, as a team's runs are (not all in the last minutes)
            store.put(change_key(rid, time.time_ns() - (n - i) * 86_400 * 10**9 // n - 10**12), b"")
        print(
            f"\n3. {n:,} runs in a shared store (moto on 127.0.0.1; rows pushed in "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        t0 = time.perf_counter()
        ls_runs(url)
        line("first listing on a machine (every row fetched)", time.perf_counter() - t0)
        os.environ["TRAINRUN_CACHE_DIR"] = str(tmp / "cache-2")  # a second machine
        t0 = time.perf_counter()
        ls_runs(url)
        line("first listing on another machine (from the snapshot)", time.perf_counter() - t0)
        nothing = best(lambda: ls_runs(url, latest_n=20), repeat)
        line("ls_runs(latest_n=20), nothing changed", nothing)
        query = best(lambda: ls_runs(url, filter=FILTER, order="eval_accuracy", limit=20), repeat)
        line("filter + top 20, nothing changed", query)

        def one_changed() -> None:
            rid = f"run-{rng.randrange(n):07d}"
            row = json.loads(store.get(INDEX + rid + ".json") or b"{}")
            row["extra"]["eval_accuracy"] = rng.random()
            store.put(INDEX + rid + ".json", record.dumps(row).encode())
            store.put(change_key(rid), b"")
            ls_runs(url, latest_n=20)

        line("one run changed elsewhere, then latest 20", best(one_changed, repeat))
        keys = list(store.list(f"{INDEX}"))
        print(f"   index rows in the store: {sum(e.size for e in keys) / n:,.0f} bytes per run")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 folders, 100,000 rows")
    parser.add_argument("--small", type=int, default=None, help="runs written as folders")
    parser.add_argument("--large", type=int, default=None, help="runs written as index rows")
    parser.add_argument("--rows-only", action="store_true", help="skip the run folders part")
    parser.add_argument("--store", type=int, default=2000, help="runs in the S3 part (0: skip)")
    args = parser.parse_args()
    small = args.small or (10_000 if args.quick else 100_000)
    large = args.large or (100_000 if args.quick else 1_000_000)
    print(f"bench/million_runs.py  python {sys.version.split()[0]}  cores {os.cpu_count()}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="trainrun-million-") as tmp:
        if not args.rows_only:
            bench_folders(Path(tmp), small, repeat=3)
        bench_rows(Path(tmp), large, repeat=3)
        if args.store:
            bench_store(Path(tmp), args.store, repeat=3)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
