"""Peak memory per example of every head's evaluation metrics, fed batch by batch.

Each head's accumulator (``MetricAccumulator.for_head``, what ``evaluate`` uses) is
fed N synthetic examples in batches of 65,536 (random logits and labels, weights
uniform on [0, 2]), then asked for its result. Each case runs in a fresh child
process, which resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) after
making one batch (torch imported, the allocator warm), reads its resident memory
there (the baseline), and reads the peak (``VmHWM``) after the result: the
difference over N is the bytes an example the metrics cost, the final sort included.
CPU seconds (``time.process_time``) are per million examples.

Targets (issue 17): <= 32 bytes an example for the heads with exact AUCs (binary, and
binary with thresholds: the score, label and weight, plus the sort), <= 32 bytes a
score for the multi-label head (C scores an example: float32 logit and a label byte
per class, one float32 weight per example, and the sort of the pooled AUC), and
running sums only (no growth with N) for the Poisson, multi-class and regression
heads (the peak then holds one batch's temporaries and the allocator's slack, under
32 MB at N and at N / 4 alike).

Run: ``.venv/bin/python bench/head_metrics_memory.py`` (about a minute on 2 cores;
``--rows N`` to change N, default 4,000,000; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 65_536
CASES = ("binary", "thresholds", "multi_label", "poisson", "multiclass")
CLASSES = 3  # the multi-label head's
#: A running-sum head's peak growth: one batch's temporaries plus allocator slack.
BOUND_MB = 32


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(case: str, rows: int) -> dict:
    import numpy as np
    import torch

    from trainrun.modules.heads import BinaryHead, MultiClassHead
    from trainrun.modules.heads_extra import BinaryClassHead, MultiLabelHead, PoissonRegressionHead
    from trainrun.modules.metrics import MetricAccumulator

    torch.set_num_threads(1)
    head = {
        "binary": BinaryHead(),
        "thresholds": BinaryClassHead(thresholds=[0.1, 0.3, 0.5, 0.7, 0.9]),
        "multi_label": MultiLabelHead(CLASSES),
        "poisson": PoissonRegressionHead(),
        "multiclass": MultiClassHead(4),
    }[case]
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple:
        w = torch.from_numpy(rng.uniform(0, 2, (n, 1)).astype(np.float32))
        if case == "multi_label":
            y = torch.from_numpy((rng.random((n, CLASSES)) < 0.3).astype(np.float32))
            return torch.from_numpy(rng.normal(size=(n, CLASSES)).astype(np.float32)) + y, y, w
        if case == "poisson":
            z = torch.from_numpy(rng.normal(size=(n, 1)).astype(np.float32))
            return z, torch.from_numpy(rng.poisson(np.exp(z.numpy())).astype(np.float32)), w
        if case == "multiclass":
            y = torch.from_numpy(rng.integers(0, 4, n))
            return torch.from_numpy(rng.normal(size=(n, 4)).astype(np.float32)), y, w
        y = torch.from_numpy((rng.random((n, 1)) < 0.3).astype(np.float32))
        return torch.from_numpy(rng.normal(size=(n, 1)).astype(np.float32)) + y, y, w

    acc = MetricAccumulator.for_head(head)
    acc.update(*batch(BATCH), loss=0.1)  # warm: imports, allocator, first chunks
    acc.reset()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    base = _status_kb("VmRSS")
    cpu = time.process_time()
    done = 0
    while done < rows:
        n = min(BATCH, rows - done)
        acc.update(*batch(n), loss=0.1)
        done += n
    result = acc.result()
    cpu = time.process_time() - cpu
    peak = _status_kb("VmHWM")
    return {
        "case": case,
        "rows": rows,
        "growth_mb": (peak - base) / 1024,
        "bytes_per_example": (peak - base) * 1024 / rows,
        "cpu_s_per_million": cpu / rows * 1e6,
        "metrics": len(result),
    }


def run_case(case: str, rows: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = env.get("PYTHONPATH") or str(ROOT / "src")
    cmd = [sys.executable, __file__, "--child", case, "--rows", str(rows)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--quick", action="store_true", help="a smoke run (200,000 rows)")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rows)))
        return
    rows = 200_000 if args.quick else args.rows
    load = os.getloadavg()
    print(f"{rows:,} examples per head, batches of {BATCH:,}, weighted, 1 thread")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'head':>12}  {'peak MB':>8}  {'bytes/example':>13}  {'bytes/score':>11}  ", end="")
    print(f"{'CPU s/1M':>8}  target")
    verdicts = []
    for case in CASES:
        r = run_case(case, rows)
        per = r["bytes_per_example"]
        scores = CLASSES if case == "multi_label" else 1
        if case in ("binary", "thresholds", "multi_label"):
            target, met = "<= 32 bytes a score", per / scores <= 32
        else:
            # running sums: the peak holds one batch's temporaries (and the allocator's
            # slack, a few MB that vary from run to run) whatever N
            small = run_case(case, rows // 4)
            target = (
                f"bounded: {small['growth_mb']:.1f} MB at N/4, {r['growth_mb']:.1f} MB at N "
                f"(< {BOUND_MB} MB at both)"
            )
            met = max(r["growth_mb"], small["growth_mb"]) < BOUND_MB
        verdicts.append(met)
        print(
            f"{case:>12}  {r['growth_mb']:>8.1f}  {per:>13.2f}  {per / scores:>11.2f}  "
            f"{r['cpu_s_per_million']:>8.2f}  {target}: {'met' if met else 'NOT met'}"
        )
    print(f"\nall targets {'met' if all(verdicts) else 'NOT met'}")


if __name__ == "__main__":
    main()
