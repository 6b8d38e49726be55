"""The change journal: one line per record write, so a listing need not stat every run.

``runs/.trainrun/changes`` holds the name of each run folder whose record file
was replaced through ``record.write_json``, one name a line, appended with
``O_APPEND`` (each line lands whole). The index keeps how far it has read and
re-reads only the runs named since (``trainrun.runs.store._pushdown``).

The file is created by the index, never here: while a runs folder has no
index, a write costs one failed ``open`` and nothing is written.

>>> import pathlib, tempfile
>>> runs = pathlib.Path(tempfile.mkdtemp())
>>> (runs / ".trainrun").mkdir(); (runs / ".trainrun" / "changes").touch()
>>> (runs / "r1").mkdir()
>>> note_change(runs / "r1" / "run.json"); (runs / ".trainrun" / "changes").read_text()
'r1\\n'
"""

from __future__ import annotations

import os

__all__ = ["JOURNAL_FILE", "note_change"]

#: relative to the runs folder (beside the index, in its hidden folder)
JOURNAL_FILE = ".trainrun/changes"


def note_change(path: str | os.PathLike[str]) -> None:
    """Name the run folder holding ``path`` in its runs folder's journal (if there is one)."""
    run_dir = os.path.dirname(os.path.abspath(os.fspath(path)))
    name = os.path.basename(run_dir)
    if not name or name.startswith(".") or "\n" in name:
        return
    journal = os.path.join(os.path.dirname(run_dir), JOURNAL_FILE)
    try:
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
    except OSError:  # no index for this folder (or not writable): nothing to tell
        return
    try:
        os.write(fd, (name + "\n").encode("utf-8", "surrogateescape"))
    except OSError:
        pass  # a full disk: `trainrun ls --refresh` re-reads every run
    finally:
        os.close(fd)
