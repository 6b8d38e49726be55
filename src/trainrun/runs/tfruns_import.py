"""Import R tfruns run folders (``tfruns.d``) as trainrun runs.

A tfruns run is a folder holding what the script wrote and a ``tfruns.d``
folder of metadata: ``flags.json``, ``evaluation.json``, ``metrics.json`` (one
list per metric, one value per epoch), ``error.json`` (``message``,
``traceback``), ``properties/`` (one text file per property: ``script``,
``start``, ``end``, ``completed``, ``output``, ``model``, ``optimizer``, ...)
and ``source.tar.gz``. Each becomes a trainrun run folder with the same id:

- run.json: script, status (``completed`` property true: completed; an
  ``error.json``: failed; otherwise interrupted), start, end, duration, error,
  traceback, the other properties (numbers converted), and the tags
  ``imported_from=tfruns`` and ``tfruns_run_dir``;
- flags.json, evaluation.json, metrics.jsonl (a row per epoch, ``step`` = epoch
  index), output.log (the ``output`` property);
- source/ (the archive unpacked with tarfile's ``data`` filter: nothing outside
  the folder, no links out, no devices), plots/ (the run's ``plots/*.png``) and
  artifacts/ (the other regular files of the run folder).

A run already imported (same id in the runs folder) is skipped, so importing
again only adds new runs. Nothing in the tfruns folder is changed.

>>> import_tfruns("old-project/runs", runs_dir="runs")  # doctest: +SKIP
['2017-10-12T21-30-38Z', ...]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tarfile
import time
from pathlib import Path
from typing import Any

from trainrun.exceptions import RunRecordError
from trainrun.runs import record

__all__ = ["import_tfruns"]

META = "tfruns.d"
#: Largest file copied from a tfruns folder (source archive members, artifacts, plots).
MAX_FILE_BYTES = 200_000_000
_CORE_PROPERTIES = ("script", "start", "end", "completed", "output")


def _tfruns_runs(folder: Path) -> list[Path]:
    """The tfruns run folders in ``folder`` (itself one, or a runs folder holding them)."""
    if (folder / META).is_dir():
        return [folder]
    return sorted(p for p in folder.iterdir() if not p.is_symlink() and (p / META).is_dir())


#: Largest metadata file read (flags, metrics, a property).
MAX_META_BYTES = 50_000_000


def _read_text(path: Path) -> str | None:
    """A regular file's text, never through a link, a FIFO or a device; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return None  # absent, or a link (O_NOFOLLOW): nothing outside the run is read
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_META_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_META_BYTES).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RunRecordError(f"The tfruns file {path} is not valid JSON: {exc}") from exc


def _scalar(value: Any) -> Any:
    """jsonlite writes length-1 vectors as scalars, longer ones as lists."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _typed(text: str) -> Any:
    """A property's text as R wrote it: TRUE/FALSE, numbers, NA, else the text."""
    text = text.rstrip("\n")
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    if text == "NA":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer() and "." not in text and "e" not in text:
        return int(number)
    return number


def _properties(meta: Path) -> dict[str, Any]:
    folder = meta / "properties"
    out: dict[str, Any] = {}
    if not folder.is_dir() or folder.is_symlink():
        return out
    for path in sorted(folder.iterdir()):
        text = _read_text(path)
        if text is None:
            continue
        out[path.name] = text if path.name == "output" else _typed(text)
    return out


def _iso(seconds: Any) -> str | None:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return None
    whole = int(seconds)
    micros = int(round((seconds - whole) * 1_000_000)) % 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def _metric_rows(metrics: Any) -> list[dict[str, Any]]:
    if not isinstance(metrics, dict):
        return []
    series = {k: v if isinstance(v, list) else [v] for k, v in metrics.items() if k != "epoch"}
    n = max((len(v) for v in series.values()), default=0)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"step": i, "epoch": i + 1}
        for name, values in series.items():
            value = values[i] if i < len(values) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[name] = value
        if len(row) > 2:
            rows.append(row)
    return rows


def _copy_regular(src: Path, dest: Path) -> bool:
    """Copy a regular file (never through a link); False when skipped."""
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.dup(fd), "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        return True
    finally:
        os.close(fd)


def _unpack_source(archive: Path, dest: Path, skipped: list[str]) -> int:
    if archive.is_symlink() or not archive.is_file():
        return 0
    count = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.size > MAX_FILE_BYTES:
                    skipped.append(f"source: {member.name} (too large)")
                    continue
                try:
                    tar.extract(member, dest, filter="data")  # nothing outside dest, no links out
                    count += member.isfile()
                except (tarfile.FilterError, OSError) as exc:
                    skipped.append(f"source: {member.name} ({exc})")
    except (tarfile.TarError, OSError, EOFError) as exc:
        skipped.append(f"source.tar.gz ({exc})")
    return count


