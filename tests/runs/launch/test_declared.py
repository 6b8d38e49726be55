"""Overrides are checked against the script's declared flags before any run folder exists."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from trainrun.exceptions import FlagError
from trainrun.runs import record
from trainrun.runs.launch import training_run
from trainrun.runs.launch._declared import Declaration, script_flags

ARGPARSE = """\
import argparse, pathlib
p = argparse.ArgumentParser()
p.add_argument("--learning-rate", type=float, default=0.1, help="step size")
p.add_argument("--epochs", type=int, default=3, choices=[1, 2, 3, 5])
p.add_argument("--verbose", action="store_true")
p.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True)
p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("model.bin"))
args = p.parse_args()
print("parsed", args.learning_rate, args.epochs, args.verbose, args.shuffle, flush=True)
"""

DECLARES_THEN_WORKS = """\
import pathlib
from trainrun import flags
FLAGS = flags(rate=0.1, layers=2)
marker = pathlib.Path(__file__).with_name("body-ran")
marker.write_text(marker.read_text() + "x" if marker.exists() else "x")
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TRAINRUN_RUN_DIR", "TRAINRUN_FLAGS", "TRAINRUN_FLAGS_PROFILE"):
        monkeypatch.delenv(var, raising=False)


def test_argparse_script_records_parsed_arguments_with_defaults(tmp_path):
    script = write(tmp_path, "ap.py", ARGPARSE)
    run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed"
    assert run["flags"] == {
        "learning_rate": 0.1,
        "epochs": 3,
        "verbose": False,
        "shuffle": True,
        "out": "model.bin",
    }
    assert run["declared_flags"]["learning_rate"]["type"] == "numeric"
    assert run["declared_flags"]["learning_rate"]["description"] == "step size"
    assert run["declared_flags"]["epochs"]["choices"] == [1, 2, 3, 5]


def test_argparse_overrides_go_to_the_parser_in_its_own_spelling(tmp_path):
    script = write(tmp_path, "ap.py", ARGPARSE)
    flags = {"learning_rate": "0.5", "epochs": 5, "verbose": True, "shuffle": False}
    run = training_run(script, flags=flags, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed", run["error"]
    assert run["command"][2:] == ["--learning-rate=0.5", "--epochs=5", "--verbose", "--no-shuffle"]
    assert "parsed 0.5 5 True False" in (Path(run["run_dir"]) / "output.log").read_text()
    assert run["flags"]["learning_rate"] == 0.5 and run["flags"]["shuffle"] is False
    flags_json = record.read_json(Path(run["run_dir"]) / record.FLAGS_FILE)
    assert flags_json["sources"]["epochs"] == "run" and flags_json["sources"]["out"] == "default"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"learning_rte": 0.5}, r"Unknown flag 'learning_rte'.*Did you mean 'learning_rate'"),
        ({"epochs": 4}, r"'epochs' of .*ap.py must be one of 1, 2, 3, 5"),
        ({"epochs": "many"}, r"'epochs' of .*ap.py expects a whole number"),
        ({"verbose": "maybe"}, r"'verbose' of .*ap.py expects true or false"),
    ],
)
def test_argparse_script_refuses_bad_overrides_with_no_folder(tmp_path, flags, message):
    script = write(tmp_path, "ap.py", ARGPARSE)
    with pytest.raises(FlagError, match=message):
        training_run(script, flags=flags, runs_dir=tmp_path / "runs", echo=False)
    assert not (tmp_path / "runs").exists()


def test_mistyped_value_for_a_declared_flag_is_refused_before_the_run(tmp_path):
    script = write(tmp_path, "t.py", DECLARES_THEN_WORKS)
    with pytest.raises(FlagError, match="'layers' expects a whole number.*no run was started"):
        training_run(script, flags={"layers": "two"}, runs_dir=tmp_path / "runs", echo=False)
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "body-ran").exists()  # the check never ran the script's body


def test_the_check_runs_nothing_after_the_declaration(tmp_path):
    script = write(tmp_path, "t.py", DECLARES_THEN_WORKS)
    run = training_run(script, flags={"rate": 0.3}, runs_dir=tmp_path / "runs", echo=False)
    assert run["status"] == "completed" and run["flags"] == {"rate": 0.3, "layers": 2}
    assert (tmp_path / "body-ran").read_text() == "x"  # once: the run's, not the probe's


