"""Where code runs (terminal, notebook, CI) is answered in one place."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from trainrun import _interactive


@pytest.mark.parametrize(
    ("value", "ci"), [("true", True), ("1", True), ("", False), ("0", False), ("false", False)]
)
def test_ci_variable(monkeypatch, value, ci):
    for name in _interactive.CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", value)
    assert _interactive.in_ci() is ci


def test_streams_that_are_not_terminals():
    assert _interactive.is_terminal(io.StringIO()) is False
    closed = io.StringIO()
    closed.close()
    assert _interactive.is_terminal(closed) is False
    assert _interactive.is_terminal(None) is False


def test_a_real_terminal_is_one():
    # a pseudo-terminal from the OS: the answer must be yes, and a prompt is allowed outside CI
    leader, follower = os.openpty()
    try:
        code = (
            "import sys; from trainrun import _interactive as i; "
            "print(i.is_terminal(sys.stdin), i.can_prompt(), i.live_terminal(sys.stdin))"
        )
        env = {k: v for k, v in os.environ.items() if k not in _interactive.CI_VARIABLES}
        env["TERM"] = "xterm"
        out = subprocess.run(
            [sys.executable, "-c", code],
            stdin=follower,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        ).stdout.split()
    finally:
        os.close(leader)
        os.close(follower)
    assert out == ["True", "True", "True"]


def test_no_prompt_and_no_browser_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert _interactive.can_prompt() is False
    assert _interactive.can_open_browser() is False


def test_not_a_notebook_here():
    assert _interactive.in_notebook() is False
