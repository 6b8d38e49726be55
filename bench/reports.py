"""Report and dashboard figures (not a test): how long pages take on big runs.

Prints, for a run with 100,000 metric points (two series) and 50 MB of output:
the time to build the page data, to render the HTML, and the page size; beside
two baselines measured in the same run: parsing the metric history alone
(``record.read_metrics``) and reading the whole output file. Then a comparison
of two such runs, and the dashboard's ``/api/runs`` over 1,000 runs against
``ls_runs`` itself.

    .venv/bin/python bench/reports.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path

from trainrun.runs import record, report
from trainrun.runs.report import _data as _report_data


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def big_run(runs_dir: Path, points: int = 100_000, output_mb: int = 50) -> Path:
    run_dir = record.new_run_dir(runs_dir)
    record.write_json(
        run_dir / record.RUN_FILE,
        {
            "status": "completed",
            "script": "train.py",
            "start": record.utc_now(),
            "end": record.utc_now(),
            "duration": 60.0,
            "exit_code": 0,
            "host": record.HOST,
            "pid": 1,
        },
    )
    record.write_json(run_dir / record.FLAGS_FILE, {"values": {"lr": 0.01}, "declared": {}})
    record.append_jsonl(
        run_dir / record.METRICS_FILE,
        (
            {"step": i, "time": float(i), "loss": 1.0 / (i + 1), "val_loss": 1.1 / (i + 1)}
            for i in range(points)
        ),
    )
    line = (
        b"epoch 1/10 - loss: 0.123456 - accuracy: 0.9876 - val_loss: 0.2345 - val_accuracy: 0.95\n"
    )
    with open(run_dir / record.OUTPUT_FILE, "wb") as f:
        chunk = line * (1_000_000 // len(line))
        for _ in range(output_mb):
            f.write(chunk)
    (run_dir / record.SOURCE_DIR / "train.py").write_text("print('hi')\n")
    return run_dir


def small_run(runs_dir: Path, i: int) -> None:
    run_dir = record.new_run_dir(runs_dir)
    record.write_json(
        run_dir / record.RUN_FILE,
        {
            "status": "completed",
            "script": "train.py",
            "start": record.utc_now(),
            "end": record.utc_now(),
            "duration": 1.0,
            "exit_code": 0,
            "host": record.HOST,
            "pid": 1,
        },
    )
    record.write_json(
        run_dir / record.FLAGS_FILE, {"values": {"dropout": i / 1000}, "declared": {}}
    )
    record.write_json(run_dir / record.EVALUATION_FILE, {"accuracy": (i % 97) / 97})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        a = big_run(runs_dir)
        b = big_run(runs_dir)
        size = (a / record.OUTPUT_FILE).stat().st_size

        t_metrics, _ = timed(lambda: record.read_metrics(a))
        t_read_output, _ = timed(lambda: (a / record.OUTPUT_FILE).read_bytes())
        t_data, data = timed(lambda: _report_data.run_data(a))
        t_html, html = timed(lambda: report.RunReport(data).html)
        t_cmp, cmp_html = timed(lambda: report.comparison_report([a, b]).html, repeat=1)
        points = [len(s["x"]) for c in data["charts"] for s in c["series"]]

        print("run with 100,000 metric points x 2 series and", f"{size / 1e6:.0f} MB of output:")
        print(f"  page data (read, downsample, head+tail): {t_data:7.3f} s")
        print(
            f"  HTML render:                             {t_html:7.3f} s  ({len(html) / 1e3:,.0f} KB page)"
        )
        print(f"  points drawn per series:                 {max(points):7d}  (of 100,000)")
        print(
            f"  baseline, parse metrics.jsonl alone:     {t_metrics:7.3f} s  "
            f"-> page data / baseline = {t_data / t_metrics:.2f}x"
        )
        print(
            f"  baseline, read the whole output file:    {t_read_output:7.3f} s  (the page reads 200 KB of it)"
        )
        print(
            f"  comparison of two such runs:             {t_cmp:7.3f} s  ({len(cmp_html) / 1e3:,.0f} KB page)"
        )

        many = Path(tmp) / "many"
        for i in range(1000):
            small_run(many, i)
        from trainrun.runs.store import ls_runs

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from starlette.testclient import TestClient
        from trainrun.web.app import create_app

        client = TestClient(create_app(many), base_url="http://127.0.0.1")
        ls_runs(many)  # build the index once: both figures below are warm
        t_ls, _ = timed(lambda: ls_runs(many), repeat=5)
        t_api, resp = timed(lambda: client.get("/api/runs"), repeat=5)
        t_index, _ = timed(lambda: client.get("/"), repeat=5)
        t_filter, _ = timed(
            lambda: client.get("/api/runs", params={"filter": "eval_accuracy > 0.5"}), repeat=5
        )
        print("dashboard over 1,000 runs (warm index):")
        print(f"  ls_runs (baseline):        {t_ls:7.3f} s")
        print(
            f"  GET /api/runs:             {t_api:7.3f} s  ({t_api / t_ls:.1f}x ls_runs, {len(resp.content) / 1e3:,.0f} KB)"
        )
        print(f"  GET /api/runs?filter=...:  {t_filter:7.3f} s")
        print(f"  GET / (table page):        {t_index:7.3f} s")


if __name__ == "__main__":
    main()
