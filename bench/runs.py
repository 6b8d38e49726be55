"""Benchmark of the runs half: launch overhead and listing speed, against baselines run here.

Prints figures, asserts nothing (machines are shared and noisy: compare the
ratios, which are measured in the same run). Usage::

    .venv/bin/python bench/runs.py            # about 1-3 minutes
    .venv/bin/python bench/runs.py --quick    # 1,000 runs only, fewer launches

What it measures:

1. added wall time of ``trainrun run script.py`` over ``python script.py`` for
   a trivial script (median of 10 each, interleaved), and of ``training_run()``
   called in-process (the launcher without the CLI's own start-up);
2. ``ls_runs`` over 1,000 and 10,000 synthetic runs (encoded with record.py,
   written into a temporary folder): cold (index deleted), warm (index up to
   date; the process keeps its last table), warm as the first listing in a
   process (``trainrun ls``: no kept table), warm with a filter and a sort,
   and after one run changed; each with its CPU time beside the wall time;
3. baselines in the same run: scanning one JSON file per run (json.load of
   every run.json, then a DataFrame from the records), reading all four record
   files per run without the index, and one SQL query over the index table.
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

import pandas as pd

from trainrun.runs import record
from trainrun.runs.store import _index, ls_runs
from trainrun.runs.store._index import INDEX_FILE, load_table

FILTER = "eval_accuracy > 0.5 and flag_dropout < 0.3"


def timed(fn: Callable[[], object], repeat: int, cpu: list[float] | None = None) -> list[float]:
    """Wall times of ``repeat`` calls; their CPU times (this process) go into ``cpu``."""
    out = []
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return out


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms" if seconds < 1 else f"{seconds:8.2f} s "


# ---------------------------------------------------------------- 1. launch overhead


def bench_launch(tmp: Path, n: int) -> None:
    script = tmp / "trivial.py"
    script.write_text("print('hello')\n")
    runs_dir = tmp / "launch_runs"
    env = dict(os.environ)
    env["PYTHONPATH"] = (
        str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    )
    plain_cmd = [sys.executable, str(script)]
    cli_cmd = [
        sys.executable,
        "-m",
        "trainrun",
        "run",
        str(script),
        "--no-echo",
        "--runs-dir",
        str(runs_dir),
    ]
    plain, cli = [], []
    plain_cpu, cli_cpu = [], []  # CPU time of the child processes (user + system), less load-bound
    for _ in range(n):  # interleaved, so that a burst of load hits both alike
        for cmd, sink, cpu_sink in ((plain_cmd, plain, plain_cpu), (cli_cmd, cli, cli_cpu)):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(
                cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            sink.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_sink.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    from trainrun.runs.launch import training_run

    inproc = []
    for _ in range(n):
        t0 = time.perf_counter()
        info = training_run(script, runs_dir=runs_dir, echo=False)
        inproc.append(time.perf_counter() - t0)
        assert info["status"] == "completed", info
    p, c, i = (statistics.median(x) for x in (plain, cli, inproc))
    print(f"\n1. launch overhead (trivial script, median of {n})")
    print(f"   python script.py                  {fmt(p)}")
    print(
        f"   trainrun run script.py            {fmt(c)}   added {fmt(c - p).strip()}   (target <= 100 ms)"
    )
    print(f"   training_run() in-process         {fmt(i)}   added {fmt(i - p).strip()}")
    print(f"   ratio trainrun run / python       {c / p:8.2f}x")
    pc, cc = statistics.median(plain_cpu), statistics.median(cli_cpu)
    print(
        f"   CPU time (user+sys, both processes): python {fmt(pc).strip()}, trainrun run {fmt(cc).strip()}, added {fmt(cc - pc).strip()}"
    )


# ---------------------------------------------------------------- 2. listing


def _write_file(path: str, text: str) -> None:
    # plain os.open/os.write: no fsync (record.write_json syncs every file, which would
    # make generating 11,000 runs take minutes and measures nothing here), no io objects
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_synthetic(runs_dir: Path, n: int, seed: int = 0) -> None:
    """n finished runs as the launcher leaves them: run.json, flags.json, metrics.jsonl, evaluation.json.

    The JSON text is made by record.dumps (the record's own encoder) and written
    by one process without fsync; each folder's time is then set an hour back,
    as for runs that finished long ago (outside the index's 2 s racy window).
    """
    rng = random.Random(seed)
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = 1_764_000_000
    old = time.time() - 3600
    # the metric history is the same for every run: encode it once
    history = "".join(
        record.dumps({"step": s, "time": 0.0, "loss": 1 / (s + 1)}) + "\n" for s in range(20)
    )
    runs = []
    for i in range(n):
        stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(base + i))
        path = os.path.join(runs_dir, stamp)
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i)) + f".{i % 1000:06d}Z"
        run = {
            "id": stamp,
            "script": "train.py",
            "command": [sys.executable, "train.py", f"--dropout={i}"],
            "status": "completed" if i % 10 else "failed",
            "start": start,
            "end": start,
            "duration": rng.uniform(1, 100),
            "exit_code": 0 if i % 10 else 1,
            "error": None if i % 10 else "RuntimeError: boom",
            "host": record.HOST,
            "pid": 1,
            "pid_start": 1,
            "python": "3.11.7",
            "packages": {"numpy": "2.0", "torch": "2.13.0"},
            "git": {"commit": "0" * 40, "dirty": False},
            "tags": {"tuning_id": f"t{i // 100}"},
        }
        flags = {
            "values": {
                "dropout": rng.choice([0.1, 0.2, 0.3, 0.4]),
                "layer1": rng.choice([64, 128, 256]),
                "activation": "relu",
            },
            "declared": {},
        }
        evaluation = {
            "accuracy": rng.random(),
            "auc": rng.random(),
            "loss": rng.random(),
            "label/mean": 0.27,
        }
        files = {
            record.RUN_FILE: record.dumps(run),
            record.FLAGS_FILE: record.dumps(flags),
            record.EVALUATION_FILE: record.dumps(evaluation),
            record.METRICS_FILE: history,
            # the single-file baseline reads this: everything a listing shows, in one JSON file
            "all.json": record.dumps(
                {
                    **run,
                    "flags": flags["values"],
                    "evaluation": evaluation,
                    "metrics": {"loss": 0.05},
                }
            ),
        }
        runs.append((path, files))

    def write(run: tuple[str, dict[str, str]]) -> None:
        path, files = run
        os.mkdir(path)
        for name, text in files.items():
            _write_file(os.path.join(path, name), text)
        os.utime(path, (old, old))

    # one process, in order: creating files is bound by the file system (threads were
    # tried and were slower here, contending for the one parent folder)
    for run in runs:
        write(run)


def scan_one_json_per_run(runs_dir: Path) -> pd.DataFrame:
    """The baseline: json.load one file per run, flatten, DataFrame from the records."""
    rows = []
    for name in sorted(os.listdir(runs_dir)):
        if name.startswith(".") or name == "archive":
            continue
        with open(runs_dir / name / "all.json", encoding="utf-8") as f:
            rec = json.load(f)
        row = {
            k: rec.get(k)
            for k in ("id", "status", "start", "end", "duration", "script", "exit_code")
        }
        row["run_dir"] = str(runs_dir / name)
        row.update({f"flag_{k}": v for k, v in rec["flags"].items()})
        row.update({f"metric_{k}": v for k, v in rec["metrics"].items()})
        row.update({f"eval_{k.replace('/', '_')}": v for k, v in rec["evaluation"].items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    df["start"] = pd.to_datetime(df["start"], utc=True, format="ISO8601")
    df["end"] = pd.to_datetime(df["end"], utc=True, format="ISO8601")
    return df.sort_values("start", ascending=False)


def sql_query(runs_dir: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        cols = dict(db.execute("SELECT name, sqlcol FROM columns").fetchall())
        return db.execute(
            f"SELECT * FROM runs WHERE {cols['eval_accuracy']} > 0.5 AND {cols['flag_dropout']} < 0.3 "
            f"ORDER BY {cols['eval_accuracy']} DESC"
        ).fetchall()


def drop_index(runs_dir: Path) -> None:
    for f in runs_dir.glob(INDEX_FILE + "*"):
        f.unlink()


def bench_listing(tmp: Path, n: int, repeat: int) -> None:
    runs_dir = tmp / f"runs_{n}"
    t0 = time.perf_counter()
    write_synthetic(runs_dir, n)
    print(f"\n2. ls_runs over {n:,} runs (written in {time.perf_counter() - t0:.1f} s)")
    cpu: dict[str, list[float]] = {
        k: [] for k in ("cold", "warm", "fresh", "query", "changed", "one", "all", "sql")
    }
    cold = []
    for _ in range(2 if n <= 1000 else 1):
        drop_index(runs_dir)
        cold += timed(lambda: ls_runs(runs_dir), 1, cpu["cold"])
    df = ls_runs(runs_dir)
    assert len(df) == n, len(df)
    # the index's folder was just made (the runs folder's time changed): settle as an hour old
    old = time.time() - 3600
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir)
    warm = timed(lambda: ls_runs(runs_dir), repeat, cpu["warm"])

    def first_in_process() -> None:
        _index._TABLES.clear()  # as in a new process (trainrun ls): no table kept from before
        ls_runs(runs_dir)

    fresh = timed(first_in_process, repeat, cpu["fresh"])
    query = timed(
        lambda: ls_runs(runs_dir, filter=FILTER, order="eval_accuracy"), repeat, cpu["query"]
    )
    # one run gets a new evaluation (an atomic rename): the next listing re-reads just that run
    target = runs_dir / df["id"].iloc[n // 2]
    changed: list[float] = []
    for _ in range(repeat):
        record.write_json(target / record.EVALUATION_FILE, {"accuracy": random.random()})
        changed += timed(lambda: ls_runs(runs_dir), 1, cpu["changed"])
    base_one = timed(lambda: scan_one_json_per_run(runs_dir), max(2, repeat // 2), cpu["one"])
    base_all = timed(
        lambda: load_table(runs_dir, use_index=False).frame(), 1 if n > 1000 else 2, cpu["all"]
    )
    sql = timed(lambda: sql_query(runs_dir), repeat, cpu["sql"])
    b = min(base_one)
    rows = [
        ("cold (index deleted, rebuilt)", cold, "cold", "target <= 5 s" if n >= 10_000 else ""),
        ("warm (index up to date)", warm, "warm", "target <= 100 ms" if n >= 10_000 else ""),
        ("warm, first listing in a process", fresh, "fresh", ""),
        ("warm + filter + order", query, "query", ""),
        ("warm after one run changed", changed, "changed", ""),
        ("baseline: one JSON file per run, scanned", base_one, "one", ""),
        ("reference: 4 record files per run, no index", base_all, "all", ""),
        ("reference: one SQL query on the index", sql, "sql", ""),
    ]
    print(f"   {'':<45} {'wall':>11}   {'cpu':>11}   {'vs baseline':>11}")
    for label, walls, key, note in rows:
        print(
            f"   {label:<45} {fmt(min(walls))}   {fmt(min(cpu[key]))}   {b / min(walls):9.2f}x   {note}"
        )
    print(
        f"   (best of {repeat}; warm median {fmt(statistics.median(warm)).strip()}; cpu = this process's CPU time)"
    )
    shutil.rmtree(runs_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 runs only and 3 launches")
    args = parser.parse_args()
    print(
        f"bench/runs.py  python {sys.version.split()[0]}  pandas {pd.__version__}  cores {os.cpu_count()}"
    )
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    c0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="trainrun-bench-") as tmp:
        bench_launch(Path(tmp), 3 if args.quick else 10)
        for n in (1000,) if args.quick else (1000, 10_000):
            bench_listing(Path(tmp), n, repeat=5)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU "
        f"(+ {children.ru_utime + children.ru_stime:.0f} s CPU in child processes)"
    )


if __name__ == "__main__":
    main()
