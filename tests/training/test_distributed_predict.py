"""predict_to and evaluate under torchrun with 2 local processes (gloo, one thread each).

The models are trained here, in one process; the 2 ranks restore them from their
model directories, predict and evaluate; the files and metrics they make must equal
this process's, exactly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import trainrun as tr
from trainrun.modules.heads_extra import BinaryClassHead, MultiLabelHead

ROOT = Path(__file__).resolve().parents[2]
QUIET = tr.RunConfig(seed=0, progress=False, tensorboard=False, num_threads=1)


class Net(torch.nn.Module):
    """A small top-level model_fn (the ranks rebuild it from its name)."""

    def __init__(self, in_features: int, units: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(in_features, 8)
        self.out = torch.nn.Linear(8, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


def frame(n: int = 203, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    k = rng.choice(["a", "b", "c"], n)
    score = 2.0 * x + np.where(k == "a", 1.5, 0.0) - 0.3 + rng.normal(scale=0.8, size=n)
    return pd.DataFrame(
        {
            "cid": [f"C{i:04d}" for i in range(n)],
            "x": x,
            "k": k,
            "w": rng.uniform(0.5, 2.0, n),
            "y": (score > 0) * 1,
            "tags": [
                [0 if v > 0 else 1] + ([2] if c == "b" else []) for v, c in zip(x, k, strict=True)
            ],
        }
    )


def columns() -> list:
    k = tr.categorical_column_with_vocabulary_list("k", ["a", "b", "c"])
    return [tr.numeric_column("x"), tr.indicator_column(k)]


def model(kind: str, model_dir: Path):
    if kind == "dnn":
        return tr.DNNClassifier(
            hidden_units=[8], feature_columns=columns(), model_dir=model_dir, config=QUIET
        )
    head = (
        MultiLabelHead(3, thresholds=[0.3, 0.6])
        if kind == "multi_label"
        else BinaryClassHead(thresholds=[0.3, 0.7])
    )
    return tr.Estimator(
        model_fn=Net,
        head=head,
        feature_columns=columns(),
        weight_column="w",
        params=None,
        model_dir=model_dir,
        config=QUIET,
    )


RESPONSE = {"dnn": "y", "multi_label": "tags", "thresholds": "y"}

WORKER = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})  # the model_fn's module has the name it has here
from tests.training.test_distributed_predict import RESPONSE, frame, model
import trainrun as tr
from trainrun.exceptions import InputError
from trainrun.training import distributed

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
df = frame()
est = model("dnn", out / "dnn")
mem = tr.input_fn(df, shuffle=False, batch_size=16)
est._require_trained("predict")
seen = []  # the rows this rank's network predicted
est.network_.register_forward_hook(lambda module, args, output: seen.append(output.shape[0]))
rows = {{}}
for name, fn, keys in [
    ("mem.parquet", mem, None),
    ("mem.csv", mem, ["logistic", "classes"]),
    ("pq.parquet", tr.input_fn(out / "pq", shuffle=False, batch_size=16), None),
    ("csv.csv", tr.input_fn(out / "csv", shuffle=False, batch_size=16), None),
    ("one.parquet", tr.input_fn(out / "one.csv", shuffle=False, batch_size=16), None),
]:
    before = len(seen)
    path = est.predict_to(out / name, fn, predict_keys=keys, id_columns=["cid"])
    assert path.exists(), path
    rows[name] = int(sum(seen[before:]))
(out / f"rows-{{rank}}.json").write_text(json.dumps(rows))
try:  # a mistake every rank makes is refused on every rank, before any prediction
    est.predict_to(out / "bad.parquet", mem, id_columns=["cdi"])
except InputError as exc:
    (out / f"bad-{{rank}}.txt").write_text(str(exc))
if rank == 1:  # a rank that fails mid-prediction stops every rank, and no file appears
    est.head_.predictions = lambda logits: 1 / 0
try:
    est.predict_to(out / "failed.parquet", mem, id_columns=["cid"])
except Exception as exc:
    (out / f"failed-{{rank}}.txt").write_text(f"{{type(exc).__name__}}: {{exc}}")
if rank == 1:
    del est.head_.predictions
if rank == 1:  # predict() is rank-local: one rank predicts alone, with no collective
    (out / "alone.json").write_text(json.dumps(sum(1 for _ in est.predict(mem))))
distributed.barrier()
for kind in ("multi_label", "thresholds"):
    result = model(kind, out / kind).evaluate(
        tr.input_fn(df, response=RESPONSE[kind], batch_size=16, shuffle=False)
    )
    (out / f"eval-{{kind}}-{{rank}}.json").write_text(json.dumps(result))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(script: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT / "src"),
        "TRAINRUN_DIST_TIMEOUT": "60",
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
        "--rdzv-backend=static", "--master-addr=127.0.0.1", f"--master-port={free_port()}",
        "--max-restarts=0", "--monitor-interval=0.05", str(script), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=script.parent
    )


def write_inputs(df: pd.DataFrame, out: Path) -> None:
    """Parquet: 2 files of 4 and 3 row groups (7 units); CSV: 3 files; 1 CSV file."""
    (out / "pq").mkdir()
    df.iloc[:120].to_parquet(out / "pq" / "a.parquet", row_group_size=30)
    df.iloc[120:].to_parquet(out / "pq" / "b.parquet", row_group_size=30)
    (out / "csv").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[rows].to_csv(out / "csv" / f"part-{i}.csv", index=False)
    df.to_csv(out / "one.csv", index=False)


@pytest.mark.slow
def test_two_processes_write_the_files_and_metrics_of_one(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    df = frame()
    write_inputs(df.drop(columns=["tags"]), out)
    torch.set_num_threads(1)
    for kind in ("dnn", "multi_label", "thresholds"):
        train = tr.input_fn(df, response=RESPONSE[kind], batch_size=32, epochs=None, seed=1)
        model(kind, out / kind).train(train, steps=20)
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT)))
    proc = torchrun(script, str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    est = model("dnn", out / "dnn")
    alone = tmp_path / "alone"
    mem = tr.input_fn(df, shuffle=False, batch_size=16)
    cases = {
        "mem.parquet": (mem, None),
        "mem.csv": (mem, ["logistic", "classes"]),
        "pq.parquet": (tr.input_fn(out / "pq", shuffle=False, batch_size=16), None),
        "csv.csv": (tr.input_fn(out / "csv", shuffle=False, batch_size=16), None),
        "one.parquet": (tr.input_fn(out / "one.csv", shuffle=False, batch_size=16), None),
    }
    for name, (fn, keys) in cases.items():
        want = est.predict_to(alone / name, fn, predict_keys=keys, id_columns=["cid"])
        read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
        got = read(out / name)
        assert got["cid"].tolist() == df["cid"].tolist(), name  # every row once, in order
        pd.testing.assert_frame_equal(got, read(want), check_exact=True, obj=name)
        if name.endswith(".csv"):
            assert (out / name).read_bytes() == want.read_bytes(), name
    # each rank predicted its share: whole batches of 16 dealt in turn (13 in memory),
    # Parquet row groups of 30 (7 units), CSV files (3 of 68, 68, 67 rows); one CSV
    # file is fewer than the ranks, and rank 0 predicts it alone
    shares = {"mem.parquet": (107, 96), "pq.parquet": (113, 90), "csv.csv": (135, 68)}
    shares.update({"mem.csv": shares["mem.parquet"], "one.parquet": (203, 0)})
    for r in (0, 1):
        rows = json.loads((out / f"rows-{r}.json").read_text())
        assert rows == {name: share[r] for name, share in shares.items()}, r
    # the parts are gone: only the inputs and the joined files stay
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    for r in (0, 1):
        assert (
            "'cdi' is not a column of the input. Did you mean 'cid'?"
            in (out / f"bad-{r}.txt").read_text()
        )
    assert not (out / "bad.parquet").exists()
    assert (out / "failed-1.txt").read_text() == "ZeroDivisionError: division by zero"
    assert (out / "failed-0.txt").read_text() == (
        "InputError: predict_to() stopped: rank 1 of 2 failed predicting its share, so no "
        "file was written. Its error: ZeroDivisionError: division by zero"
    )
    assert not (out / "failed.parquet").exists()
    assert json.loads((out / "alone.json").read_text()) == len(df)

    # evaluation of the thresholds and multi-label heads: 2 processes equal 1, exactly
    for kind in ("multi_label", "thresholds"):
        want = model(kind, out / kind).evaluate(
            tr.input_fn(df, response=RESPONSE[kind], batch_size=16, shuffle=False)
        )
        assert any(k.startswith("precision/positive_threshold_0.3") for k in want)
        for r in (0, 1):
            got = json.loads((out / f"eval-{kind}-{r}.json").read_text())
            assert got == want, kind


def test_predict_to_in_one_process_is_unchanged_by_the_sharded_path(tmp_path: Path) -> None:
    df = frame()
    est = model("dnn", tmp_path / "m")
    est.train(tr.input_fn(df, response="y", batch_size=32, epochs=None, seed=1), steps=3)
    path = est.predict_to(tmp_path / "s.parquet", tr.input_fn(df, shuffle=False), id_columns="cid")
    got = pd.read_parquet(path)
    assert got["cid"].tolist() == df["cid"].tolist()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