def test_a_script_naming_no_parser_is_not_started_to_be_checked(tmp_path):
    script = write(tmp_path, "plain.py", "open(__file__ + '.ran', 'w').close()\n")
    decl = script_flags(script, tmp_path, {}, script.read_bytes())
    assert decl == Declaration("none")
    assert not Path(f"{script}.ran").exists()


def test_a_project_module_may_declare_the_flags(tmp_path):
    write(tmp_path, "config.py", "from trainrun import flags\nFLAGS = flags(depth=3)\n")
    script = write(tmp_path, "main.py", "from config import FLAGS\nprint(FLAGS.depth)\n")
    run = training_run(script, flags={"depth": 7}, runs_dir=tmp_path / "runs", echo=False)
    assert run["flags"] == {"depth": 7}
    with pytest.raises(FlagError, match="Unknown flag 'deph'"):
        training_run(script, flags={"deph": 7}, runs_dir=tmp_path / "runs", echo=False)


def test_a_slow_declaration_is_passed_unchecked_and_the_script_still_refuses(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("TRAINRUN_PROBE_TIMEOUT", "0.5")
    script = write(
        tmp_path,
        "slow.py",
        "import time\ntime.sleep(1.5)\nfrom trainrun import flags\nflags(a=1)\n",
    )
    run = training_run(script, flags={"b": 2}, runs_dir=tmp_path / "runs", echo=False)
    assert "could not check the flags of" in capfd.readouterr().err
    # flags() in the script refused the override: the record never lists b=2
    assert run["status"] == "failed" and "Unknown flag 'b'" in run["error"]
    assert "b" not in run["flags"]


def test_the_declaration_is_learned_once_per_script_content(tmp_path):
    script = write(tmp_path, "t.py", DECLARES_THEN_WORKS)
    first = script_flags(script, tmp_path, {}, script.read_bytes())
    start = time.perf_counter()
    again = script_flags(script, tmp_path, {}, script.read_bytes())
    assert again is first and time.perf_counter() - start < 0.05
    script.write_text(script.read_text().replace("layers=2", "layers=2, depth=1"))
    changed = script_flags(script, tmp_path, {}, script.read_bytes())
    assert set(changed.flags) == {"rate", "layers", "depth"}


def test_git_state_ignores_the_runs_folder(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    script = write(tmp_path, "train.py", "print('hi')\n")
    git("init", "-q")
    git("add", "train.py")
    git("commit", "-qm", "train")
    for _ in range(2):  # the second run sees the first run's folder: still clean
        run = training_run(script, runs_dir=tmp_path / "runs", echo=False)
        assert run["git"]["dirty"] is False and run["git"]["commit"]
    (tmp_path / "notes.txt").write_text("untracked")
    assert training_run(script, runs_dir=tmp_path / "runs", echo=False)["git"]["dirty"] is True


def test_the_check_stops_a_script_at_its_first_metric_when_nothing_was_declared(tmp_path):
    script = write(
        tmp_path,
        "noflags.py",
        """\
        import pathlib
        from trainrun import log_metrics
        log_metrics(step=0, loss=1.0)  # the flags were never declared
        pathlib.Path(__file__).with_name("trained").write_text("yes")
        """,
    )
    with pytest.raises(FlagError, match="declares no flags"):
        training_run(script, flags={"lr": 0.1}, runs_dir=tmp_path / "runs", echo=False)
    assert not (tmp_path / "trained").exists() and not (tmp_path / "runs").exists()


def test_declarations_are_kept_on_disk_between_processes(tmp_path, monkeypatch):
    from trainrun.runs.launch import _declared

    monkeypatch.setenv("TRAINRUN_CACHE_DIR", str(tmp_path / "cache"))
    counter = tmp_path / "probed"
    script = write(
        tmp_path,
        "t.py",
        f"open({str(counter)!r}, 'a').write('x')\nfrom trainrun import flags\nflags(a=1)\n",
    )
    first = script_flags(script, tmp_path, {}, script.read_bytes())
    assert counter.read_text() == "x" and set(first.flags) == {"a"}
    _declared._cache.clear()  # as a new `trainrun run` process would start
    again = script_flags(script, tmp_path, {}, script.read_bytes())
    assert again == first and counter.read_text() == "x"  # not started again
    write(tmp_path, "helper.py", "X = 1\n")  # a project module changed: probe again
    _declared._cache.clear()
    script_flags(script, tmp_path, {}, script.read_bytes())
    assert counter.read_text() == "xx"
