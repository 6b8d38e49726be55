"""`trainrun tag | note | name`, and the options every verb shares (--runs-dir, --filter, --latest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.runs.store.conftest import write_run

from trainrun.cli import main


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    for i, lr in enumerate((0.1, 0.2, 0.3)):
        write_run(
            folder,
            f"2026-11-27T10-0{i}-00Z",
            start=f"2026-11-27T10:0{i}:00.000000Z",
            flags={"lr": lr, "epochs": 5},
            evaluation={"accuracy": 0.5 + lr},
        )
    return folder


def record(runs: Path, run_id: str) -> dict:
    return json.loads((runs / run_id / "run.json").read_text())


def test_tag_note_and_name_from_the_command_line(runs: Path, capsys) -> None:
    assert main(["tag", "0", "--add", "best", "--add", "data=v2", "--runs-dir", str(runs)]) == 0
    assert "tags: best, data=v2" in capsys.readouterr().out
    assert record(runs, "2026-11-27T10-02-00Z")["tags"] == {"best": True, "data": "v2"}
    assert main(["tag", "--runs-dir", str(runs), "0", "--remove", "best"]) == 0
    assert record(runs, "2026-11-27T10-02-00Z")["tags"] == {"data": "v2"}
    assert main(["note", "2026-11-27T10-00", "too slow", "--runs-dir", str(runs)]) == 0
    assert record(runs, "2026-11-27T10-00-00Z")["note"] == "too slow"
    assert main(["name", "1", "baseline", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["ls", "--runs-dir", str(runs), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r.get("run_name") for r in rows] == [None, "baseline", None]
    assert rows[2]["run_note"] == "too slow"


def test_tag_many_runs_chosen_by_a_filter(runs: Path) -> None:
    code = main(
        ["tag", "--filter", "eval_accuracy > 0.65", "--add", "good", "--runs-dir", str(runs)]
    )
    assert code == 0
    names = sorted(p.name for p in runs.iterdir() if not p.name.startswith("."))
    tagged = [n for n in names if record(runs, n)["tags"].get("good")]
    assert tagged == ["2026-11-27T10-01-00Z", "2026-11-27T10-02-00Z"]


def test_show_and_view_take_filter_and_latest(runs: Path, tmp_path: Path, capsys) -> None:
    assert main(["show", "--filter", "flag_lr < 0.15", "--runs-dir", str(runs)]) == 0
    assert capsys.readouterr().out.startswith("Run 2026-11-27T10-00-00Z")
    out = tmp_path / "cmp.html"
    assert main(["compare", "--latest", "2", "-o", str(out), "--runs-dir", str(runs)]) == 0
    assert out.is_file() and "2026-11-27T10-01-00Z" in out.read_text()


def test_errors_are_one_line_with_one_exit_code(runs: Path, capsys) -> None:
    assert main(["tag", "0", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainrun: error: `trainrun tag` needs --add") and "Traceback" not in err
    assert main(["note", "nope", "x", "--runs-dir", str(runs)]) == 2
    assert capsys.readouterr().err.startswith("trainrun: error: ")
    assert main(["name", "0", "a\nb", "--runs-dir", str(runs)]) == 2
    assert "line break" in capsys.readouterr().err
    assert main(["ls", "--filter", "flag_lr >", "--runs-dir", str(runs)]) == 2
    assert capsys.readouterr().err.startswith("trainrun: error: ")
    assert main(["show", "--filter", "flag_lr > 9", "--runs-dir", str(runs)]) == 2
    assert "No run in" in capsys.readouterr().err


def test_ui_and_board_keep_the_positional_runs_dir_as_a_deprecated_alias(
    runs: Path, capsys
) -> None:
    from trainrun.cli._main import build_parser
    from trainrun.cli._options import runs_dir

    for verb in ("ui", "board"):
        args = build_parser().parse_args([verb, str(runs)])
        assert runs_dir(args) == str(runs)
        assert "deprecated" in capsys.readouterr().err
        args = build_parser().parse_args([verb, "--runs-dir", str(runs)])
        assert runs_dir(args) == str(runs) and capsys.readouterr().err == ""


def test_every_verb_that_names_runs_takes_the_same_options() -> None:
    from trainrun.cli._main import build_parser

    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for verb, sub in verbs.items():
        options = {o for a in sub._actions for o in a.option_strings}
        assert "--runs-dir" in options, verb
        if verb in ("ls", "show", "view", "compare", "clean", "tag"):
            assert {"--filter", "--latest"} <= options, verb
