"""Tuning benchmark: parallel workers against one, and the Ray backend's per-trial overhead.

Prints figures, not pass/fail. Every baseline is measured in the same run:

1. 8 short CPU-bound trials with workers=2 against workers=1 (the speed-up on this machine).
2. Per-trial cost of a trivial trial: plain ``python script.py``, a local tuning trial
   (training_run in a worker thread) and a Ray-backend trial (a Ray task calling
   training_run), the last two sequential (workers=1) so that the cost is per trial.

Run: .venv/bin/python bench/tuning.py [--trials 8] [--work 0.8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trainrun.runs.tuning import tuning_run

CPU_SCRIPT = """
import time
from trainrun.runs.flags import flags
from trainrun.runs.active import write_evaluation

FLAGS = flags(seed=0, work=0.8)
# a fixed amount of pure-Python arithmetic, about FLAGS.work seconds on one core
n, acc = int(FLAGS.work * {rate}), 0
for i in range(n):
    acc = (acc * 31 + i + FLAGS.seed) % 1000003
write_evaluation(accuracy=acc / 1000003)
"""

TRIVIAL_SCRIPT = """
from trainrun.runs.flags import flags
from trainrun.runs.active import write_evaluation

FLAGS = flags(seed=0)
write_evaluation(accuracy=0.5)
"""


def _loop_rate() -> int:
    """Iterations of the CPU script's loop per second on this machine."""
    n, acc, began = 2_000_000, 0, time.perf_counter()
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
    return int(n / (time.perf_counter() - began))


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _best_of(repeat: int, fns: dict[str, object]) -> dict[str, float]:
    """The fastest of ``repeat`` timings of each function, the functions interleaved.

    Interleaving spreads the noise of a shared machine evenly over what is compared.
    """
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = _timed(fn)
            best[name] = min(t, best.get(name, t))
    return best


def _load() -> str:
    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--work", type=float, default=0.5, help="seconds of CPU per trial")
    parser.add_argument("--repeat", type=int, default=2, help="best of N, interleaved")
    parser.add_argument("--no-ray", action="store_true")
    opts = parser.parse_args()
    n = opts.trials
    print(f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, {_load()}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cpu = tmp / "cpu" / "train.py"
        cpu.parent.mkdir()
        cpu.write_text(CPU_SCRIPT.format(rate=_loop_rate()))
        trivial = tmp / "trivial" / "train.py"
        trivial.parent.mkdir()
        trivial.write_text(TRIVIAL_SCRIPT)

        # 1. workers=2 against workers=1
        grid = {"seed": list(range(n)), "work": [opts.work]}
        counter = iter(range(10**6))

        busy: dict[int, list[float]] = {1: [], 2: []}

        def cpu_tuning(workers: int):
            def go():
                began = time.perf_counter()
                df = tuning_run(
                    cpu, flags=grid, runs_dir=tmp / f"runs-{next(counter)}", workers=workers,
                    confirm=False, progress=False,
                )  # fmt: skip
                # trials running on average: the run records' durations over the wall time.
                # It shows whether the scheduler keeps every worker busy, whatever the load.
                busy[workers].append(df["duration"].sum() / (time.perf_counter() - began))

            return go

        walls = _best_of(opts.repeat, {1: cpu_tuning(1), 2: cpu_tuning(2)})
        print(f"\n{n} trials of ~{opts.work:.1f} s CPU each")
        for w in (1, 2):
            print(
                f"  workers={w}: {walls[w]:6.2f} s wall ({walls[w] / n:.2f} s per trial), "
                f"{max(busy[w]):.2f} trials running on average (ideal {w})"
            )
        print(
            f"  speed-up workers=2 / workers=1: {walls[1] / walls[2]:.2f}x (ideal on 2 cores: 2x)"
        )

        # 2. per-trial cost of a trivial trial
        grid = {"seed": list(range(n))}

        def plain_runs():
            for _ in range(n):
                subprocess.run([sys.executable, str(trivial)], check=True, cwd=trivial.parent)

        def local_tuning():
            tuning_run(
                trivial, flags=grid, runs_dir=tmp / f"runs-{next(counter)}",
                confirm=False, progress=False,
            )  # fmt: skip

        times = _best_of(opts.repeat, {"plain": plain_runs, "local": local_tuning})
        plain, local = times["plain"], times["local"]
        print(f"\nper trial, a trivial script, {n} trials one at a time")
        print(f"  plain `python train.py` (no record): {plain / n * 1000:7.1f} ms")
        print(
            f"  local backend (recorded run):        {local / n * 1000:7.1f} ms"
            f"  (+{(local - plain) / n * 1000:.1f} ms, {local / plain:.2f}x plain)"
        )
        if opts.no_ray:
            return
        try:
            import ray
        except ImportError:
            print("  ray backend: ray is not installed (pip install 'trainrun[ray]')")
            return
        init = _timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False))
        try:
            # the first tasks start Ray's worker processes: warm them outside the timing
            tuning_run(
                trivial, flags={"seed": [-1, -2]}, runs_dir=tmp / "runs-warm",
                backend="ray", workers=2, confirm=False, progress=False,
            )  # fmt: skip

            def ray_tuning():
                tuning_run(
                    trivial, flags=grid, runs_dir=tmp / f"runs-{next(counter)}", backend="ray",
                    confirm=False, progress=False,
                )  # fmt: skip

            # local measured again beside Ray, so both see the same load
            times = _best_of(opts.repeat, {"local": local_tuning, "ray": ray_tuning})
            remote, local = times["ray"], times["local"]
        finally:
            ray.shutdown()
        print(
            f"  local backend, measured beside Ray:  {local / n * 1000:7.1f} ms\n"
            f"  ray backend (Ray task + run):        {remote / n * 1000:7.1f} ms"
            f"  (+{(remote - local) / n * 1000:.1f} ms over local, {remote / local:.2f}x local)"
        )
        print(f"  starting a local Ray instance (once): {init:.2f} s")
    print(f"\nafter: {_load()}")


if __name__ == "__main__":
    main()
