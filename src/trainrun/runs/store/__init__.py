"""The runs of a folder as a table, and the verbs that look after them.

>>> from trainrun.runs.store import ls_runs, latest_run
>>> runs = ls_runs("runs", filter="eval_accuracy > 0.8", order="eval_accuracy")  # doctest: +SKIP
>>> runs[["id", "flag_dropout", "eval_accuracy"]].head(3)                         # doctest: +SKIP
>>> latest_run("runs")["status"]                                                 # doctest: +SKIP
'completed'

Listing goes through the SQLite index kept in ``runs/.trainrun/index.sqlite``, a cache
of the run folders (see ``trainrun.runs.store._index`` for the freshness rule).
``clean_runs`` moves runs into ``runs/archive`` (reversible with
``restore_runs``), ``purge_runs`` deletes archived runs for good, and
``copy_run`` copies a run folder elsewhere, e.g. to share it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import shutil
import stat
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, cast

from trainrun.exceptions import FilterError, RunNotFoundError, RunRecordError, TrainrunError
from trainrun.runs import record
from trainrun.runs.store import _many, _pushdown
from trainrun.runs.store._files import copy_run_files
from trainrun.runs.store._filter import Filter, parse_filter
from trainrun.runs.store._index import (
    ARCHIVE_DIR,
    RunRecordWarning,
    load_ids,
    load_table,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RunRecordWarning",
    "clean_runs",
    "copy_run",
    "copy_run_files",
    "get_run_dir",
    "latest_run",
    "ls_runs",
    "mirror_runs",
    "name_run",
    "note_run",
    "purge_runs",
    "restore_runs",
    "run_info",
    "tag_run",
]

#: what names a run: an id (or a unique prefix of one), a path, an index from the
#: latest (0 = latest), a record dict or a row of ``ls_runs()``
RunRef = Union[str, "os.PathLike[str]", int, Mapping[str, Any], Any]
PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------- listing


def ls_runs(
    runs_dir: PathLike = "runs",
    order: str | Sequence[str] | None = None,
    decreasing: bool = True,
    filter: str | Filter | None = None,
    latest_n: int | None = None,
    columns: str | Sequence[str] | None = None,
    *,
    refresh: bool = False,
    limit: int | None = None,
) -> pd.DataFrame:
    """The runs in ``runs_dir`` as a pandas DataFrame, one row per run, newest first.

    Columns, what differs between the runs first (``trainrun.runs.store._columns``):
    ``id, status``, ``run_name`` (``name_run``), the ``flag_*`` columns whose values
    differ across the listed runs, the metrics (the ``order`` column first, then
    ``eval_*``, then ``metric_*``: the last logged value), the flags that are the same
    in every run, ``tag_*``, ``run_note``, ``start, end, duration, script, exit_code``
    and ``run_dir`` last; names are made identifiers (``label/mean`` -> ``eval_label_mean``).
    ``start``/``end`` are UTC datetimes; a run whose process died reads as
    ``killed``.

    Args:
        runs_dir: the runs folder (an absent folder lists no runs).
        order: column(s) to sort by; default the start time. Missing values sort last.
        decreasing: sort from the largest value (default) or the smallest.
        filter: an expression such as ``"eval_accuracy > 0.8 and flag_dropout < 0.3"``
            (see ``trainrun.runs.store._filter``); applied before ``latest_n``.
        latest_n: keep only the ``latest_n`` most recently started runs (after the filter).
        columns: the columns to return, in order; shell patterns such as ``"eval_*"`` work.
        refresh: re-read every run folder instead of trusting the index (an in-place
            edit of a finished run's file is otherwise not seen).
        limit: keep only the first ``limit`` rows, after ``order`` (a top-N by any column).

    A filter, ``latest_n`` and ``limit`` are answered by the index in SQL where the
    filter allows (``trainrun.runs.store._pushdown``): only the rows asked for are read.

    A run whose run.json is corrupt is skipped, and one with another unreadable
    file is listed without it; both are reported by a ``RunRecordWarning``.

    >>> ls_runs("runs", order="eval_accuracy", latest_n=10)  # doctest: +SKIP
    """
    _many.check_runs_dir(runs_dir)  # tfruns' first argument is a filter: no silent empty list
    filter = _many.tfruns_filter(filter)  # tfruns' `completed` column
    query = parse_filter(filter) if filter is not None else None
    for name, value in (("latest_n", latest_n), ("limit", limit)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise FilterError(
                f"{name} must be a positive integer or None. Received: {name}={value!r}"
            )
    pushed = (
        None
        if refresh or (query is None and latest_n is None and limit is None)
        else _pushdown.ls_query(runs_dir, query, order, decreasing, latest_n, limit)
    )
    if pushed is not None:
        return _arranged(pushed, columns, order)
    table = load_table(runs_dir, refresh=refresh)
    table.warn()
    df = table.frame()
    if not table.presorted:  # the index returns rows newest first; a folder scan does not
        df = _newest_first(df)
    if query is not None and len(df):
        df = df[query.apply(df).to_numpy()]
    if latest_n is not None:
        df = df.head(latest_n)
    if order is None:
        if not decreasing:
            df = df.iloc[::-1]
    else:
        # a stable sort of newest-first rows: ties stay newest first
        df = _sort(df, [order] if isinstance(order, str) else list(order), decreasing)
    if limit is not None:
        df = df.head(limit)
    return _arranged(df, columns, order)


def _arranged(df: pd.DataFrame, columns: Any, order: Any) -> pd.DataFrame:
    """The columns asked for, or all of them with what differs between the runs first."""
    from trainrun.runs.store._columns import column_order

    picked = _pick_columns(df, columns) if columns is not None else column_order(df, order)
    return df[picked].reset_index(drop=True)


def _newest_first(df: pd.DataFrame) -> pd.DataFrame:
    # ids are UTC timestamps, so they break ties (and order runs without a start) sensibly
    return df.sort_values(["start", "id"], ascending=False, na_position="last", kind="mergesort")


def _sort(df: pd.DataFrame, keys: list[str], decreasing: bool) -> pd.DataFrame:
    if len(df) == 0:
        return df  # no runs yet: no column to check against
    for key in keys:
        if key not in df.columns:
            raise FilterError(f"Cannot order by {key!r}: no such column.{_near(key, df.columns)}")
    try:
        return df.sort_values(keys, ascending=not decreasing, na_position="last", kind="mergesort")
    except TypeError:
        # a column holding numbers in some runs and text in others: order by the text
        return df.sort_values(
            keys,
            ascending=not decreasing,
            na_position="last",
            kind="mergesort",
            key=lambda s: (
                s.map(lambda v: None if v is None or v != v else str(v)) if s.dtype == object else s
            ),
        )


def _pick_columns(df: Any, columns: str | Sequence[str]) -> list[str]:
    """The columns asked for (names or glob patterns), in that order, from a DataFrame or
    ``_rows.Rows``; a name missing from a table without rows is added empty."""
    wanted = [c.strip() for c in columns.split(",")] if isinstance(columns, str) else list(columns)
    out: list[str] = []
    for name in wanted:
        if any(ch in name for ch in "*?["):
            out.extend(c for c in df.columns if fnmatch.fnmatchcase(c, name) and c not in out)
        elif name in df.columns:
            if name not in out:
                out.append(name)
        elif len(df) == 0:
            df[name] = []  # nothing recorded yet: an empty column, not an error
            out.append(name)
        else:
            raise FilterError(f"No column {name!r} in the runs table.{_near(name, df.columns)}")
    return out


def _near(name: str, names: Iterable[str]) -> str:
    names = list(names)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"{hint} Columns: {', '.join(names[:40])}{' ...' if len(names) > 40 else ''}"


# ---------------------------------------------------------------- one run


def get_run_dir(run: RunRef, runs_dir: PathLike = "runs") -> Path:
    """The folder of ``run``: an id (or a unique prefix), a path, an index, a record or a row.

    An integer counts from the latest run (0 = latest, 1 = the one before).
    A plain name is looked up inside ``runs_dir`` only; it cannot reach outside it.
    A text that names no id is then looked up as a run's name (``name_run``).
    A path must lead to a run folder (one holding run.json or another file
    trainrun writes), not to any folder. Raises RunNotFoundError (also a
    FileNotFoundError) naming the nearest ids. The rules live in
    ``trainrun.runs.record`` (``resolve_run``).

    >>> get_run_dir(0, "runs")                     # doctest: +SKIP
    PosixPath('/home/me/project/runs/2026-11-27T10-15-42Z')
    """
    run = _many.single(run, "get_run_dir")  # one row or a one-row table of ls_runs()
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        from trainrun.runs.store._remote_index import RemoteRuns

        return RemoteRuns(runs_dir).fetch(run)  # a local copy, fetched from the shared store
    try:
        return record.resolve_run(run, runs_dir, newest_first=_ids_newest_first)
    except RunNotFoundError:
        named = _run_by_name(run, runs_dir)  # a name given with name_run / trainrun name
        if named is None:
            raise
        return named


def _run_by_name(run: Any, runs_dir: PathLike) -> Path | None:
    """The run named ``run`` (``run_name``) in ``runs_dir``; None when no run has that name.
    Looked up only after the id rules found nothing: an id always wins over a name."""
    if not isinstance(run, str) or not run.strip() or "/" in run or os.sep in run:
        return None
    import json

    try:
        found = ls_runs(
            runs_dir, filter=f"run_name == {json.dumps(run, ensure_ascii=False)}", columns=["id"]
        )
    except FilterError:  # no run has a name yet: no run_name column
        return None
    ids = found["id"].tolist()
    if len(ids) > 1:
        raise RunNotFoundError(
            f"The name {run!r} is given to {len(ids)} runs ({', '.join(ids[:5])}); name one by "
            "its id, or give the others other names (trainrun name RUN NAME)."
        )
    return record.resolve_run(ids[0], runs_dir) if ids else None


def _ids_newest_first(runs_dir: Path) -> list[str]:
    return load_ids(runs_dir)


def run_info(run: RunRef, runs_dir: PathLike = "runs") -> Any:
    """Everything recorded about one run (``record.read_run``): status, flags, metrics, evaluation.

    Given several (a table of ``ls_runs()``, a list of ids), a list of records.

    >>> info = run_info(0, "runs")                 # doctest: +SKIP
    >>> info["flags"], info["evaluation"]          # doctest: +SKIP
    """
    from trainrun.runs.store._display import RunRecord  # a dict with a notebook display

    def info(ref: Any) -> Any:
        found = record.read_run(get_run_dir(ref, runs_dir))
        if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # run_dir: a local copy
            found["run_url"] = f"{runs_dir.rstrip('/')}/{found['id']}"
        return RunRecord(found)

    if _many.is_many(run):
        return [info(r) for r in _many.many(run)]
    return info(run)


def tag_run(
    run: RunRef,
    add: str | Iterable[str] = (),
    remove: str | Iterable[str] = (),
    runs_dir: PathLike = "runs",
) -> dict[str, Any]:
    """Add and remove tags of a run after the fact; returns its tags, note and name.

    A tag is a word (``"best"``, listed as ``tag_best == true``) or ``KEY=VALUE``
    (``"dataset=v2"``, listed as ``tag_dataset``). Stored atomically in run.json,
    under the lock the launcher uses, so a run may be tagged while it runs.

    >>> tag_run(0, add=["best", "dataset=v2"], remove="draft", runs_dir="runs")  # doctest: +SKIP
    {'tags': {'best': True, 'dataset': 'v2'}, 'note': None, 'name': None}
    """
    return _annotate(run, runs_dir, add_tags=add, remove_tags=remove)


def note_run(run: RunRef, note: str | None, runs_dir: PathLike = "runs") -> dict[str, Any]:
    """Set a run's note (free text, listed as ``run_note``); ``""`` or None removes it.

    >>> note_run(0, "lr too high after epoch 3", runs_dir="runs")["note"]  # doctest: +SKIP
    'lr too high after epoch 3'
    """
    return _annotate(run, runs_dir, note=note)


def name_run(run: RunRef, name: str | None, runs_dir: PathLike = "runs") -> dict[str, Any]:
    """Give a run a short readable name (listed as ``run_name``); ``""`` or None removes it.

    >>> name_run(0, "baseline", runs_dir="runs")["name"]  # doctest: +SKIP
    'baseline'
    """
    return _annotate(run, runs_dir, name=name)


def _annotate(run: RunRef, runs_dir: PathLike, **changes: Any) -> dict[str, Any]:
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # pushed to the store
        from trainrun.runs.store._remote_index import RemoteRuns

        return RemoteRuns(runs_dir).annotate(_many.single(run, "tag_run"), **changes)
    from trainrun.runs.record._annotations import annotate

    return annotate(get_run_dir(run, runs_dir), **changes)


def latest_run(runs_dir: PathLike = "runs") -> dict[str, Any]:
    """The record of the most recently started run; RunNotFoundError when there is none.

    >>> latest_run("runs")["id"]                   # doctest: +SKIP
    '2026-11-27T10-15-42Z'
    """
    ids = load_ids(runs_dir) if isinstance(runs_dir, str) else _ids_newest_first(Path(runs_dir))
    if ids and isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        return run_info(ids[0], runs_dir)
    if not ids:
        raise RunNotFoundError(
            f"There are no runs in {runs_dir} yet: start one with `trainrun run train.py`."
        )
    from trainrun.runs.store._display import RunRecord  # a dict with a notebook display

    return RunRecord(record.read_run(Path(runs_dir) / ids[0]))


def mirror_runs(runs_dir: str) -> Path:
    """A local runs folder holding every run of the shared store ``runs_dir`` (``s3://...``).

    Brought up to date incrementally (a run is fetched again when it changed); what
    ``trainrun board`` and ``trainrun ui`` show for a store. See docs/shared-store.md.

    >>> mirror_runs("s3://team-runs/churn")  # doctest: +SKIP
    PosixPath('/home/me/.cache/trainrun/s3/team-runs/churn-1f0c2a9b3e/mirror')
    """
    from trainrun.runs.store._remote_index import RemoteRuns

    return RemoteRuns(runs_dir).mirror()


# ---------------------------------------------------------------- archive, purge, copy


def _archive(runs_dir: PathLike) -> Path:
    """``runs_dir/archive``, refused when it is a link (runs would move or be deleted elsewhere)."""
    archive = Path(runs_dir).resolve() / ARCHIVE_DIR
    if archive.is_symlink() or (archive.exists() and not archive.is_dir()):
        raise RunRecordError(
            f"{archive} is a link or a file, not a folder: trainrun moves and deletes runs only "
            "inside the runs folder. Replace it with a folder (or remove it)."
        )
    return archive


def _refs(runs: Any) -> list[Any]:
    """One run, a list of runs, or an ls_runs() DataFrame as a list of references."""
    if hasattr(runs, "columns") and hasattr(runs, "iterrows"):  # a DataFrame
        if "run_dir" in runs.columns:
            return list(runs["run_dir"].tolist())
        if "id" in runs.columns:
            return list(runs["id"].tolist())
        raise RunNotFoundError(
            "The runs table has neither a 'run_dir' nor an 'id' column to name its runs."
        )
    if isinstance(runs, (str, os.PathLike, int, Mapping)) or hasattr(runs, "get"):
        return [runs]
    return list(runs)


def _run_dirs(runs: Any, runs_dir: PathLike, *, where: str = "runs") -> list[Path]:
    """Many runs as folders directly inside ``runs_dir`` (or its archive): None (all), an
    ls_runs() DataFrame, or one or a list of runs. Anything else is refused before any
    run is touched."""
    base = _archive(runs_dir) if where == "archive" else Path(runs_dir)
    if runs is None:
        root = base.resolve()
        return [root / n for n in record.run_folder_names(base)]
    newest_first = _ids_newest_first if where == "runs" else None
    return [record.run_inside(r, base, newest_first=newest_first) for r in _refs(runs)]


def _is_running(path: Path) -> bool:
    try:
        run = record.read_json(path / record.RUN_FILE)
    except RunRecordError:
        return False
    return isinstance(run, dict) and record.resolve_status(run) == "running"


def _without_running(paths: list[Path], verb: str) -> list[Path]:
    running = [p for p in paths if _is_running(p)]
    if running:
        warnings.warn(
            f"Not {verb} {len(running)} run(s) still running: {', '.join(p.name for p in running)}. "
            "Wait for them to finish, or stop them first.",
            UserWarning,
            stacklevel=3,
        )
    return [p for p in paths if p not in running]


def _confirm(question: str, confirm: bool, what: str) -> bool:
    if not confirm:
        return True
    from trainrun._interactive import can_prompt

    if not can_prompt():
        raise TrainrunError(
            f"{what} needs confirmation, and there is no terminal to ask on. "
            "Pass confirm=False (or --yes) to go ahead without asking. Received: confirm=True"
        )
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    n = 2
    while target.exists():
        target = folder / f"{name}-{n}"
        n += 1
    return target


def clean_runs(
    runs: Any = None, runs_dir: PathLike = "runs", *, confirm: bool = False
) -> list[Path]:
    """Move runs into ``runs_dir/archive`` (reversible: ``restore_runs``); returns their new folders.

    ``runs``: None for every run, an ``ls_runs()`` DataFrame, or one or a list of runs.
    Runs still running are left in place, with a warning. The move is a rename:
    instant, and atomic for each run.

    >>> clean_runs(ls_runs("runs", filter="status == 'failed'"), "runs")  # doctest: +SKIP
    """
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # a shared store
        from trainrun.runs.store import _remote_index

        return _remote_index.clean(runs, runs_dir, confirm)  # type: ignore[return-value]
    paths = _without_running(_run_dirs(runs, runs_dir), "archiving")
    if not paths or not _confirm(
        f"Move {len(paths)} run(s) to {Path(runs_dir) / ARCHIVE_DIR}?", confirm, "clean_runs"
    ):
        return []
    moved = []
    archive = _archive(runs_dir)
    for path in paths:
        archive.mkdir(exist_ok=True)
        target = _free_name(archive, path.name)
        os.rename(path, target)  # a run folder that is a link moves as the link
        moved.append(target)
    return moved


def restore_runs(runs: Any = None, runs_dir: PathLike = "runs") -> list[Path]:
    """Move archived runs back into ``runs_dir``; returns their folders.

    ``runs``: None for every archived run, or ids / paths / a DataFrame of
    ``ls_runs("runs/archive")``.

    >>> restore_runs(runs_dir="runs")  # doctest: +SKIP
    """
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # a shared store
        from trainrun.runs.store import _remote_index

        return _remote_index.restore(runs, runs_dir)  # type: ignore[return-value]
    restored = []
    for path in _run_dirs(runs, runs_dir, where="archive"):
        target = path.parent.parent / path.name
        if target.exists():
            raise RunRecordError(
                f"Cannot restore {path.name}: {target} already exists. Move or rename one of them first."
            )
        os.rename(path, target)
        restored.append(target)
    return restored


def purge_runs(runs: Any = None, runs_dir: PathLike = "runs", *, confirm: bool = True) -> list[str]:
    """Delete runs for good: by default every archived run. Returns the ids deleted.

    ``runs``: None for everything in ``runs_dir/archive``, or runs named by id
    (looked up in the archive first, then in ``runs_dir``), path or DataFrame.
    With ``confirm=True`` it asks on the terminal and raises TrainrunError when
    there is none; pass ``confirm=False`` in scripts.

    >>> purge_runs(runs_dir="runs", confirm=False)  # doctest: +SKIP
    """
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):  # a shared store
        from trainrun.runs.store import _remote_index

        return _remote_index.purge(runs, runs_dir, confirm)
    if runs is None:
        paths = _run_dirs(None, runs_dir, where="archive")
    else:
        paths = [_purge_target(ref, runs_dir) for ref in _refs(runs)]
    paths = _without_running(paths, "deleting")
    if not paths or not _confirm(f"Delete {len(paths)} run(s) permanently?", confirm, "purge_runs"):
        return []
    for path in paths:
        _delete(path)
    return [p.name for p in paths]


def _purge_target(ref: Any, runs_dir: PathLike) -> Path:
    """The run ``ref`` names, in the archive first, then in ``runs_dir``; never elsewhere."""
    archive = _archive(runs_dir)
    # an exact id wins over a prefix match in either place: "…Z" must not
    # delete an archived "…Z-2"
    if isinstance(ref, str):
        for folder in (archive, Path(runs_dir)):
            if record.run_by_name(folder, ref) is not None:
                return folder.resolve() / ref
    try:
        return record.run_inside(ref, archive)
    except RunNotFoundError:
        return record.run_inside(ref, runs_dir, newest_first=_ids_newest_first)


def _delete(path: Path) -> None:
    """Delete a run folder; one that is a link is removed as the link, its target untouched."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)  # rmtree removes links inside the folder, never what they point to


def copy_run(
    run: RunRef, to: PathLike = ".", *, runs_dir: PathLike = "runs", rename: str | None = None
) -> Path | list[Path]:
    """Copy a run folder into the folder ``to`` (as ``rename`` or its own name); returns the copy.

    The copy is made under a hidden temporary name and renamed when complete,
    so a half copy never looks like a run. FileExistsError if the target exists.
    ``to`` may be a shared store (``s3://...``): a finished run is pushed there whole
    under its name (or ``rename``), and its URL returned.
    Only what lies inside the run is copied: regular files and folders, and links
    whose target stays inside the run (as links). A link that leads outside the
    run, a FIFO, a device or a socket is skipped, and named in a RunRecordWarning.

    >>> copy_run(0, "shared_runs", runs_dir="runs")  # doctest: +SKIP
    PosixPath('shared_runs/2026-11-27T10-15-42Z')

    Given several runs (a table of ``ls_runs()``, a list), copies each and returns
    the list of copies (``rename`` is then refused).
    """
    if _many.is_many(run):
        if rename is not None:
            raise RunRecordError("copy_run() cannot rename several runs to one name; drop rename=.")
        return [cast(Path, copy_run(r, to, runs_dir=runs_dir)) for r in _many.many(run)]
    source = get_run_dir(run, runs_dir)
    name = rename or source.name
    if not name or "/" in name or os.sep in name or name.startswith("."):
        raise RunRecordError(
            f"rename must be a plain folder name, not a path or hidden name. Received: rename={rename!r}"
        )
    if isinstance(to, str) and to.startswith("s3://"):  # into a shared store: pushed there
        from trainrun.runs.store._sync import push_copy

        return push_copy(source, to, rename)  # type: ignore[return-value]  # its URL
    parent = Path(to)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / name
    if target.exists() or target.is_symlink():
        raise FileExistsError(
            f"Cannot copy {source.name} to {target}: it already exists. Pass rename= or remove it."
        )
    tmp = parent / f".{name}.copying-{os.getpid()}"
    if tmp.exists() or tmp.is_symlink():
        _delete(tmp)
    try:
        skipped = _copy_inside(source, tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if skipped:
        shown = ", ".join(skipped[:10]) + (
            f" (and {len(skipped) - 10} more)" if len(skipped) > 10 else ""
        )
        warnings.warn(
            f"Copied {source.name} to {target} without {len(skipped)} entry(ies) that are not "
            f"files inside the run: {shown}.",
            RunRecordWarning,
            stacklevel=2,
        )
    return target


def _copy_inside(source: Path, dest: Path) -> list[str]:
    """Copy the run folder ``source`` to ``dest`` (new); returns what was skipped, with why."""
    real = os.path.realpath(source)  # the run itself may be reached through a link
    dest.mkdir()
    skipped = []
    for dirpath, dirnames, filenames in os.walk(real):  # os.walk never enters linked folders
        rel = os.path.relpath(dirpath, real)
        out = dest if rel == "." else dest / rel
        for name in sorted(dirnames + filenames):
            src = os.path.join(dirpath, name)
            where = name if rel == "." else f"{rel}/{name}"
            st = os.lstat(src)
            if stat.S_ISDIR(st.st_mode):
                (out / name).mkdir()
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(src, out / name, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                text = os.readlink(src)
                resolved = os.path.realpath(os.path.join(dirpath, text))
                if resolved == real or resolved.startswith(real + os.sep):
                    # kept as a link, relative, so that it points inside the copy
                    os.symlink(os.path.relpath(resolved, dirpath), out / name)
                else:
                    skipped.append(f"{where} (a link to {text}, outside the run)")
            else:
                skipped.append(f"{where} (not a regular file)")
    return skipped
