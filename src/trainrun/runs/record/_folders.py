"""Which folders are runs, and which run a reference names: the one owner of both rules.

A **run folder** is a folder directly inside a runs folder (or its ``archive/``)
whose name does not start with "." and is not ``archive``, and which holds
something trainrun writes: one of run.json, flags.json, metrics.jsonl,
evaluation.json, output.log, or the layout's subfolders that ``new_run_dir``
makes before the launcher's first write (a run starting up, or one whose
launcher died). Any other folder (a stray ``data/``, an empty folder) is not a
run: it is not listed, shown, archived or deleted. A run folder may be a
symbolic link to a folder; it is then read through the link, and archived or
deleted *as a link* (its target is never moved or deleted).

A **run reference** is what the verbs take: an id or a unique prefix of one
(looked up inside the runs folder only), a path containing ``/`` (which must be
a run folder), an integer counting back from the latest run (0 = latest), or a
record / ``ls_runs()`` row. :func:`resolve_run` turns one into a folder, and
:func:`run_inside` additionally demands that the folder lie directly inside a
given runs folder: what every command that moves or deletes runs uses.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainrun.exceptions import RunNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from collections.abc import Callable
    from typing import Any

ARCHIVE_DIR = "archive"
#: files whose presence makes a folder a run
MARKER_FILES = ("run.json", "flags.json", "metrics.jsonl", "evaluation.json", "output.log")
#: subfolders ``new_run_dir`` makes: a folder with all of them is a run that never wrote a file
LAYOUT_DIRS = ("source", "plots", "artifacts", "tensorboard", "model")


def candidate_names(runs_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the folders in ``runs_dir`` that may be runs (not hidden, not the archive).

    Links to folders count (a loop or a dangling link does not). This is the cheap
    half of the rule; :func:`is_run_folder` is the other.
    """
    try:
        with os.scandir(runs_dir) as it:
            names = [
                e.name for e in it if e.name[0] != "." and e.name != ARCHIVE_DIR and _is_dir(e)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names.sort()
    return names


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop on some systems
        return False


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """True when the folder ``path`` holds something trainrun writes (see the module docstring)."""
    path = os.fspath(path)
    lexists = os.path.lexists
    join = os.path.join
    if any(lexists(join(path, name)) for name in MARKER_FILES):
        return os.path.isdir(path)
    return all(os.path.isdir(join(path, name)) for name in LAYOUT_DIRS)


def run_folder_names(runs_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the run folders of ``runs_dir`` (oldest first: names are UTC start times)."""
    base = os.fspath(runs_dir)
    return [n for n in candidate_names(base) if is_run_folder(os.path.join(base, n))]


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..", ARCHIVE_DIR) and not name.startswith(".")


def run_by_name(runs_dir: str | os.PathLike[str], name: str) -> Path | None:
    """``runs_dir/name`` when ``name`` is a plain name naming a run folder there; else None.

    One ``stat`` or two, no listing: what the dashboard checks a URL's run id with.
    """
    if not isinstance(name, str) or not _valid_name(name) or "/" in name or os.sep in name:
        return None
    if "\0" in name:
        return None
    path = Path(runs_dir) / name
    return path if is_run_folder(path) else None


def _not_a_run(text: str, path: Path, why: str) -> RunNotFoundError:
    return RunNotFoundError(
        f"{text} is not a run folder: {why}. A run folder holds run.json (or another file "
        "trainrun writes); pass a run id as `trainrun ls` shows it, or the path of a run folder. "
        f"Received: run={text!r}"
    )


def _path_ref(text: str, runs_dir: Path) -> Path:
    """A reference with a "/" in it: the folder it names, the last component not followed."""
    given = Path(text).expanduser()
    if given.name in ("", ".", ".."):
        folder = given.resolve()  # "..", "/" or "x/..": the real folder meant
    else:
        folder = given.parent.resolve() / given.name
    if not folder.is_dir():
        raise RunNotFoundError(
            f"No run folder at {text}: the path does not exist or is not a folder. Received: run={text!r}"
        )
    if folder.resolve() == runs_dir.resolve():
        raise _not_a_run(text, folder, "it is the runs folder itself")
    if folder.name == ARCHIVE_DIR and folder.resolve() == (runs_dir / ARCHIVE_DIR).resolve():
        raise _not_a_run(text, folder, "it is the runs folder's archive")
    if not is_run_folder(folder):
        raise _not_a_run(text, folder, "it holds none of the files trainrun writes")
    return folder


def _ids_by_name(runs_dir: Path) -> list[str]:
    return run_folder_names(runs_dir)[::-1]


def resolve_run(
    run: Any,
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    newest_first: Callable[[Path], list[str]] | None = None,
) -> Path:
    """The folder of ``run``: an id (or a unique prefix), a path, an index, a record or a row.

    The result is absolute, with its parent resolved and its last component not
    followed (a run folder that is a link stays the link). ``newest_first`` lists
    the ids newest first for an integer reference (default: by name, which is the
    start time); the store passes its index. Raises RunNotFoundError (also a
    FileNotFoundError) naming the nearest ids.
    """
    runs_path = Path(runs_dir)
    if hasattr(run, "get") and not isinstance(run, (str, bytes)):  # a record or a DataFrame row
        value = run.get("run_dir") or run.get("id")
        if value is None:
            raise RunNotFoundError(
                f"This record names no run: it has no 'run_dir' or 'id'. Received: run={run!r}"
            )
        return resolve_run(value, runs_dir, newest_first=newest_first)
    if isinstance(run, int) and not isinstance(run, bool):
        if run < 0:
            raise RunNotFoundError(
                f"A run index counts from the latest run: 0, 1, 2... Received: run={run}"
            )
        ids = (newest_first or _ids_by_name)(runs_path)
        if run >= len(ids):
            raise RunNotFoundError(
                f"There are {len(ids)} runs in {runs_path}, so there is no run number {run} "
                f"(0 is the latest). Received: run={run}"
            )
        return _absolute(runs_path) / ids[run]
    if not isinstance(run, (str, os.PathLike)):
        raise RunNotFoundError(
            "A run is named by its id, its folder, an index (0 = latest) or a row of ls_runs(). "
            f"Received: run={run!r}"
        )
    text = os.fspath(run)
    if "/" in text or os.sep in text or os.path.isabs(text):
        return _path_ref(text, runs_path)
    if not _valid_name(text):
        raise RunNotFoundError(f"{text!r} is not a run id. Received: run={text!r}")
    exact = run_by_name(runs_path, text)
    if exact is not None:
        return _absolute(runs_path) / text
    names = run_folder_names(runs_path)
    matches = [n for n in names if n.startswith(text)]
    if len(matches) == 1:
        return _absolute(runs_path) / matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise RunNotFoundError(
            f"{len(matches)} runs in {runs_path} start with {text!r}: {shown}. "
            f"Give more of the id. Received: run={text!r}"
        )
    import difflib  # only on this error path: it is off the launch path

    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    if (runs_path / text).is_dir():
        hint = f" The folder {runs_path / text} holds none of the files trainrun writes.{hint}"
    where = f"{runs_path}" if runs_path.is_dir() else f"{runs_path} (the folder does not exist)"
    raise RunNotFoundError(
        f"No run {text!r} in {where}.{hint} List the runs with "
        f"`trainrun ls --runs-dir {runs_path}`. Received: run={text!r}"
    )


def _absolute(folder: Path) -> Path:
    return folder.resolve()


def run_inside(
    run: Any,
    runs_dir: str | os.PathLike[str],
    *,
    newest_first: Callable[[Path], list[str]] | None = None,
) -> Path:
    """As :func:`resolve_run`, but the run folder must lie directly inside ``runs_dir``.

    What every command that moves or deletes a run uses: a path that leads
    anywhere else (``../elsewhere``, the runs folder itself, a folder that is not
    a run) is refused with RunNotFoundError, before anything is touched.
    """
    path = resolve_run(run, runs_dir, newest_first=newest_first)
    root = Path(runs_dir).resolve()
    if path.parent != root or not _valid_name(path.name):
        raise RunNotFoundError(
            f"{path} is not a run inside the runs folder {root}: trainrun moves and deletes "
            "only runs inside the runs folder it is given. Pass the run's id, or the runs "
            f"folder that holds it with --runs-dir / runs_dir=. Received: run={run!r}"
        )
    return path
