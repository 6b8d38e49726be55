"""The data behind a report page, built once as a plain dict.

``run_data`` and ``comparison_data`` read a run folder (through ``record``) and
return JSON-ready dicts. The HTML report, the notebook display and the
dashboard's pages and JSON twins all render these same dicts, so they cannot
disagree. Every read is bounded: the output is read head and tail with seek,
source files and plots above a size are listed, not embedded.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainrun.exceptions import RunNotFoundError
from trainrun.runs import record
from trainrun.runs.report._chart import build_charts

#: output larger than this shows its head and tail only
OUTPUT_LIMIT = 200_000
#: a source file larger than this is listed, not shown
SOURCE_LIMIT = 200_000
#: a plot larger than this is listed, not embedded
PLOT_LIMIT = 8_000_000
#: diffs stop after this many lines (per file)
DIFF_LINE_LIMIT = 4000

PLOT_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


# ---------------------------------------------------------------- finding runs


def _store():
    try:
        from trainrun.runs import store
    except ImportError:
        return None
    return store


def _run_folders(runs_dir: Path) -> list[Path]:
    """Run folders directly under runs_dir, oldest first (names are UTC start times)."""
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return []
    out = [
        Path(e.path)
        for e in entries
        if e.is_dir()
        and not e.name.startswith(".")
        and os.path.exists(os.path.join(e.path, record.RUN_FILE))
    ]
    return sorted(out, key=lambda p: p.name)


def run_ids(runs_dir: str | os.PathLike[str]) -> set[str]:
    """Ids of the runs in ``runs_dir``: the only names the dashboard accepts in a URL."""
    return {p.name for p in _run_folders(Path(runs_dir))}


def resolve_run_dir(run: Any, runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The folder of ``run``: None (latest), an id, a path, an int (0 = latest), or a record.

    A record is what ``training_run``, ``latest_run`` or ``run_info`` return (a
    dict with "run_dir"), or a row of ``ls_runs()``.
    """
    if isinstance(run, Mapping) or (hasattr(run, "get") and hasattr(run, "index")):
        value = run.get("run_dir")
        if value is None:
            raise RunNotFoundError(
                "The run record has no 'run_dir' entry; pass a run id or a path instead. "
                f"Received: run={str(run)[:200]}"
            )
        run = value
    if isinstance(run, os.PathLike):
        run = os.fspath(run)
    runs_path = Path(runs_dir)
    if isinstance(run, str) and run:
        candidate = Path(run)
        if candidate.is_dir() and (candidate / record.RUN_FILE).exists():
            return candidate.resolve()
        if (runs_path / run).is_dir() and run in run_ids(runs_path):
            return (runs_path / run).resolve()
    store = _store()
    if store is not None and hasattr(store, "get_run_dir"):
        return Path(store.get_run_dir(0 if run is None else run, runs_dir=runs_dir)).resolve()
    folders = _run_folders(runs_path)
    if run is None:
        run = 0
    if isinstance(run, int) and not isinstance(run, bool) and 0 <= run < len(folders):
        return folders[-1 - run].resolve()
    raise RunNotFoundError(
        f"No run {run!r} in {runs_path.resolve()} ({len(folders)} runs there). "
        "Pass a run id as `trainrun ls` shows it, a run folder path, or an index (0 = latest). "
        f"Received: run={run!r}"
    )


def latest_run_dirs(n: int, runs_dir: str | os.PathLike[str] = "runs") -> list[Path]:
    """The ``n`` most recent runs, newest first."""
    store = _store()
    if store is not None and hasattr(store, "ls_runs"):
        df = store.ls_runs(runs_dir=runs_dir, latest_n=n)
        dirs = [Path(p) for p in df["run_dir"].tolist()] if len(df) else []
    else:
        dirs = list(reversed(_run_folders(Path(runs_dir))))[:n]
    if len(dirs) < n:
        raise RunNotFoundError(
            f"Comparing needs {n} runs, but {Path(runs_dir).resolve()} holds {len(dirs)}. "
            f"Start more runs or pass the runs to compare. Received: runs_dir={os.fspath(runs_dir)!r}"
        )
    return [d.resolve() for d in dirs]


# ---------------------------------------------------------------- pieces


