"""Stand-ins for training_run and ls_runs, used only while those modules have not landed.

They follow the contracts in the shared brief closely enough to exercise the tuning's
scheduling; `install()` does nothing once the real modules exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

from trainrun.runs import record


def training_run(
    script, flags=None, runs_dir="runs", *, args=(), tags=None, echo=True, env=None, view=None
):
    script = Path(script).resolve()
    run_dir = record.new_run_dir(runs_dir)
    began = time.time()
    run = {
        "id": run_dir.name,
        "script": str(script),
        "command": [sys.executable, str(script), *args],
        "status": "running",
        "start": record.utc_now(),
        "host": record.HOST,
        "pid": os.getpid(),
        "pid_start": record.process_start_time(os.getpid()),
        "tags": dict(tags or {}),
    }
    record.write_json(run_dir / record.RUN_FILE, run)
    child_env = dict(os.environ if env is None else env)
    child_env["TRAINRUN_RUN_DIR"] = str(run_dir)
    child_env["TRAINRUN_FLAGS"] = json.dumps(flags or {})
    with open(run_dir / record.OUTPUT_FILE, "wb") as out:
        proc = subprocess.Popen(
            run["command"], cwd=script.parent, env=child_env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            run.update(status="interrupted", end=record.utc_now(), duration=time.time() - began)
            record.write_json(run_dir / record.RUN_FILE, run)
            raise
    text = (run_dir / record.OUTPUT_FILE).read_text(errors="replace").strip().splitlines()
    run.update(
        status="completed" if code == 0 else "failed",
        exit_code=code,
        error=None if code == 0 else (text[-1] if text else f"exit code {code}"),
        end=record.utc_now(),
        duration=time.time() - began,
    )
    record.write_json(run_dir / record.RUN_FILE, run)
    return record.read_run(run_dir)


def ls_runs(runs_dir="runs", order=None, decreasing=True, filter=None, latest_n=None):
    import pandas as pd

    rows = []
    base = Path(runs_dir)
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        if not (folder / record.RUN_FILE).exists():
            continue
        rec = record.read_run(folder)
        row = {
            k: rec.get(k)
            for k in ("run_dir", "id", "status", "start", "end", "duration", "script", "exit_code")
        }
        row.update({f"tag_{k}": v for k, v in (rec.get("tags") or {}).items()})
        row.update({f"flag_{k}": v for k, v in rec["flags"].items()})
        row.update({f"metric_{k}": v for k, v in rec["metrics"].items()})
        row.update({f"eval_{k.replace('/', '_')}": v for k, v in rec["evaluation"].items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(order or "start", ascending=not decreasing).reset_index(drop=True)
    return df


def install() -> None:
    for name, attrs in (
        ("launch", {"training_run": training_run}),
        ("store", {"ls_runs": ls_runs}),
    ):
        full = f"trainrun.runs.{name}"
        if full in sys.modules or importlib.util.find_spec(full) is not None:
            continue
        module = types.ModuleType(full)
        module.__dict__.update(attrs)
        sys.modules[full] = module
