"""Where is this code running? A terminal, a notebook, a CI job, a desktop with a browser.

One owner for these questions, so that the CLI's prompts, the tuning confirmation, the
report viewer and the progress line all answer them the same way.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: environment variables that mark a CI job: never prompt, never open a browser there
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


def in_ci() -> bool:
    """True under a CI service (``CI=true`` and the like)."""
    return any(os.environ.get(name, "").lower() not in ("", "0", "false") for name in CI_VARIABLES)


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an open terminal (False for pipes, files, closed or missing streams)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # closed, or detached
        return False


def can_prompt() -> bool:
    """True when a question may be asked and answered: standard input is a terminal, not CI."""
    return is_terminal(sys.stdin) and not in_ci()


def live_terminal(stream: Any) -> bool:
    """True when a progress line may redraw itself in place on ``stream``."""
    return is_terminal(stream) and os.environ.get("TERM") != "dumb"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with ipykernel), where reports display inline."""
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        return shell.get_ipython() is not None
    except Exception:  # a half-initialised IPython: treat as no notebook
        return False


def in_interactive_python() -> bool:
    """True in a Python prompt or a notebook (``python``, ``python -i``, IPython, Jupyter):
    R's ``interactive()``. A script or the ``trainrun`` command is not, even in a terminal."""
    if hasattr(sys, "ps1") or bool(sys.flags.interactive) or "ipykernel" in sys.modules:
        return True
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        return shell.get_ipython() is not None
    except Exception:  # a half-initialised IPython: not a session
        return False


def can_open_browser() -> bool:
    """True when a browser window can be shown: not CI, a display exists, stdout is a terminal."""
    if in_ci() or os.environ.get("TRAINRUN_NO_BROWSER"):
        return False
    has_display = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return has_display and is_terminal(sys.stdout)
