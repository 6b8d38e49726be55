"""The one place the CLI turns an error into a message and an exit code (cli/_main.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainrun.cli._main import handle_error
from trainrun.exceptions import (
    FilterError,
    MissingExtraError,
    RunNotFoundError,
    ScriptNotFoundError,
    TuningError,
    UsageError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("--flag expects NAME=VALUE"), 2),
        (FilterError("bad filter"), 2),
        (RunNotFoundError("no run 'x'"), 2),
        (ScriptNotFoundError("no script"), 2),
        (TuningError("2 trials failed"), 1),
        (MissingExtraError("tensorboard", "board", "serving TensorBoard"), 1),
    ],
)
def test_trainrun_errors_are_one_line_and_one_code(error, code, capsys) -> None:
    assert handle_error(error) == code
    err = capsys.readouterr().err
    assert err == f"trainrun: error: {error}\n"


def test_interrupt_broken_pipe_and_bugs(capsys) -> None:
    assert handle_error(KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "trainrun: interrupted\n"
    assert handle_error(RuntimeError("a bug")) is None  # re-raised: its traceback is shown
    assert handle_error(ValueError("a bug too")) is None


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # a listing far larger than a pipe's buffer, read by a reader that stops at one line
    from tests.runs.store.conftest import write_run

    runs = tmp_path / "runs"
    for i in range(300):
        write_run(runs, f"r{i:04d}", flags={"x": "y" * 200, "i": i})
    code = (
        "import sys, subprocess\n"
        "p = subprocess.Popen([sys.executable, '-m', 'trainrun', 'ls', '--runs-dir', sys.argv[1],"
        " '--format', 'json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "p.stdout.readline(); p.stdout.close()\n"
        "err = p.stderr.read().decode(); rc = p.wait()\n"
        "print(rc); print(repr(err))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(runs)], capture_output=True, text=True, timeout=120
    )
    rc, err = out.stdout.splitlines()
    assert rc == "141" and "Traceback" not in err, err


def test_no_user_mistake_is_a_bare_builtin_error() -> None:
    # messages for people come as TrainrunError subclasses (which also subclass the builtin),
    # so the CLI shows them as one line; a bare `raise ValueError` (no message) is internal
    # control flow, caught where it is raised
    import re

    src = Path(__file__).resolve().parents[2] / "src" / "trainrun"
    bare = re.compile(r"raise (ValueError|FileNotFoundError|NotADirectoryError|OSError)\(")
    found = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert found == []
