"""The source snapshot: a copy of the script and the source files beside it.

What is copied: the script itself (always, up to the per-file limit) and the
files in its folder and sub-folders whose suffix is in :data:`SOURCE_SUFFIXES`,
within :data:`MAX_FILE_BYTES` per file and :data:`MAX_TOTAL_BYTES` in all.
What is skipped: virtual environments, run folders, caches, version control,
node_modules, data folders, hidden folders (:data:`SKIP_DIRS`), other runs
folders (those holding a ``.trainrun`` index), run folders (a ``run.json``
beside a ``source/`` folder), anything
deeper than :data:`MAX_DEPTH` levels, and symbolic links that lead outside the
folder. The snapshot goes to the run's ``source/`` with the same relative paths.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

SOURCE_SUFFIXES = frozenset(
    {".py", ".yml", ".yaml", ".json", ".toml", ".cfg", ".txt", ".md", ".r", ".sh", ".ini"}
)
SKIP_DIRS = frozenset(
    {
        ".venv", "venv", "env", "runs", "__pycache__", ".git", "node_modules", "data",
        "datasets", "site-packages", "build", "dist", "checkpoints", "mlruns", "wandb",
    }
)  # fmt: skip
MAX_FILE_BYTES = 1_000_000
MAX_TOTAL_BYTES = 5_000_000
MAX_DEPTH = 4
MAX_ENTRIES = 20_000  # entries looked at, so that a script in a huge folder does not stall


class Snapshot:
    """What was copied: ``files`` (relative paths), total ``bytes``, and ``skipped`` notes."""

    # a plain class: dataclasses would import inspect, a cost on every launch
    def __init__(self) -> None:
        self.files: list[str] = []
        self.bytes = 0
        self.skipped: list[str] = []

    def summary(self) -> dict[str, object]:
        return {"files": len(self.files), "bytes": self.bytes, "skipped": self.skipped[:50]}


def _skip_dir(entry: os.DirEntry[str], exclude: set[str]) -> bool:
    name = entry.name
    if name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    try:
        real = os.path.realpath(entry.path)
    except OSError:
        return True
    return (
        real in exclude
        or os.path.isfile(os.path.join(entry.path, "pyvenv.cfg"))
        # another runs folder (it holds the listing index): thousands of runs, no source
        or os.path.isdir(os.path.join(entry.path, ".trainrun"))
        # a run folder in a runs folder that was never listed: its record and its own
        # snapshot are not this script's source
        or (
            os.path.isfile(os.path.join(entry.path, "run.json"))
            and os.path.isdir(os.path.join(entry.path, "source"))
        )
    )


def snapshot_source(
    script: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    exclude: Iterable[str | os.PathLike[str]] = (),
) -> Snapshot:
    """Copy the script and its neighbouring source files into ``dest``.

    ``exclude``: folders never copied (the runs folder, wherever it is).

    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp()); (src / "train.py").write_text("print(1)")
    8
    >>> snapshot_source(src / "train.py", tempfile.mkdtemp()).files
    ['train.py']
    """
    script = Path(script).resolve()
    root = script.parent
    dest = Path(dest)
    snap = Snapshot()
    excluded = {os.path.realpath(p) for p in exclude}
    root_real = os.path.realpath(root)

    def copy(path: Path, rel: str, size: int) -> None:
        if size > MAX_FILE_BYTES:
            snap.skipped.append(f"{rel} (over {MAX_FILE_BYTES:,} bytes)")
            return
        if snap.bytes + size > MAX_TOTAL_BYTES:
            snap.skipped.append(f"{rel} (snapshot limit of {MAX_TOTAL_BYTES:,} bytes reached)")
            return
        target = dest / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        except OSError as exc:
            snap.skipped.append(f"{rel} ({exc.strerror or exc})")
            return
        snap.files.append(rel)
        snap.bytes += size

    # the script first, so that the limits never squeeze it out
    try:
        copy(script, script.name, script.stat().st_size)
    except OSError as exc:
        snap.skipped.append(f"{script.name} ({exc})")
    seen = 0
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs: list[Path] = []
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                snap.skipped.append(f"(stopped after looking at {MAX_ENTRIES:,} entries)")
                return snap
            try:
                _visit(entry, depth, root, root_real, script, excluded, subdirs, copy, snap)
            except OSError:
                continue
        stack.extend((d, depth + 1) for d in reversed(subdirs))
    return snap


def _inside(path: str, root_real: str) -> bool:
    return os.path.realpath(path).startswith(root_real + os.sep)


def _visit(
    entry: os.DirEntry[str],
    depth: int,
    root: Path,
    root_real: str,
    script: Path,
    excluded: set[str],
    subdirs: list[Path],
    copy: Callable[[Path, str, int], None],
    snap: Snapshot,
) -> None:
    """One entry of the walk: a folder to descend into, a source file to copy, or nothing."""
    if entry.is_dir():
        if depth < MAX_DEPTH and not _skip_dir(entry, excluded):
            if entry.is_symlink() and not _inside(entry.path, root_real):
                return
            subdirs.append(Path(entry.path))
        return
    if not entry.is_file() or entry.name.startswith("."):
        return
    if os.path.splitext(entry.name)[1].lower() not in SOURCE_SUFFIXES:
        return
    rel = os.path.relpath(entry.path, root)
    if rel == script.name:
        return
    if entry.is_symlink() and not _inside(entry.path, root_real):
        # a link out of the project (a secret, /etc/...): never copied into a run
        snap.skipped.append(f"{rel} (a link to a file outside {root})")
        return
    copy(Path(entry.path), rel, entry.stat().st_size)
