"""What a run records about its environment: package versions and the git state.

Both are looked up without importing the packages (``importlib.metadata``) and
with short timeouts (``git``), in a thread beside the running script, so that
they add nothing to the launch time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms, in a thread beside the launch: annotations only
    from typing import Any

#: Packages whose versions a run records, when installed.
KEY_PACKAGES = (
    "trainrun", "torch", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow",
    "tensorflow", "keras", "jax", "xgboost", "lightgbm", "tensorboard", "matplotlib",
    "optuna", "ray",
)  # fmt: skip
GIT_TIMEOUT = 3.0
# "numpy-2.4.6.dist-info", "foo-1.0-py3.11.egg-info", "foo.egg-info" (no version)
_DIST = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._]*?)(?:-([^-]+?))?(?:-py\d[\d.]*)?\.(?:dist|egg)-info$"
)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """``{name: version}`` of the installed ones among ``names`` (nothing is imported).

    Reads the version from the ``NAME-VERSION.dist-info`` folder names on
    ``sys.path`` (one directory listing per path entry: about a millisecond),
    and asks ``importlib.metadata`` only for what that does not settle.
    """
    wanted = {_normalize(n): n for n in names}
    found: dict[str, str] = {}
    unsure: set[str] = set()
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            match = _DIST.match(item)
            if not match:
                continue
            key = _normalize(match.group(1))
            if key not in wanted or wanted[key] in found:
                continue
            if match.group(2):
                found[wanted[key]] = match.group(2)
            else:
                unsure.add(wanted[key])  # an egg-info folder without a version in its name
    missing = unsure - set(found)
    if missing:
        from importlib import metadata

        for name in missing:
            try:
                found[name] = metadata.version(name)
            except Exception:  # noqa: BLE001 - a broken distribution must not fail the run
                continue
    return {n: found[n] for n in names if n in found}


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


def git_state(
    folder: str | os.PathLike[str], exclude: tuple[str | os.PathLike[str], ...] = ()
) -> dict[str, Any] | None:
    """``{"commit", "dirty", "branch"}`` of the repository holding ``folder``, or None.

    One ``git status --porcelain=v2 --branch -z`` gives all three; untracked files
    count as dirty, since the run may have used them, except those under the
    folders in ``exclude`` (the runs folder: every run would make its repository
    dirty otherwise).
    """
    folder = Path(folder)
    out = _git(folder, "status", "--porcelain=v2", "--branch", "-z")
    if out is None:
        return None
    skip = [os.path.realpath(p) for p in exclude]
    top = (_git(folder, "rev-parse", "--show-toplevel") or "").strip() if skip else ""
    commit = branch = None
    dirty = False
    entries = iter(out.split("\0"))
    for line in entries:
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#") and not dirty:
            if line.startswith("2 "):
                next(entries, None)  # a rename's original path follows as its own entry
            path = _entry_path(line)
            where = os.path.realpath(os.path.join(top, path)) if path and top else ""
            if not where or not any(where == s or where.startswith(s + os.sep) for s in skip):
                dirty = True
    return {"commit": commit, "dirty": dirty, "branch": branch}


def _entry_path(line: str) -> str:
    """The path of one ``git status --porcelain=v2 -z`` entry (relative to the top level)."""
    fields = {"1": 8, "2": 9, "u": 10}.get(line[:1])
    if fields is None:
        return line[2:]  # "? path" (untracked), "! path" (ignored)
    parts = line.split(" ", fields)
    return parts[fields] if len(parts) > fields else ""
