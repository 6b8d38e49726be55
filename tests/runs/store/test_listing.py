"""ls_runs: columns, order, filter, latest_n, and the index as a cache that heals itself."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from trainrun.exceptions import FilterError
from trainrun.runs import record
from trainrun.runs.store import ls_runs
from trainrun.runs.store._index import INDEX_FILE, RunRecordWarning


def t(minute: int) -> str:
    return f"2026-11-27T10:{minute:02d}:00.000000Z"


def make_three(make_run) -> None:
    make_run(
        "r1",
        start=t(1),
        flags={"dropout": 0.1, "layer1": 128, "activation": "relu", "batch_norm": True},
        metrics=[{"step": 0, "time": 1.0, "loss": 0.9}, {"step": 1, "time": 2.0, "loss": 0.5}],
        evaluation={"accuracy": 0.81, "label/mean": 0.3},
        tags={"tuning_id": "t1"},
    )
    make_run(
        "r2",
        start=t(2),
        status="failed",
        flags={"dropout": 0.4, "layer1": 64, "activation": "tanh", "batch_norm": False},
        metrics=[{"step": 0, "time": 1.0, "loss": 1.2, "val_loss": 1.3}],
    )
    make_run(
        "r3",
        start=t(3),
        flags={"dropout": 0.2, "layer1": 256, "activation": "relu", "batch_norm": True},
        evaluation={"accuracy": 0.9, "label/mean": 0.3},
    )


def test_columns_and_types(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    df = ls_runs(runs_dir)
    # what differs between the runs first: id, status, the flags that differ, the
    # metrics (evaluation, then last logged), then tags, times, script, the folder last
    assert list(df.columns) == [
        "id",
        "status",
        "flag_dropout",
        "flag_layer1",
        "flag_activation",
        "flag_batch_norm",
        "eval_accuracy",
        "eval_label_mean",  # "label/mean" made an identifier
        "metric_loss",
        "metric_val_loss",
        "tag_tuning_id",
        "start",
        "end",
        "duration",
        "script",
        "exit_code",
        "run_dir",
    ]
    assert df["id"].tolist() == ["r3", "r2", "r1"]  # newest first
    assert df["run_dir"].tolist() == [str(runs_dir.resolve() / i) for i in ("r3", "r2", "r1")]
    assert str(df["start"].dtype) == "datetime64[ns, UTC]"
    assert df["start"].iloc[0] == pd.Timestamp("2026-11-27T10:03:00Z")
    assert df["flag_batch_norm"].dtype == bool
    assert df["flag_layer1"].dtype.kind == "i"
    assert df["metric_loss"].tolist() == [
        pytest.approx(x, nan_ok=True) for x in (float("nan"), 1.2, 0.5)
    ]
    assert df["exit_code"].tolist() == [0, 1, 0]
    assert df["status"].tolist() == ["completed", "failed", "completed"]


def test_warm_listing_equals_cold_listing(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    cold = ls_runs(runs_dir)
    assert (runs_dir / INDEX_FILE).exists()
    warm = ls_runs(runs_dir)
    pd.testing.assert_frame_equal(cold, warm)
    # and the same as reading the folders without any index
    from trainrun.runs.store._index import load_table

    scanned = load_table(runs_dir, use_index=False).frame()
    pd.testing.assert_frame_equal(
        warm.sort_values("id").reset_index(drop=True),
        scanned[list(warm.columns)].sort_values("id").reset_index(drop=True),
    )


def test_order_filter_latest_and_columns(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    assert ls_runs(runs_dir, order="eval_accuracy")["id"].tolist() == ["r3", "r1", "r2"]
    assert ls_runs(runs_dir, order="eval_accuracy", decreasing=False)["id"].tolist() == [
        "r1",
        "r3",
        "r2",
    ]
    assert ls_runs(runs_dir, order=["flag_activation", "flag_dropout"], decreasing=False)[
        "id"
    ].tolist() == ["r1", "r3", "r2"]
    assert ls_runs(runs_dir, decreasing=False)["id"].tolist() == ["r1", "r2", "r3"]
    assert ls_runs(runs_dir, filter="eval_accuracy > 0.8")["id"].tolist() == ["r3", "r1"]
    assert ls_runs(runs_dir, filter="status == 'failed' or flag_dropout < 0.15")["id"].tolist() == [
        "r2",
        "r1",
    ]
    # latest_n applies after the filter: the latest two runs that have an accuracy
    assert ls_runs(runs_dir, latest_n=2)["id"].tolist() == ["r3", "r2"]
    assert ls_runs(runs_dir, latest_n=2, filter="eval_accuracy != null")["id"].tolist() == [
        "r3",
        "r1",
    ]
    assert ls_runs(runs_dir, latest_n=2, order="flag_dropout")["id"].tolist() == ["r2", "r3"]
    df = ls_runs(runs_dir, columns=["id", "eval_*"])
    assert list(df.columns) == ["id", "eval_accuracy", "eval_label_mean"]
    assert list(ls_runs(runs_dir, columns="id,status").columns) == ["id", "status"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "eval_acc"}, "Did you mean: eval_accuracy"),
        ({"columns": ["id", "flag_dropuot"]}, "Did you mean: flag_dropout"),
        ({"filter": "flag_dropuot > 1"}, "Did you mean: flag_dropout"),
        ({"latest_n": 0}, "Received: latest_n=0"),
        ({"filter": "status = 'failed'"}, "Use '=='"),
    ],
)
def test_bad_queries_are_clear_errors(runs_dir: Path, make_run, kwargs, message) -> None:
    make_three(make_run)
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        ls_runs(runs_dir, **kwargs)


def test_absent_or_empty_runs_folder_lists_nothing(tmp_path: Path) -> None:
    df = ls_runs(
        tmp_path / "nope",
        filter="eval_accuracy > 0.5",
        order="eval_accuracy",
        columns=["id", "eval_accuracy"],
    )
    assert len(df) == 0 and list(df.columns) == ["id", "eval_accuracy"]
    assert not (tmp_path / "nope").exists()  # listing creates nothing
    (tmp_path / "empty").mkdir()
    assert list(ls_runs(tmp_path / "empty").columns[:2]) == ["id", "status"]


def test_deleted_index_is_rebuilt(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    first = ls_runs(runs_dir)
    for f in runs_dir.glob(INDEX_FILE + "*"):
        f.unlink()
    pd.testing.assert_frame_equal(first, ls_runs(runs_dir))
    assert (runs_dir / INDEX_FILE).exists()


def test_corrupt_index_file_is_rebuilt(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    first = ls_runs(runs_dir)
    for f in runs_dir.glob(INDEX_FILE + "-*"):
        f.unlink()
    (runs_dir / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    pd.testing.assert_frame_equal(first, ls_runs(runs_dir))
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 3


def test_unusable_index_falls_back_to_the_folders(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    (runs_dir / INDEX_FILE).mkdir(parents=True)  # sqlite cannot open a folder
    assert ls_runs(runs_dir)["id"].tolist() == ["r3", "r2", "r1"]


def test_index_with_a_foreign_schema_is_replaced(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    (runs_dir / INDEX_FILE).parent.mkdir()
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        db.execute("CREATE TABLE runs (x)")
    assert len(ls_runs(runs_dir)) == 3


def test_corrupt_run_json_is_skipped_with_a_warning(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    ls_runs(runs_dir)  # index built while all were good
    (runs_dir / "r2" / "run.json").write_text('{"status": "compl')  # in place: folder time kept
    os.utime(runs_dir / "r2")  # as a rename would do; the in-place case is test_refresh_...
    with pytest.warns(RunRecordWarning, match=r"1 run\(s\) skipped.*r2.*not valid JSON"):
        df = ls_runs(runs_dir)
    assert df["id"].tolist() == ["r3", "r1"]
    # a cold rebuild says the same
    for f in runs_dir.glob(INDEX_FILE + "*"):
        f.unlink()
    with pytest.warns(RunRecordWarning, match="r2"):
        assert ls_runs(runs_dir)["id"].tolist() == ["r3", "r1"]


def test_unreadable_flags_file_lists_the_run_without_flags(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    (runs_dir / "r1" / "flags.json").write_text("[1, 2")
    with pytest.warns(RunRecordWarning, match=r"listed in part: r1: flags.json is not valid JSON"):
        df = ls_runs(runs_dir)
    row = df.set_index("id").loc["r1"]
    assert pd.isna(row["flag_dropout"]) and row["eval_accuracy"] == 0.81


def test_folders_added_and_removed_by_hand(
    runs_dir: Path, make_run, tmp_path: Path, write_run
) -> None:
    make_three(make_run)
    assert len(ls_runs(runs_dir)) == 3
    shutil.rmtree(runs_dir / "r2")
    assert ls_runs(runs_dir)["id"].tolist() == ["r3", "r1"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_run(other, "r9", start=t(9), evaluation={"accuracy": 0.99, "auc": 0.5})
    shutil.copytree(other / "r9", runs_dir / "r9")
    df = ls_runs(runs_dir)
    assert df["id"].tolist() == ["r9", "r3", "r1"]
    assert df["eval_auc"].iloc[0] == 0.5
    # hidden folders, files and the archive are not runs
    (runs_dir / ".cache").mkdir()
    (runs_dir / "archive").mkdir()
    (runs_dir / "notes.txt").write_text("x")
    assert len(ls_runs(runs_dir)) == 3


def age_folders(runs_dir: Path) -> None:
    """Folder times a minute old: the index trusts them (outside its 2 s racy window)."""
    old = time.time() - 60
    for folder in runs_dir.iterdir():
        os.utime(folder, (old, old))


def test_changes_to_a_finished_run_are_seen(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    age_folders(runs_dir)
    ls_runs(runs_dir)
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:  # the index holds real folder times now
        assert db.execute("SELECT count(*) FROM runs WHERE mtime > 0").fetchone()[0] == 3
    # evaluation written afterwards through record.write_json (an atomic rename)
    record.write_json(runs_dir / "r2" / "evaluation.json", {"accuracy": 0.5})
    assert ls_runs(runs_dir).set_index("id").loc["r2", "eval_accuracy"] == 0.5
    # a tag added to run.json
    run = record.read_json(runs_dir / "r2" / "run.json")
    run["tags"] = {"note": "rerun"}
    record.write_json(runs_dir / "r2" / "run.json", run)
    assert ls_runs(runs_dir).set_index("id").loc["r2", "tag_note"] == "rerun"


def test_refresh_sees_an_in_place_edit(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    folder = runs_dir / "r3"
    # make the folder's time old, so that the index trusts it (no 2 s "racy" window)
    old = time.time() - 60
    os.utime(folder, (old, old))
    ls_runs(runs_dir)
    with open(folder / "evaluation.json", "w") as f:  # rewritten in place, like some editors do
        f.write('{"accuracy": 0.123}')
    os.utime(folder, (old, old))
    assert ls_runs(runs_dir).set_index("id").loc["r3", "eval_accuracy"] == 0.9  # cached
    assert ls_runs(runs_dir, refresh=True).set_index("id").loc["r3", "eval_accuracy"] == 0.123


def test_a_running_run_is_followed_and_then_reads_as_killed(
    runs_dir: Path, make_run, sleeper
) -> None:
    pid_start = record.process_start_time(sleeper.pid)
    make_run("r1", start=t(1))
    folder = make_run(
        "live",
        start=t(5),
        status="running",
        pid=sleeper.pid,
        pid_start=pid_start,
        metrics=[{"step": 0, "loss": 1.0}],
    )
    old = time.time() - 60
    os.utime(folder, (old, old))
    df = ls_runs(runs_dir).set_index("id")
    assert df.loc["live", "status"] == "running"
    # metrics appended to a running run change no folder time; they are still seen
    record.append_jsonl(folder / "metrics.jsonl", [{"step": 1, "loss": 0.25}])
    assert ls_runs(runs_dir).set_index("id").loc["live", "metric_loss"] == 0.25
    sleeper.kill()
    sleeper.wait()
    assert ls_runs(runs_dir).set_index("id").loc["live", "status"] == "killed"
    assert ls_runs(runs_dir, filter="status == 'killed'")["id"].tolist() == ["live"]


def test_a_folder_without_run_json(runs_dir: Path) -> None:
    young = record.new_run_dir(runs_dir)  # what a launcher makes before its first write
    assert ls_runs(runs_dir)["status"].tolist() == ["running"]  # being set up by a launcher
    old = time.time() - 3600
    os.utime(young, (old, old))
    with pytest.warns(RunRecordWarning, match="run.json is missing"):
        df = ls_runs(runs_dir)
    # a launcher killed before its first write: killed, listed (read_run says the same)
    assert df["status"].tolist() == ["killed"]
    assert record.read_run(young)["status"] == "killed"


def test_many_columns_and_odd_values(runs_dir: Path, make_run) -> None:
    make_run(
        "r1",
        flags={
            "hidden": [256, 128],
            "opts": {"a": 1},
            "AUC": 1,
            "auc": 2,
            "lr-rate": 0.1,
            "x": None,
        },
        evaluation={"accuracy": float("nan")},
    )
    make_run("r2", flags={"hidden": "64"}, start=t(2))
    df = ls_runs(runs_dir).set_index("id")
    assert df.loc["r1", "flag_hidden"] == "[256, 128]"  # lists shown as JSON text
    assert df.loc["r2", "flag_hidden"] == "64"
    assert df.loc["r1", "flag_AUC"] == 1 and df.loc["r1", "flag_auc"] == 2  # case kept apart
    assert df.loc["r1", "flag_lr_rate"] == 0.1
    # NaN is a value (a diverged metric), not a missing one: the column exists and holds NaN
    assert math.isnan(df.loc["r1", "eval_accuracy"]) and "flag_x" not in df.columns


def test_listing_survives_a_concurrent_writer_of_the_index(runs_dir: Path, make_run) -> None:
    make_three(make_run)
    ls_runs(runs_dir)
    db = sqlite3.connect(runs_dir / INDEX_FILE, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        make_run("r4", start=t(4))
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\n"
                "from trainrun.runs.store import _index\n"
                "_index.BUSY_TIMEOUT_S = 0.2\n"
                "from trainrun.runs.store import ls_runs\n"
                "print(ls_runs(sys.argv[1])['id'].tolist())",
                str(runs_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")},
        )
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['r4', 'r3', 'r2', 'r1']"


def test_unchanged_runs_folder_is_not_rescanned_but_changes_are_seen(
    runs_dir: Path, make_run, write_run, tmp_path: Path
) -> None:
    make_three(make_run)
    age_folders(runs_dir)
    old = time.time() - 60
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir)
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        stored = db.execute("SELECT value FROM meta WHERE key = 'dir_mtime'").fetchone()
    assert stored is None  # the index's folder was just made: the time is too fresh to trust
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir)
    with sqlite3.connect(runs_dir / INDEX_FILE) as db:
        stored = db.execute("SELECT value FROM meta WHERE key = 'dir_mtime'").fetchone()
    assert stored == (str(runs_dir.stat().st_mtime_ns),)
    assert ls_runs(runs_dir)["id"].tolist() == ["r3", "r2", "r1"]
    assert stored == (str(runs_dir.stat().st_mtime_ns),)  # the index's own files live elsewhere
    write_run(tmp_path, "r5", start=t(5))
    os.rename(tmp_path / "r5", runs_dir / "r5")  # moved in by hand
    assert ls_runs(runs_dir)["id"].tolist() == ["r5", "r3", "r2", "r1"]
    age_folders(runs_dir)
    os.utime(runs_dir, (old, old))
    ls_runs(runs_dir)
    shutil.rmtree(runs_dir / "r2")
    assert ls_runs(runs_dir)["id"].tolist() == ["r5", "r3", "r1"]


def test_ids_newest_first_match_the_listing(runs_dir: Path, make_run) -> None:
    from trainrun.runs.store._index import load_ids

    make_three(make_run)
    make_run("r0-no-start", start="")  # a run without a start time sorts last
    expected = ["r3", "r2", "r1", "r0-no-start"]
    assert load_ids(runs_dir) == expected  # builds the index
    assert ls_runs(runs_dir)["id"].tolist() == expected
    assert load_ids(runs_dir) == expected  # warm
    for f in runs_dir.glob(INDEX_FILE + "*"):
        f.unlink()
    (runs_dir / INDEX_FILE).mkdir()  # unusable index: read from the folders
    assert load_ids(runs_dir) == expected
    assert ls_runs(runs_dir)["id"].tolist() == expected


def test_stray_folders_are_not_runs(runs_dir: Path, make_run) -> None:
    make_run("r1")
    (runs_dir / "data").mkdir()  # never a run: nothing trainrun writes
    (runs_dir / "notes").mkdir()
    (runs_dir / "notes" / "todo.txt").write_text("x")
    old = time.time() - 3600
    os.utime(runs_dir / "data", (old, old))
    assert ls_runs(runs_dir)["id"].tolist() == ["r1"]
    assert ls_runs(runs_dir, refresh=True)["id"].tolist() == ["r1"]
    # once trainrun writes into it, the folder is a run
    record.write_json(runs_dir / "data" / record.EVALUATION_FILE, {"accuracy": 0.5})
    assert sorted(ls_runs(runs_dir)["id"].tolist()) == ["data", "r1"]


def test_flags_the_same_in_every_run_come_after_the_metrics(runs_dir: Path, make_run) -> None:
    for i, lr in enumerate((0.1, 0.2, 0.3)):
        make_run(
            f"r{i}",
            start=t(i),
            flags={"epochs": 5, "lr": lr, "activation": "relu"},
            evaluation={"accuracy": 0.5 + lr, "loss": 1 - lr},
        )
    df = ls_runs(runs_dir, order="eval_loss")
    assert list(df.columns[:5]) == ["id", "status", "flag_lr", "eval_loss", "eval_accuracy"]
    assert df.columns.get_loc("flag_epochs") > df.columns.get_loc("eval_accuracy")
    assert df.columns[-1] == "run_dir"
    # one run: nothing to compare with, so every flag counts as varying
    one = ls_runs(runs_dir, latest_n=1)
    assert list(one.columns[2:5]) == ["flag_epochs", "flag_lr", "flag_activation"]


def test_what_counts_as_varying() -> None:
    from trainrun.runs.store._columns import constant_columns, varying_columns

    df = pd.DataFrame(
        {
            "flag_same": [1, 1, 1],
            "flag_gap": [1.0, None, 1.0],  # a value and a missing value differ
            "flag_none": [None, None, None],
            "flag_list": [[1, 2], [1, 2], [1, 3]],  # unhashable values still compare
            "flag_same_list": [[1], [1], [1]],
        }
    )
    assert varying_columns(df) == ["flag_gap", "flag_list"]
    assert constant_columns(df) == ["flag_same", "flag_none", "flag_same_list"]
