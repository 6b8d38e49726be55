"""copy_run_files: the files a run produced, without its record (tfruns' copy_run_files).

In tfruns a run folder holds what the script wrote plus its ``tfruns.d``
metadata; ``copy_run_files`` copies the former. Here what the script wrote is
in ``artifacts/`` (files it saved, and those captured from its working folder)
and ``model/`` (an estimator's checkpoints): those are copied, with their
relative paths, into ``to``. Only regular files inside the run are copied; a
link, FIFO or device is skipped and named in a RunRecordWarning.
"""

from __future__ import annotations

import os
import shutil
import stat
import warnings
from pathlib import Path
from typing import Any

from trainrun.exceptions import UsageError
from trainrun.runs import record

#: the run's subfolders whose files are "the run's files"; model/ keeps its name
FILE_FOLDERS = ((record.ARTIFACTS_DIR, ""), (record.MODEL_DIR, record.MODEL_DIR))


def _copy_tree(source: Path, dest: Path, skipped: list[str]) -> list[str]:
    copied: list[str] = []
    real = os.path.realpath(source)
    if os.path.islink(source) or not os.path.isdir(real):
        return copied
    for dirpath, dirnames, filenames in os.walk(real):  # never enters linked folders
        rel_dir = os.path.relpath(dirpath, real)
        for name in sorted(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                skipped.append(os.path.normpath(os.path.join(rel_dir, name)))
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            src = os.path.join(dirpath, name)
            try:
                fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
            except OSError:
                skipped.append(rel)  # a link (O_NOFOLLOW) or unreadable
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    skipped.append(rel)
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with os.fdopen(os.dup(fd), "rb") as fin, open(target, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                copied.append(rel)
            finally:
                os.close(fd)
    return copied


def copy_files_of(run_dir: Path, dest: Path) -> list[str]:
    """Copy one run's files into ``dest``; the relative paths copied."""
    dest.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    copied: list[str] = []
    for sub, under in FILE_FOLDERS:
        copied += [
            os.path.join(under, p) if under else p
            for p in _copy_tree(run_dir / sub, dest / under if under else dest, skipped)
        ]
    if skipped:
        from trainrun.runs.store._index import RunRecordWarning

        warnings.warn(
            f"copy_run_files({run_dir.name}) skipped {len(skipped)} entry(ies) that are not "
            f"regular files inside the run: {', '.join(skipped[:10])}.",
            RunRecordWarning,
            stacklevel=3,
        )
    return copied


def copy_run_files(
    run: Any = 0, to: str | os.PathLike[str] = ".", *, runs_dir: Any = "runs", rename: Any = None
) -> Any:
    """Copy the files a run produced (``artifacts/`` and ``model/``) into ``to``.

    ``run``: as everywhere (default the latest); several (a table of ``ls_runs()``,
    a list) are copied each into ``to/<run id>`` (or ``to/<rename[i]>``). One run's
    files go straight into ``to`` (or ``to/rename``). Returns the folder, or the
    list of folders, written.

    >>> copy_run_files(0, "deploy")  # doctest: +SKIP
    PosixPath('deploy')
    """
    from trainrun.runs.store import _many, get_run_dir

    if _many.is_many(run):
        refs = _many.many(run)
        names = list(rename) if rename is not None else [None] * len(refs)
        if len(names) != len(refs):
            raise UsageError(
                f"copy_run_files() got {len(refs)} runs but {len(names)} names in rename."
            )
        out = []
        for ref, name in zip(refs, names, strict=True):
            folder = get_run_dir(ref, runs_dir)
            target = Path(to) / (name or folder.name)
            copy_files_of(folder, target)
            out.append(target)
        return out
    folder = get_run_dir(run, runs_dir)
    target = Path(to) / rename if rename else Path(to)
    copy_files_of(folder, target)
    return target