def clean_terminal_text(text: str) -> str:
    """Output as a terminal would show it: colour codes removed, '\\r' redraws collapsed."""
    text = _ANSI.sub("", text)
    if "\r" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        lines.append(line)
    return "\n".join(lines)


def read_output(run_dir: Path, limit: int = OUTPUT_LIMIT) -> dict[str, Any]:
    """The run's output, whole if small, else its head and tail (read with seek, not whole)."""
    path = run_dir / record.OUTPUT_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {"exists": False, "size": 0, "truncated": False, "text": "", "head": "", "tail": ""}
    with open(path, "rb") as f:
        if size <= limit:
            text = clean_terminal_text(f.read().decode("utf-8", errors="replace"))
            return {
                "exists": True,
                "size": size,
                "truncated": False,
                "text": text,
                "head": text,
                "tail": "",
            }
        half = limit // 2
        head = f.read(half)
        f.seek(size - half)
        tail = f.read(half)
    # cut at line boundaries so neither part starts or ends mid-line
    cut = head.rfind(b"\n")
    head = head[: cut + 1] if cut > 0 else head
    cut = tail.find(b"\n")
    tail = tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail
    return {
        "exists": True,
        "size": size,
        "truncated": True,
        "omitted": size - len(head) - len(tail),
        "text": "",
        "head": clean_terminal_text(head.decode("utf-8", errors="replace")),
        "tail": clean_terminal_text(tail.decode("utf-8", errors="replace")),
    }


def read_sources(run_dir: Path) -> list[dict[str, Any]]:
    """The source snapshot: every file under source/, text shown when small and not binary."""
    root = run_dir / record.SOURCE_DIR
    files = []
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            try:
                size = path.stat().st_size
            except OSError:
                continue
            entry: dict[str, Any] = {"path": rel, "size": size, "text": None, "note": ""}
            if size > SOURCE_LIMIT:
                entry["note"] = f"not shown: {size:,} bytes (limit {SOURCE_LIMIT:,})"
            else:
                data = path.read_bytes()
                if b"\0" in data[:8192]:
                    entry["note"] = "not shown: binary file"
                else:
                    entry["text"] = data.decode("utf-8", errors="replace")
            files.append(entry)
    return files


def read_plots(run_dir: Path) -> list[dict[str, Any]]:
    """Images in plots/ as data URIs, so the page needs no other file."""
    root = run_dir / record.PLOTS_DIR
    plots = []
    if not root.is_dir():
        return plots
    for path in sorted(root.rglob("*")):
        mime = PLOT_TYPES.get(path.suffix.lower())
        if mime is None or not path.is_file():
            continue
        size = path.stat().st_size
        entry = {
            "name": path.relative_to(root).as_posix(),
            "size": size,
            "mime": mime,
            "data_uri": None,
        }
        if size <= PLOT_LIMIT:
            # an SVG shown through <img> cannot run scripts, so embedding it is safe
            entry["data_uri"] = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode(
                "ascii"
            )
        plots.append(entry)
    return plots


def list_files(root: Path, limit: int = 200) -> list[dict[str, Any]]:
    files = []
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                files.append(
                    {"path": path.relative_to(root).as_posix(), "size": path.stat().st_size}
                )
            except OSError:
                continue
            if len(files) >= limit:
                return files
    return files


