"""Atomic file replacement, shared by the run records and the model directory.

Readers of a file replaced here see the old content or the new, never half of
either. Standard library only, and cheap to import: it is on the launch path.
"""

from __future__ import annotations

import itertools
import os
from _thread import get_ident
from pathlib import Path

_tmp_counter = itertools.count()


def _tmp_path(path: Path) -> Path:
    # unique per process, thread and call: no two writers ever share a temporary file
    return path.with_name(f".{path.name}.{os.getpid()}-{get_ident()}-{next(_tmp_counter)}.tmp")


def replace_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` (UTF-8) through a temporary file and a rename.

    ``durable`` fsyncs the data before the rename, so the new content also
    survives a power loss; without it the write is still atomic for readers and
    survives the writer's own crash or kill.
    """
    path = Path(path)
    tmp = _tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
