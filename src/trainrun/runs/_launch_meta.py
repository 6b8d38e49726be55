"""What a run records about its environment: package versions and the git state.

Both are looked up without importing the packages (``importlib.metadata``) and
with short timeouts (``git``), in a thread beside the running script, so that
they add nothing to the launch time.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

#: Packages whose versions a run records, when installed.
KEY_PACKAGES = (
    "trainrun", "torch", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow",
    "tensorflow", "keras", "jax", "xgboost", "lightgbm", "tensorboard", "matplotlib",
    "optuna", "ray",
)  # fmt: skip
GIT_TIMEOUT = 3.0


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """``{name: version}`` of the installed ones among ``names`` (nothing is imported)."""
    from importlib import metadata

    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        except Exception:  # noqa: BLE001 - a broken distribution must not fail the run
            continue
    return found


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # never take the index lock
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"}`` of the repository holding ``folder``, or None."""
    folder = Path(folder)
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(folder, "status", "--porcelain")
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": commit.strip(),
        "dirty": None if status is None else bool(status.strip()),
        "branch": branch.strip() if branch else None,
    }
