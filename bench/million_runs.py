"""Listings at 100,000 and 1,000,000 runs: SQL pushdown, the change journal, the rebuild (issue 16).

Prints figures and, at the end, each target of issue 16 with its figure and whether it is
met; asserts nothing (the machine may be shared: CPU times and the ratios measured in the
same run say more than wall times on a loaded machine). Usage::

    .venv/bin/python bench/million_runs.py              # 100,000 folders, 1,000,000 rows (~2-3 min)
    .venv/bin/python bench/million_runs.py --quick      # 10,000 folders, 100,000 rows
    .venv/bin/python bench/million_runs.py --keep /tmp/runs100k   # keep the folders for next time
    .venv/bin/python bench/million_runs.py --store 2000 # and part 3: a shared store (moto)

1. ``--small`` runs (100,000) written as real run folders (bench/runs.py's generator:
   run.json, flags.json, metrics.jsonl of 20 steps, evaluation.json), then timed: the
   index rebuilt from scratch (worker processes, and one process alone); ``trainrun ls``
   as whole commands (``--latest 20``; a filtered top 20) beside ``python -c pass`` and
   ``python -c 'import pandas'``, and whether the command imported pandas; ``ls_runs``
   in this process (latest 20, filtered and sorted, a full DataFrame first and warm).
2. ``--large`` runs (1,000,000) generated as index rows only (not launched, no folders):
   the index is filled by the index's own writer, marked up to date, and listings timed,
   in this process and as ``trainrun ls`` commands.
3. ``--store N`` runs in a shared store (moto's S3 server on 127.0.0.1); off by default.

Commands run with their byte code cached (``PYTHONPYCACHEPREFIX`` in a temporary folder),
as an installed trainrun runs; each command's CPU time is its own (``RUSAGE_CHILDREN``).
Index bytes per run (and the run folders' bytes per run) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
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
from trainrun.runs.store._index import INDEX_FILE  # noqa: E402

FILTER = "eval_accuracy > 0.5 and flag_dropout < 0.3"
ROOT = Path(__file__).resolve().parents[1]
#: (what, figure in seconds or None, target in seconds or None); printed at the end
RESULTS: list[tuple[str, float | None, float | None]] = []
SCALE = [""]  # the part being measured, named in RESULTS


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


def line(label: str, seconds: float, target: float | None = None, cpu: float | None = None) -> None:
    note = f"cpu {fmt(cpu).strip():>10}" if cpu is not None else " " * 14
    if target:
        note += f"   target <= {fmt(target).strip()}" + (
            "  met" if seconds <= target else "  NOT met"
        )
        RESULTS.append((f"{SCALE[0]}: {label.strip()}", seconds, target))
    print(f"   {label:<56} {fmt(seconds)}   {note}")


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


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def command(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, float]:
    """(least wall, median wall, median CPU) of ``repeat`` runs of ``cmd``, after one warm-up."""
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    walls, cpus = [], []
    for _ in range(repeat):
        c0 = children_cpu()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu() - c0)
    return min(walls), statistics.median(walls), statistics.median(cpus)


def command_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed trainrun has its byte code
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def imports_pandas(cmd: list[str], env: dict[str, str]) -> bool:
    out = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], env=env, capture_output=True, text=True, check=True
    )
    return any(row.rstrip().endswith((" pandas", " numpy")) for row in out.stderr.splitlines())


def bench_commands(tmp: Path, runs_dir: Path, n: int, target: float | None, repeat: int) -> None:
    env = command_env(tmp)
    trainrun = [sys.executable, "-m", "trainrun", "ls", "--runs-dir", str(runs_dir)]
    latest = [*trainrun, "--latest", "20"]
    top = [*trainrun, "--filter", FILTER, "--order", "eval_accuracy", "--limit", "20"]
    for label, cmd in (
        ("`trainrun ls --latest 20` (whole command)", latest),
        ("`trainrun ls --filter F --order eval_accuracy --limit 20`", top),
    ):
        low, mid, cpu = command(cmd, env, repeat)
        line(label, low, target, cpu)
        print(f"   {'   median of ' + str(repeat):<56} {fmt(mid)}")
    print(f"   {'   imports pandas or numpy:':<56} {imports_pandas(latest, env)!s:>12}")
    for label, code in (
        ("   python -c pass", "pass"),
        ("   python -c 'import pandas'", "import pandas"),
    ):
        low, _, cpu = command([sys.executable, "-c", code], env, max(2, repeat // 2))
        line(label, low, None, cpu)


def rebuild(runs_dir: Path, workers: bool) -> tuple[float, float]:
    """(wall, CPU of this process and its workers) of a rebuild from no index."""
    shutil.rmtree(runs_dir / ".trainrun", ignore_errors=True)
    _index._TABLES.clear()
    saved = _index.PARALLEL_MIN_RUNS
    _index.PARALLEL_MIN_RUNS = saved if workers else 10**12
    c0, k0 = time.process_time(), children_cpu()
    t0 = time.perf_counter()
    try:
        ls_runs(runs_dir, latest_n=1)
    finally:
        _index.PARALLEL_MIN_RUNS = saved
    return time.perf_counter() - t0, time.process_time() - c0 + children_cpu() - k0


def bench_folders(tmp: Path, n: int, repeat: int, keep: Path | None) -> None:
    runs_dir = keep or tmp / f"folders_{n}"
    t0 = time.perf_counter()
    made = False
    if not (runs_dir.is_dir() and sum(1 for _ in os.scandir(runs_dir)) >= n):
        shutil.rmtree(runs_dir, ignore_errors=True)
        write_synthetic(runs_dir, n)
        os.sync()  # the rebuild reads, rather than competing with the write-back of the folders
        made = True
    took = f"written in {time.perf_counter() - t0:.1f} s" if made else f"kept in {runs_dir}"
    print(f"\n1. {n:,} runs as real folders ({took})")
    target = n >= 100_000
    SCALE[0] = f"{n:,} folders"
    print(f"   {'':<56} {'wall':>12}   {'cpu':>14}")
    # workers, one process, workers again: the first warms the page cache for the others
    spread, spread_cpu = rebuild(runs_dir, workers=True)
    alone, alone_cpu = rebuild(runs_dir, workers=False)
    spread, spread_cpu = min((spread, spread_cpu), rebuild(runs_dir, workers=True))
    line("index rebuilt from scratch, one process", alone, None, alone_cpu)
    line(
        f"index rebuilt from scratch, {_index._cores()} worker process(es)",
        spread,
        8.0 if target else None,
        spread_cpu,
    )
    print(f"   {'   one process / workers (wall)':<56} {alone / spread:9.2f} x")
    if target:  # on a loaded machine the wall time is mostly waiting for a core
        RESULTS.append(
            (f"   (the rebuild's CPU time, workers included: {spread_cpu:.2f} s)", None, None)
        )
    settle(runs_dir)
    bench_commands(tmp, runs_dir, n, 0.15 if target else None, repeat)
    line(
        "ls_runs(latest_n=20), first in a process",
        best(lambda: ls_runs(runs_dir, latest_n=20), repeat),
    )
    query = best(
        lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", latest_n=20), repeat
    )
    line("filter + order, latest 20, first in a process", query, 0.15 if target else None)
    top = best(lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20), repeat)
    line("filter + order, top 20 (limit=20), first in a process", top, 0.15 if target else None)
    line("full ls_runs() DataFrame, first in a process", best(lambda: ls_runs(runs_dir), 2))
    full = warm(lambda: ls_runs(runs_dir), repeat)
    line("full ls_runs() DataFrame, warm", full, 0.2 if target else None)
    size = index_bytes(runs_dir)
    store = (
        sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(runs_dir) for f in fs)
        - size
    )
    print(f"   index {size / n:,.0f} bytes per run; run folders {store / n:,.0f} bytes per run")
    RESULTS.append((f"index bytes per run ({n:,} folders): {size / n:,.0f}", None, None))
    RESULTS.append((f"run folders' bytes per run: {store / n:,.0f}", None, None))
    if keep is None:
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
    target = 0.5 if n >= 1_000_000 else None
    SCALE[0] = f"{n:,} rows"
    latest = best(lambda: ls_runs(runs_dir, latest_n=20), repeat)
    query = best(
        lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", latest_n=20), repeat
    )
    t0 = time.perf_counter()
    ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20)
    top_first = time.perf_counter() - t0  # indexes eval_accuracy's column on the way
    top = best(lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy", limit=20), repeat)
    rare = best(lambda: ls_runs(runs_dir, filter="eval_accuracy > 0.9999", latest_n=20), repeat)
    line("ls_runs(latest_n=20), first in a process", latest, target)
    line("filter + order, latest 20, first in a process", query, target)
    line("top 20 by eval_accuracy, filtered, first time (indexes it)", top_first)
    line("filter + order, top 20 by eval_accuracy (limit=20)", top, target)
    line("a filter matching ~0.01% of runs, latest 20", rare, target)
    bench_commands(tmp, runs_dir, n, target, max(2, repeat))
    size = index_bytes(runs_dir)
    print(f"   index {size / n:,.0f} bytes per run")
    RESULTS.append((f"index bytes per run ({n:,} rows): {size / n:,.0f}", None, None))
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
    parser.add_argument("--store", type=int, default=0, help="runs in the S3 part (0: skip)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each timed listing")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the run folders here (reused next time)"
    )
    args = parser.parse_args()
    small = args.small or (10_000 if args.quick else 100_000)
    large = args.large or (100_000 if args.quick else 1_000_000)
    started = time.perf_counter()
    print(f"bench/million_runs.py  python {sys.version.split()[0]}  cores {os.cpu_count()}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="trainrun-million-") as tmp:
        if not args.rows_only:
            bench_folders(Path(tmp), small, args.repeat, args.keep)
        bench_rows(Path(tmp), large, args.repeat)
        if args.store:
            bench_store(Path(tmp), args.store, repeat=3)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\nTargets (issue 16), in {time.perf_counter() - started:.0f} s:")
    for label, seconds, target in RESULTS:
        if target is None:
            print(f"   {label}")
        else:
            verdict = "met" if seconds is not None and seconds <= target else "NOT met"
            print(f"   {label:<84} {fmt(seconds or 0)} <= {fmt(target).strip():>9}  {verdict}")


if __name__ == "__main__":
    main()
