"""prefetch(): a streamed input read ahead in a thread, in order, errors where they happened."""

from __future__ import annotations

import threading

import pytest

from trainrun.inputs._prefetch import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_reader_is_raised_at_its_item() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader(wait_until) -> None:
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = set(threading.enumerate())  # a parked reading's thread may be alive already
    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    [thread] = [t for t in threading.enumerate() if t not in before]
    assert thread.name == "trainrun-prefetch"
    stream.close()
    wait_until(
        lambda: not thread.is_alive(),
        10,
        message="the prefetch thread to end",
    )
    assert len(produced) <= 5  # it read ahead a little, not forever


AT_EXIT = """
import atexit, sys, threading
from pathlib import Path

out = Path(sys.argv[1])


def report() -> None:  # registered first, so it runs after trainrun's own exit handlers
    alive = [t.name for t in threading.enumerate() if t.name == "trainrun-prefetch"]
    out.write_text(",".join(alive) or "none")


atexit.register(report)
import numpy as np, pandas as pd, torch
import trainrun as tr
from trainrun.inputs._prefetch import prefetch

torch.set_num_threads(1)
rng = np.random.default_rng(0)
pd.DataFrame({"x": rng.normal(size=4000), "y": rng.integers(0, 2, 4000)}).to_parquet(
    out.with_suffix(".parquet"), row_group_size=500
)
fn = tr.input_fn(out.with_suffix(".parquet"), response="y", batch_size=16, chunk_size=500,
                 epochs=None, seed=1)
est = tr.LinearClassifier(feature_columns=[tr.numeric_column("x")], model_dir=out.parent / "m",
                          config=tr.RunConfig(progress=False, tensorboard=False, seed=0))
est.train(fn, steps=3)  # stops early: the reading is parked with its read-ahead thread
left = prefetch(iter(range(10**9)), depth=2)
next(left)  # a reading nobody closes
assert [t.name for t in threading.enumerate()].count("trainrun-prefetch") == 2
"""


def test_no_read_ahead_thread_outlives_the_script(tmp_path) -> None:
    # A daemon thread still inside pyarrow or torch when the interpreter finalizes is
    # killed by a forced unwind that sometimes aborts the whole process (SIGABRT,
    # "terminate called without an active exception") after the script has finished.
    import subprocess
    import sys

    script = tmp_path / "leave.py"
    script.write_text(AT_EXIT)
    out = tmp_path / "alive.txt"
    proc = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text() == "none"
