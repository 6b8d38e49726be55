"""One bad run does not break everything, reproduced first: integers past 64 bits, NaN and
infinities, damaged records; and the index's fast row reader agrees with the record reader."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from tests.runs.store.conftest import write_run

from trainrun.runs import record, report
from trainrun.runs.store import ls_runs, run_info
from trainrun.runs.store._index import _column, _scalar, read_row

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)

HUGE = 2**64 + 1
ENORMOUS = 10**400  # past a float, too


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def trainrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainrun", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.filterwarnings("ignore:.*out of range:trainrun.runs.store.RunRecordWarning")
def test_integers_past_64_bits_are_listed(runs, tmp_path):
    good = write_run(runs, "2026-11-27T10-00-00Z", flags={"seed": 1}, evaluation={"acc": 0.5})
    big = write_run(
        runs,
        "2026-11-27T10-01-00Z",
        flags={"seed": HUGE, "odd": ENORMOUS},
        metrics=[{"step": HUGE, "count": HUGE}],
        evaluation={"acc": 0.9, "n": -HUGE},
    )
    run = record.read_json(big / record.RUN_FILE)
    record.write_json(big / record.RUN_FILE, {**run, "pid": HUGE, "exit_code": HUGE})
    with pytest.warns(UserWarning, match="'pid' is out of range"):
        ls_runs(runs)
    for refresh in (False, True, False):
        df = ls_runs(runs, refresh=refresh).set_index("id")
        assert df.loc[big.name, "flag_seed"] == float(HUGE)
        assert df.loc[big.name, "flag_odd"] == str(ENORMOUS)
        assert df.loc[big.name, "metric_count"] == float(HUGE)
        assert df.loc[big.name, "eval_n"] == -float(HUGE)
        assert df.loc[good.name, "flag_seed"] == 1
    assert ls_runs(runs, filter="flag_seed > 2")["id"].tolist() == [big.name]
    assert run_info(big.name, runs)["flags"]["seed"] == HUGE  # the record keeps it exact
    assert trainrun("ls", "--runs-dir", str(runs)).returncode == 0
    assert trainrun("show", big.name, "--runs-dir", str(runs)).returncode == 0
    report.save_run_view(big.name, tmp_path / "v.html", runs_dir=runs)

    from trainrun.web.app import create_app

    client = TestClient(create_app(runs), base_url="http://127.0.0.1")
    assert client.get("/").status_code == 200
    assert client.get("/api/runs").json()["count"] == 2
    assert client.get(f"/runs/{big.name}").status_code == 200


def test_nan_and_infinities_are_recorded_as_such(runs):
    run = write_run(
        runs,
        "2026-11-27T10-00-00Z",
        flags={"lr": math.inf, "beta": -math.inf, "gamma": math.nan},
        metrics=[{"step": 0, "loss": 1.0}, {"step": 1, "loss": math.nan, "grad": math.inf}],
    )
    info = run_info(run.name, runs)
    assert info["flags"]["lr"] == math.inf and info["flags"]["beta"] == -math.inf
    assert math.isnan(info["flags"]["gamma"])
    assert math.isnan(info["metrics"]["loss"]) and info["metrics"]["grad"] == math.inf
    write_run(runs, "2026-11-27T09-00-00Z", flags={"lr": 0.1, "gamma": 1.0})
    for refresh in (True, False, True):  # through a rebuilt index, the kept table, a scan
        df = ls_runs(runs, refresh=refresh).set_index("id")
        assert (
            df.loc[run.name, "flag_lr"] == math.inf and df.loc[run.name, "metric_grad"] == math.inf
        )
        # NaN is a value: the columns exist, hold NaN and are numeric
        assert math.isnan(df.loc[run.name, "flag_gamma"]) and math.isnan(
            df.loc[run.name, "metric_loss"]
        )
        assert (
            df["flag_gamma"].dtype == float and df.loc["2026-11-27T09-00-00Z", "flag_gamma"] == 1.0
        )
    from trainrun.runs.store._index import load_table

    scanned = load_table(runs, use_index=False).frame().set_index("id")
    assert math.isnan(scanned.loc[run.name, "flag_gamma"])


def damage(runs: Path, kind: str) -> Path:
    run = write_run(runs, "2026-11-27T10-05-00Z", flags={"a": 1}, evaluation={"acc": 0.1})
    if kind == "run.json not UTF-8":
        (run / record.RUN_FILE).write_bytes(b'{"status": "completed", "script": "\xff\xfe"}')
    elif kind == "run.json a list":
        (run / record.RUN_FILE).write_text("[1, 2, 3]")
    elif kind == "run.json nested deep":
        (run / record.RUN_FILE).write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "wrong types":
        fields = {"tags": ["x"], "command": 5, "git": "abc", "pid": "12", "packages": [1]}
        fields |= {"duration": "long", "start": 7, "status": 42, "exit_code": 1.5}
        record.write_json(run / record.RUN_FILE, fields)
    elif kind == "declared not a mapping":
        record.write_json(run / record.FLAGS_FILE, {"values": {"a": 1}, "declared": ["a"]})
    elif kind == "values not a mapping":
        record.write_json(run / record.FLAGS_FILE, {"values": "a=1", "declared": {"a": 3}})
    elif kind == "evaluation a number":
        (run / record.EVALUATION_FILE).write_text("0.5")
    return run


FATAL = ("run.json not UTF-8", "run.json a list", "run.json nested deep")
SOFT = ("wrong types", "declared not a mapping", "values not a mapping", "evaluation a number")


@pytest.mark.parametrize("kind", FATAL + SOFT)
def test_a_damaged_record_names_its_file_and_the_rest_is_listed(runs, kind, tmp_path):
    from trainrun.web.app import create_app

    good = write_run(runs, "2026-11-27T10-00-00Z", evaluation={"acc": 0.9})
    bad = damage(runs, kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = ls_runs(runs)["id"].tolist()
    assert good.name in ids
    assert caught and bad.name in str(caught[0].message)
    shown = trainrun("show", bad.name, "--runs-dir", str(runs))
    client = TestClient(create_app(runs), base_url="http://127.0.0.1")
    page = client.get(f"/runs/{bad.name}")
    assert "Traceback" not in shown.stderr and "Traceback" not in page.text
    if kind in FATAL:
        assert shown.returncode == 2 and "run.json" in shown.stderr, shown.stderr
        assert page.status_code == 500 and "run.json" in page.text
        assert bad.name not in ids
    else:
        assert shown.returncode == 0, shown.stderr
        assert "Problems" in shown.stdout
        assert page.status_code == 200
        report.save_run_view(bad.name, tmp_path / "v.html", runs_dir=runs)
    assert client.get("/").status_code == 200 and good.name in client.get("/").text
    assert client.get(f"/api/runs/{bad.name}", params={"fields": "status"}).status_code in (
        200,
        500,
    )


# ---------------------------------------------------------------- the two readers agree


def awkward(runs: Path, kind: str) -> Path:
    name = "2026-11-27T10-00-00Z"
    if kind == "no run.json":
        run = record.new_run_dir(runs)
        run = run.rename(runs / name)
        record.append_jsonl(run / record.METRICS_FILE, [{"step": 0, "loss": 0.5}])
        old = time.time() - 3600
        os.utime(run, (old, old))
        return run
    run = write_run(runs, name, flags={"x": 1, "label/mean": 2}, evaluation={"acc": 0.5})
    metrics = run / record.METRICS_FILE
    if kind == "nan and null metrics":
        record.append_jsonl(
            metrics,
            [{"step": 0, "loss": 0.5, "acc": 0.1}, {"step": 1, "loss": None, "acc": math.nan}],
        )
    elif kind == "truncated metrics":
        record.append_jsonl(metrics, [{"step": 0, "loss": 0.5}, {"step": 1, "loss": 0.25}])
        with open(metrics, "a") as f:
            f.write('{"step": 2, "loss": 0.1')
    elif kind == "metric lines not objects":
        metrics.write_text('[1, 2]\n"text"\n{"step": 0, "loss": 0.5}\nnull\n')
    elif kind == "evaluation not an object":
        (run / record.EVALUATION_FILE).write_text('["acc", 0.5]')
    elif kind == "flags not an object":
        (run / record.FLAGS_FILE).write_text("42")
    elif kind == "huge and infinite values":
        record.write_json(run / record.EVALUATION_FILE, {"n": HUGE, "inf": math.inf})
    return run


@pytest.mark.parametrize(
    "kind",
    [
        "nan and null metrics",
        "truncated metrics",
        "no run.json",
        "metric lines not objects",
        "evaluation not an object",
        "flags not an object",
        "huge and infinite values",
    ],
)
def test_the_fast_row_reader_agrees_with_the_record_reader(runs, kind):
    run = awkward(runs, kind)
    rec = record.read_run(run)
    row = read_row(str(runs), run.name)
    assert row["id"] == rec["id"] and row["status"] == rec["status"]
    assert bool(row["problem"]) == bool(rec["problems"])
    expected = {}
    for prefix, values in (
        ("tag_", rec.get("tags") or {}),
        ("flag_", rec["flags"]),
        ("metric_", rec["metrics"]),
        ("eval_", rec["evaluation"]),
    ):
        expected.update({_column(prefix, k): _scalar(v) for k, v in values.items()})
    assert row["extra"] == expected
    assert (row["script"], row["exit_code"]) == (rec.get("script"), rec.get("exit_code"))
