"""`trainrun ls` without pandas: plain rows from the index print the same table as ls_runs()."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from tests.runs.store.conftest import write_run
from tests.runs.store.test_pushdown import FILTERS, make_mixed, t

from trainrun.cli._table import format_table
from trainrun.exceptions import FilterError
from trainrun.runs import record
from trainrun.runs.store import _pushdown, ls_runs
from trainrun.runs.store._rows import Rows, ls_rows

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(params=["journal", "stat"])
def runs_dir(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Path:
    """Mixed runs (missing values, NaN, bools, texts beside numbers), listed through the
    change journal and through a stat of every folder (both freshness rules)."""
    if request.param == "journal":
        monkeypatch.setattr(_pushdown, "JOURNAL_MIN_RUNS", 1)
    folder = tmp_path / "runs"
    folder.mkdir()
    make_mixed(lambda name, **kw: write_run(folder, name, **kw))
    write_run(
        folder,
        "r5",
        start=t(5),
        flags={"dropout": 0.1, "units": 1234567, "act": "relu", "bn": True, "mixed": 2.5},
        evaluation={"accuracy": 0.5, "loss": 0.25},
        metrics=[{"step": 0, "loss": 0.7}, {"step": 1, "loss": 0.6}],
    )
    return folder


def both(runs_dir: Path, **kw: Any) -> tuple[Any, Rows]:
    rows = ls_rows(runs_dir, **kw)
    assert rows is not None, f"the rows path should answer {kw}"
    return ls_runs(runs_dir, **kw), rows


def assert_same_tables(df: Any, rows: Rows, order: Any = None) -> None:
    assert rows.columns == list(df.columns)
    assert len(rows) == len(df)
    assert rows.column("id") == df["id"].tolist()
    for width in (200, 60, 30):
        for show_all in (False, True):
            kw = {"width": width, "order": order, "show_all": show_all}
            assert format_table(rows, **kw) == format_table(df, **kw)
    listed = list(df.columns)
    assert format_table(rows, columns=listed) == format_table(df, columns=listed)


OPTIONS = [
    {},
    {"latest_n": 2},
    {"latest_n": 3, "decreasing": False},
    {"limit": 2, "decreasing": False},
    {"order": "eval_accuracy"},
    {"order": "eval_accuracy", "limit": 2},
    {"order": "eval_loss", "decreasing": False},  # NaN and missing last
    {"order": "flag_units", "latest_n": 4},
    {"order": "flag_mixed"},  # numbers and texts: ordered by their text, as pandas does
    {"order": "flag_bn", "limit": 3},
    {"order": "start", "decreasing": False, "latest_n": 10},
    {"order": "status", "filter": "flag_dropout < 0.35"},
    {"filter": "eval_accuracy > 0.6", "order": "eval_accuracy", "limit": 1},
    {"columns": "id,eval_*,flag_units"},
    {"columns": ["status", "id"], "latest_n": 2},
    {"filter": "flag_act == 'relu'", "latest_n": 2},
]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_rows_print_the_same_table_as_the_dataframe(runs_dir: Path, options: dict) -> None:
    df, rows = both(runs_dir, **options)
    assert_same_tables(df, rows, options.get("order"))


@pytest.mark.parametrize("expr", FILTERS)
def test_every_pushed_filter_gives_the_same_rows(runs_dir: Path, expr: str) -> None:
    df, rows = both(runs_dir, filter=expr)
    assert_same_tables(df, rows)


def test_numbers_with_gaps_show_as_pandas_shows_them(runs_dir: Path) -> None:
    # flag_units holds integers in every run: shown as integers; eval_accuracy has gaps
    _, rows = both(runs_dir)
    assert rows.column("flag_units") == [1234567, 0, 256, 64, 128]
    assert [v is None for v in rows.column("eval_accuracy")] == [False, True, False, True, False]
    assert format_table(rows, width=200).splitlines()[1].split()[:2] == ["r5", "completed"]
    _, top = both(runs_dir, filter="eval_accuracy > 0", columns="id,flag_units,eval_accuracy")
    assert top.column("flag_units") == [1234567, 256, 128]  # no gaps among these


def test_filters_sql_does_not_cover_are_left_to_ls_runs(runs_dir: Path) -> None:
    for expr in ("flag_dropout < eval_accuracy", "run_dir != null", "start > 5"):
        assert ls_rows(runs_dir, filter=expr) is None
    assert ls_rows(runs_dir, filter="flag_dropout < 0.3", refresh=True) is None
    assert ls_rows("s3://bucket/prefix", latest_n=2) is None
    rows = ls_rows(runs_dir, refresh=True, latest_n=2)  # a re-read without a filter: rows
    assert rows is not None and rows.column("id") == ["r5", "r4"]


def test_errors_are_the_dataframe_paths_errors(runs_dir: Path) -> None:
    for kw in (
        {"order": "eval_acc", "latest_n": 2},
        {"order": "eval_acc"},
        {"filter": "eval_acuracy > 1"},
        {"columns": "nope"},
        {"latest_n": 0},
    ):
        with pytest.raises(FilterError) as from_df:
            ls_runs(runs_dir, **kw)
        with pytest.raises(FilterError) as from_rows:
            ls_rows(runs_dir, **kw)
        assert str(from_rows.value) == str(from_df.value)


def test_a_run_changed_since_indexing_shows_its_current_state(runs_dir: Path) -> None:
    assert ls_rows(runs_dir, latest_n=1).column("status") == ["completed"]  # indexed
    run = record.read_json(runs_dir / "r5" / record.RUN_FILE)
    record.write_json(runs_dir / "r5" / record.RUN_FILE, {**run, "status": "failed"})
    record.write_json(runs_dir / "r5" / record.EVALUATION_FILE, {"accuracy": 0.99})
    rows = ls_rows(runs_dir, latest_n=1, columns="id,status,eval_accuracy")
    assert rows.column("status") == ["failed"] and rows.column("eval_accuracy") == [0.99]
    write_run(runs_dir, "r6", start=t(6), status="failed")  # a new run appears at once
    assert ls_rows(runs_dir, latest_n=1).column("id") == ["r6"]


def test_broken_records_warn_as_ls_runs_warns(runs_dir: Path) -> None:
    (runs_dir / "r2" / record.RUN_FILE).write_text("{not json")
    for listing in (ls_runs, ls_rows):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ids = listing(runs_dir, latest_n=10, columns="id")
        assert "r2" not in (ids.column("id") if isinstance(ids, Rows) else ids["id"].tolist())
        assert any("r2" in str(w.message) for w in caught)


def trainrun_ls(runs_dir: Path, *args: str) -> tuple[str, bool]:
    """`trainrun ls ARGS` in a child process: (what it printed, whether pandas was imported)."""
    code = (
        "import sys\n"
        "from trainrun.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('pandas' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", code, "ls", "--runs-dir", str(runs_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    imported = proc.stderr.strip().splitlines()[-1]
    return proc.stdout, imported == "True True"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--latest", "20"),
        ("--filter", "eval_accuracy > 0.6 and flag_dropout < 0.3", "--order", "eval_accuracy"),
        ("--order", "eval_accuracy", "--limit", "2", "--asc"),
        ("--columns", "id,flag_*", "--latest", "3"),
        ("--all", "r1", "r3"),
    ],
)
def test_trainrun_ls_prints_the_table_without_importing_pandas(
    runs_dir: Path, args: tuple[str, ...]
) -> None:
    out, imported = trainrun_ls(runs_dir, *args)
    assert not imported
    assert out.splitlines()[0].split()[:2] in (["id", "status"], ["id", "flag_dropout"])


def test_trainrun_ls_falls_back_to_pandas_where_sql_cannot_answer(runs_dir: Path) -> None:
    out, imported = trainrun_ls(runs_dir, "--filter", "flag_dropout < eval_accuracy")
    assert imported
    df = ls_runs(runs_dir, filter="flag_dropout < eval_accuracy")
    assert out.rstrip("\n") == format_table(df, width=200)
    csv, imported = trainrun_ls(runs_dir, "--format", "csv", "--latest", "2")
    assert imported and csv.splitlines()[0].startswith("id,status")
