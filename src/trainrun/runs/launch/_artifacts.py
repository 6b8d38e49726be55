"""Files a run creates or changes under its working folder, copied into ``artifacts/``.

tfruns copies what a script writes into its working directory into the run
folder; so does trainrun. The working folder is scanned (sizes and
modification times) before the script starts and again when it ends; each file
that is new or changed is copied into the run's ``artifacts/`` under the same
relative path, within the limits below. Never copied: the runs folder, version
control, virtual environments, caches, hidden folders, other runs folders,
symbolic links (listed as skipped: a link may lead anywhere) and anything that
is not a regular file. What was skipped, and why, is recorded in run.json's
``artifacts`` field.

Set ``TRAINRUN_ARTIFACTS=0`` (or ``training_run(artifacts=False)``) to turn it off.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ARTIFACTS_ENV = "TRAINRUN_ARTIFACTS"
MAX_FILE_BYTES = 100_000_000
MAX_TOTAL_BYTES = 1_000_000_000
MAX_ENTRIES = 20_000
MAX_DEPTH = 8
MAX_SKIPPED_LISTED = 100
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", "node_modules",
        "site-packages", ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".tox", "mlruns", "wandb", "tfruns.d", "runs",
    }
)  # fmt: skip

Scan = dict[str, tuple[int, int]]


def enabled(requested: bool | None = None) -> bool:
    """Whether to capture: the argument if given, else not ``TRAINRUN_ARTIFACTS=0``."""
    if requested is not None:
        return bool(requested)
    return os.environ.get(ARTIFACTS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _skip_dir(entry: os.DirEntry[str], excluded: set[str]) -> bool:
    if entry.name in SKIP_DIRS or entry.name.startswith("."):
        return True
    if entry.is_symlink():
        return True
    # the scan starts at a real path and never follows links: entry.path is real already
    if entry.path in excluded:
        return True
    # a run folder (the commonest of these in a project: check it first), another runs
    # folder (its index), a virtual environment by another name
    return (
        os.path.exists(entry.path + "/run.json")
        or os.path.exists(entry.path + "/.trainrun")
        or os.path.exists(entry.path + "/pyvenv.cfg")
    )


def scan(root: Path, exclude: Iterable[str | os.PathLike[str]] = ()) -> Scan:
    """``{relative path: (mtime_ns, size)}`` of the regular files under ``root`` (bounded)."""
    excluded = {os.path.realpath(p) for p in exclude}
    found: Scan = {}
    seen = 0
    top = os.path.realpath(root)
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                found["\0truncated"] = (0, 0)
                return found
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH and not _skip_dir(entry, excluded):
                        stack.append((entry.path, depth + 1))
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            rel = os.path.relpath(entry.path, top)
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                found[rel] = (st.st_mtime_ns, st.st_size if stat.S_ISREG(st.st_mode) else -1)
    return found


def capture_artifacts(
    root: Path, dest: Path, before: Scan, exclude: Iterable[str | os.PathLike[str]] = ()
) -> dict[str, Any]:
    """Copy what changed under ``root`` since ``before`` into ``dest``; the summary for run.json."""
    after = scan(root, exclude)
    copied: list[str] = []
    skipped: list[str] = []
    total = 0
    if "\0truncated" in after:
        skipped.append(f"(stopped after looking at {MAX_ENTRIES:,} entries of {root})")
    for rel, (mtime, size) in sorted(after.items()):
        if rel.startswith("\0") or before.get(rel) == (mtime, size):
            continue
        if size < 0:
            skipped.append(f"{rel} (a symbolic link)")
            continue
        if size > MAX_FILE_BYTES:
            skipped.append(f"{rel} ({size:,} bytes: over the {MAX_FILE_BYTES:,}-byte limit)")
            continue
        if total + size > MAX_TOTAL_BYTES:
            skipped.append(f"{rel} (the {MAX_TOTAL_BYTES:,}-byte limit of all artifacts reached)")
            continue
        source = root / rel
        target = dest / rel
        try:
            # O_NOFOLLOW: the file may have been swapped for a link since the scan
            # O_NONBLOCK: a file swapped for a FIFO must not hang the launcher
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    skipped.append(f"{rel} (not a regular file)")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with os.fdopen(os.dup(fd), "rb") as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            finally:
                os.close(fd)
        except OSError as exc:
            skipped.append(f"{rel} ({exc.strerror or exc})")
            continue
        copied.append(rel)
        total += size
    more = len(skipped) - MAX_SKIPPED_LISTED
    if more > 0:
        skipped = [*skipped[:MAX_SKIPPED_LISTED], f"... and {more} more"]
    return {"files": copied[:1000], "count": len(copied), "bytes": total, "skipped": skipped}