def _files(src: Path, run_dir: Path, skipped: list[str]) -> None:
    """The tfruns run's plots/*.png into plots/, its other files into artifacts/."""
    for dirpath, dirnames, filenames in os.walk(src):  # never enters linked folders
        rel_dir = os.path.relpath(dirpath, src)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != META]
        for name in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel.startswith("plots" + os.sep) and name.lower().endswith((".png", ".svg")):
                target = run_dir / record.PLOTS_DIR / rel[len("plots") + 1 :]
            else:
                target = run_dir / record.ARTIFACTS_DIR / rel
            if not _copy_regular(Path(dirpath) / name, target):
                skipped.append(f"{rel} (not a regular file inside the run, or too large)")


def _import_one(src: Path, runs_root: Path) -> str | None:
    meta = src / META
    target = runs_root / src.name
    if target.exists() or target.is_symlink():
        return None
    props = _properties(meta)
    flags = _read_json(meta / "flags.json") or {}
    evaluation = _read_json(meta / "evaluation.json") or {}
    error = _read_json(meta / "error.json")
    metrics = _read_json(meta / "metrics.json")
    start, end = props.get("start"), props.get("end")
    if isinstance(error, dict):
        status = "failed"
    elif props.get("completed") is True:
        status = "completed"
    else:
        status = "interrupted"
    skipped: list[str] = []
    tmp = runs_root / f".{src.name}.importing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for sub in record.SUBDIRS:
            (tmp / sub).mkdir()
        extra = {k: v for k, v in props.items() if k not in _CORE_PROPERTIES}
        traceback = _scalar(error.get("traceback")) if isinstance(error, dict) else None
        if isinstance(traceback, list):
            traceback = "\n".join(map(str, traceback))
        info: dict[str, Any] = {
            "id": src.name,
            "script": props.get("script"),
            "command": None,
            "status": status,
            "start": _iso(start),
            "end": _iso(end),
            "duration": round(end - start, 6)
            if isinstance(start, (int, float)) and isinstance(end, (int, float))
            else None,
            "exit_code": None,
            "error": _scalar(error.get("message")) if isinstance(error, dict) else None,
            "traceback": traceback,
            "host": None,
            "pid": None,
            "properties": extra,
            "tags": {"imported_from": "tfruns", "tfruns_run_dir": str(src)},
        }
        flag_values = (
            {str(k): _scalar(v) for k, v in flags.items()} if isinstance(flags, dict) else {}
        )
        record.write_json(
            tmp / record.FLAGS_FILE,
            {"values": flag_values, "declared": {}, "sources": dict.fromkeys(flag_values, "run")},
        )
        if isinstance(evaluation, dict) and evaluation:
            record.write_json(
                tmp / record.EVALUATION_FILE, {k: _scalar(v) for k, v in evaluation.items()}
            )
        rows = _metric_rows(metrics)
        if rows:
            record.append_jsonl(tmp / record.METRICS_FILE, rows)
        if isinstance(props.get("output"), str):
            (tmp / record.OUTPUT_FILE).write_text(props["output"], encoding="utf-8")
        files = _unpack_source(meta / "source.tar.gz", tmp / record.SOURCE_DIR, skipped)
        info["source"] = {"files": files, "bytes": 0, "skipped": []}
        _files(src, tmp, skipped)
        if skipped:
            info["import_skipped"] = skipped[:100]
        record.write_json(tmp / record.RUN_FILE, info)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return src.name


def import_tfruns(
    source: str | os.PathLike[str], runs_dir: str | os.PathLike[str] = "runs"
) -> list[str]:
    """Import the tfruns runs in ``source`` (a tfruns runs folder, or one run) into ``runs_dir``.

    Returns the ids imported (runs already there are skipped). Raises
    RunRecordError when ``source`` holds no tfruns run.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise RunRecordError(
            f"{os.fspath(source)!r} is not a folder; pass a tfruns runs folder (holding run "
            f"folders with a {META} folder each) or one tfruns run folder."
        )
    found = _tfruns_runs(folder)
    if not found:
        raise RunRecordError(
            f"{folder} holds no tfruns run (no {META} folder in it or in its subfolders); "
            "pass the runs folder of an R project that used tfruns."
        )
    runs_root = Path(runs_dir).expanduser().resolve()
    runs_root.mkdir(parents=True, exist_ok=True)
    imported = []
    for src in found:
        name = _import_one(src.resolve(), runs_root)
        if name is not None:
            imported.append(name)
    return imported