def flag_rows(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    declared = run.get("declared_flags") or {}
    values = run.get("flags") or {}
    rows = []
    for name in list(values) + [n for n in declared if n not in values]:
        decl = declared.get(name) or {}
        if not isinstance(decl, Mapping):
            decl = {}
        value = values.get(name, decl.get("default"))
        rows.append(
            {
                "name": name,
                "value": value,
                "default": decl.get("default"),
                "type": decl.get("type"),
                "description": decl.get("description"),
                "changed": "default" in decl and decl.get("default") != value,
            }
        )
    return rows


SUMMARY_FIELDS = ("script", "status", "start", "end", "duration", "exit_code", "error")


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    git = run.get("git") or {}
    return {
        "id": run.get("id"),
        "script": run.get("script"),
        "status": run.get("status"),
        "start": run.get("start"),
        "end": run.get("end"),
        "duration": run.get("duration"),
        "exit_code": run.get("exit_code"),
        "error": run.get("error"),
        "traceback": run.get("traceback"),
        "command": " ".join(shlex.quote(str(c)) for c in run.get("command") or []),
        "host": run.get("host"),
        "pid": run.get("pid"),
        "python": run.get("python"),
        "git_commit": git.get("commit") if isinstance(git, Mapping) else None,
        "git_dirty": git.get("dirty") if isinstance(git, Mapping) else None,
        "tags": dict(run.get("tags") or {}),
        "packages": dict(run.get("packages") or {}),
    }


def tensorboard_commands(run_dir: Path, runs_dir: Path) -> dict[str, str]:
    return {
        "board": f"trainrun board {shlex.quote(str(runs_dir))}",
        "tensorboard": f"tensorboard --logdir {shlex.quote(str(run_dir / record.TENSORBOARD_DIR))}",
    }


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The metric history, as ``record.read_metrics`` gives it, parsed in one call.

    Parsing 100,000 lines one ``json.loads`` at a time takes about a second;
    joining them into one JSON array takes a fraction of that. A bad line (the
    truncated last line of a killed run) falls back to the line-by-line reader,
    which skips it.
    """
    path = run_dir / record.METRICS_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        parsed = json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        return record.read_metrics(run_dir)
    return [rec for rec in parsed if isinstance(rec, dict)]


def _read(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run record and its metric history, the history read once."""
    if not run_dir.is_dir():
        raise RunNotFoundError(
            f"The run folder {run_dir} does not exist. Received: run={str(run_dir)!r}"
        )
    history = read_history(run_dir)
    return record.read_run(run_dir, history=history), history


# ---------------------------------------------------------------- pages


def run_data(
    run_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Everything the run page shows, as one JSON-ready dict.

    >>> data = run_data("runs/2026-11-27T10-15-42Z")   # doctest: +SKIP
    >>> sorted(data)[:3]                                # doctest: +SKIP
    ['artifacts', 'charts', 'evaluation']
    """
    run_dir = Path(run_dir).resolve()
    runs_root = Path(runs_dir).resolve() if runs_dir is not None else run_dir.parent
    run, history = _read(run_dir)
    return {
        "kind": "run",
        "id": run["id"],
        "run_dir": str(run_dir),
        "runs_dir": str(runs_root),
        "status": run["status"],
        "summary": summary(run),
        "charts": build_charts([(run["id"], history)]),
        "metric_points": len(history),
        "metrics": run.get("metrics") or {},
        "evaluation": run.get("evaluation") or {},
        "flags": flag_rows(run),
        "output": read_output(run_dir),
        "sources": read_sources(run_dir),
        "plots": read_plots(run_dir),
        "artifacts": list_files(run_dir / record.ARTIFACTS_DIR),
        "tensorboard": tensorboard_commands(run_dir, runs_root),
        "problems": list(run.get("problems") or []),
    }


def _value_table(keys: list[str], columns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        values = [col.get(key) for col in columns]
        differs = any(v != values[0] for v in values[1:])
        rows.append({"name": key, "values": values, "differs": differs})
    return rows


def _ordered_union(dicts: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            seen.setdefault(k, None)
    return list(seen)


def unified_diff(a: str, b: str, name_a: str, name_b: str) -> dict[str, Any]:
    """A unified diff as lines tagged add/del/hunk/context, bounded to DIFF_LINE_LIMIT lines."""
    a_lines = a.splitlines()
    b_lines = b.splitlines()
    lines = []
    truncated = False
    for line in difflib.unified_diff(a_lines, b_lines, name_a, name_b, lineterm="", n=3):
        if len(lines) >= DIFF_LINE_LIMIT:
            truncated = True
            break
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append({"kind": kind, "text": line})
    added = sum(1 for x in lines if x["kind"] == "add")
    removed = sum(1 for x in lines if x["kind"] == "del")
    return {"lines": lines, "added": added, "removed": removed, "truncated": truncated}


def _output_text(out: Mapping[str, Any]) -> str:
    if not out["truncated"]:
        return out["text"]
    return out["head"] + f"\n[... {out['omitted']:,} bytes not shown ...]\n" + out["tail"]


def comparison_data(
    run_dirs: Sequence[str | os.PathLike[str]], runs_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Two or more runs side by side, as one JSON-ready dict.

    The first run is the baseline: source and output diffs go from it to each
    of the others.
    """
    dirs = [Path(d).resolve() for d in run_dirs]
    if len(dirs) < 2:
        raise ValueError(
            f"A comparison needs at least two runs. Received: runs={[str(d) for d in run_dirs]!r}"
        )
    read = [_read(d) for d in dirs]
    runs = [r for r, _ in read]
    ids = [r["id"] for r in runs]
    runs_root = Path(runs_dir).resolve() if runs_dir is not None else dirs[0].parent
    histories = [(r["id"], h) for r, h in read]
    flags = [r.get("flags") or {} for r in runs]
    evals = [r.get("evaluation") or {} for r in runs]
    metrics = [r.get("metrics") or {} for r in runs]
    summaries = [summary(r) for r in runs]
    summary_rows = _value_table(list(SUMMARY_FIELDS), summaries)

    sources = [{s["path"]: s for s in read_sources(d)} for d in dirs]
    outputs = [read_output(d) for d in dirs]
    diffs = []
    base = sources[0]
    for i in range(1, len(runs)):
        other = sources[i]
        files = []
        for path in sorted(set(base) | set(other)):
            a, b = base.get(path), other.get(path)
            if a is None:
                state = "added"
            elif b is None:
                state = "removed"
            elif a.get("text") == b.get("text") and a["size"] == b["size"]:
                state = "same"
            else:
                state = "changed"
            entry: dict[str, Any] = {"path": path, "state": state, "diff": None, "note": ""}
            if state != "same":
                ta = (a or {}).get("text")
                tb = (b or {}).get("text")
                if (a and ta is None) or (b and tb is None):
                    entry["note"] = (a or b or {}).get("note") or "not shown"
                else:
                    entry["diff"] = unified_diff(
                        ta or "", tb or "", f"{ids[0]}/{path}", f"{ids[i]}/{path}"
                    )
            files.append(entry)
        out_diff = unified_diff(
            _output_text(outputs[0]),
            _output_text(outputs[i]),
            f"{ids[0]}/output.log",
            f"{ids[i]}/output.log",
        )
        diffs.append({"from": ids[0], "to": ids[i], "files": files, "output": out_diff})

    return {
        "kind": "compare",
        "ids": ids,
        "run_dirs": [str(d) for d in dirs],
        "runs_dir": str(runs_root),
        "statuses": [r["status"] for r in runs],
        "summary": summary_rows,
        "charts": build_charts(histories),
        "colors": {rid: c for rid, c in zip(ids, _run_colors(len(ids)), strict=True)},
        "flags": _value_table(_ordered_union(flags), flags),
        "evaluation": _value_table(_ordered_union(evals), evals),
        "metrics": _value_table(_ordered_union(metrics), metrics),
        "diffs": diffs,
        "problems": [f"{r['id']}: {p}" for r in runs for p in r.get("problems") or []],
    }


def _run_colors(n: int) -> list[str]:
    from trainrun.runs.report._chart import PALETTE

    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _identifier(name: str) -> str:
    return re.sub(r"\W+", "_", str(name)).strip("_")


def folder_listing(runs_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows like ``ls_runs()`` gives, read straight from the folders, newest first.

    Used only where ``trainrun.runs.store`` is not installed; a corrupt run is skipped.
    """
    rows = []
    for path in reversed(_run_folders(Path(runs_dir))):
        try:
            run = record.read_run(path)
        except (OSError, ValueError):
            continue
        row: dict[str, Any] = {
            "run_dir": run["run_dir"],
            "id": run["id"],
            "status": run["status"],
            "start": run.get("start"),
            "end": run.get("end"),
            "duration": run.get("duration"),
            "script": run.get("script"),
            "exit_code": run.get("exit_code"),
        }
        for prefix, values in (
            ("tag_", run.get("tags") or {}),
            ("flag_", run.get("flags") or {}),
            ("metric_", run.get("metrics") or {}),
            ("eval_", run.get("evaluation") or {}),
        ):
            for key, value in values.items():
                row[prefix + _identifier(key)] = value
        rows.append(row)
    return rows
