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
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainrun.exceptions import RunNotFoundError, RunRecordError, UsageError
from trainrun.runs import record
from trainrun.runs.report._chart import build_charts

#: output larger than this shows its head and tail only
OUTPUT_LIMIT = 200_000
#: what a running run's page redraws of its output every poll (head and tail)
LIVE_OUTPUT_LIMIT = 32_000
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


def resolve_run_dir(run: Any, runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The folder of ``run`` (None: the latest), by the one rule (``store.get_run_dir``)."""
    from trainrun.runs.store import get_run_dir

    return get_run_dir(0 if run is None else run, runs_dir)


def latest_run_dirs(n: int, runs_dir: str | os.PathLike[str] = "runs") -> list[Path]:
    """The ``n`` most recent runs, newest first."""
    from trainrun.runs.store import get_run_dir, ls_runs

    ids = ls_runs(runs_dir=runs_dir, latest_n=n, columns=["id"])["id"].tolist()
    if len(ids) < n:
        raise RunNotFoundError(
            f"Comparing needs {n} runs, but {Path(runs_dir).resolve()} holds {len(ids)}. "
            f"Start more runs or pass the runs to compare. Received: runs_dir={os.fspath(runs_dir)!r}"
        )
    return [get_run_dir(i, runs_dir) for i in ids]


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


def _absent(note: str = "") -> dict[str, Any]:
    return {
        "exists": False,
        "size": 0,
        "truncated": False,
        "text": "",
        "head": "",
        "tail": "",
        "note": note,
    }


def read_output(run_dir: Path, limit: int = OUTPUT_LIMIT) -> dict[str, Any]:
    """The run's output, whole if small, else its head and tail (read with seek, not whole).

    Only a regular file is read: an output.log that is a link, a FIFO or a device
    is shown as such, never followed or read.
    """
    try:
        size, head, tail = record.read_head_tail(run_dir / record.OUTPUT_FILE, limit)
    except FileNotFoundError:
        return _absent()
    except OSError as exc:  # NotRegularFileError is one, and a RunRecordError
        path = run_dir / record.OUTPUT_FILE
        if path.is_symlink():
            return _absent(f"{record.OUTPUT_FILE} is a link to {os.readlink(path)}: not followed")
        return _absent(str(exc))
    if not tail:
        text = clean_terminal_text(head.decode("utf-8", errors="replace"))
        return {
            "exists": True,
            "size": size,
            "truncated": False,
            "text": text,
            "head": text,
            "tail": "",
            "note": "",
        }
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
        "note": "",
    }


def _link_note(entry: Mapping[str, Any]) -> str:
    where = "inside the run" if entry.get("inside") else "outside the run"
    return f"a link to {entry.get('target')} ({where}): not followed"


def read_sources(run_dir: Path) -> list[dict[str, Any]]:
    """The source snapshot: every entry under source/, text shown when small, a regular
    file and not binary; links are listed as links, never followed."""
    files = []
    for item in record.walk(run_dir / record.SOURCE_DIR):
        entry: dict[str, Any] = {
            "path": item["path"],
            "size": item["size"],
            "text": None,
            "note": "",
            "kind": item["kind"],
        }
        if item["kind"] == "link":
            entry["note"] = _link_note(item)
        elif item["kind"] != "file":
            entry["note"] = f"not shown: a {item['kind']}"
        elif item["size"] > SOURCE_LIMIT:
            entry["note"] = f"not shown: {item['size']:,} bytes (limit {SOURCE_LIMIT:,})"
        else:
            try:
                data = record.read_bytes(run_dir / record.SOURCE_DIR / item["path"], SOURCE_LIMIT)
            except OSError as exc:
                entry["note"] = f"not shown: {exc}"
            else:
                if b"\0" in data[:8192]:
                    entry["note"] = "not shown: binary file"
                else:
                    entry["text"] = data.decode("utf-8", errors="replace")
        files.append(entry)
    return files


def script_first(sources: list[dict[str, Any]], script: Any) -> list[dict[str, Any]]:
    """The run's own script first (marked ``main``), the other source files after it."""
    if not isinstance(script, str) or not script:
        return sources
    name = script.replace("\\", "/").rsplit("/", 1)[-1]
    tail = script.replace("\\", "/").lstrip("./")

    def rank(entry: dict[str, Any]) -> int:
        path = entry["path"]
        return 0 if path == tail or tail.endswith("/" + path) else 1 if path == name else 2

    ordered = sorted(sources, key=rank)  # stable: the rest keep their order
    for entry in ordered:
        entry["main"] = False
    if ordered and rank(ordered[0]) < 2:
        ordered[0]["main"] = True
    return ordered


def read_plots(run_dir: Path) -> list[dict[str, Any]]:
    """Images in plots/ as data URIs, so the page needs no other file (regular files only;
    a link is listed as a link, never embedded)."""
    plots = []
    for item in record.walk(run_dir / record.PLOTS_DIR):
        mime = PLOT_TYPES.get(Path(item["path"]).suffix.lower())
        if mime is None:
            continue
        entry: dict[str, Any] = {
            "name": item["path"],
            "size": item["size"],
            "mime": mime,
            "data_uri": None,
            "kind": item["kind"],
            "note": "",
        }
        if item["kind"] == "link":
            entry["note"] = _link_note(item)
        elif item["kind"] != "file":
            entry["note"] = f"not shown: a {item['kind']}"
        elif item["size"] > PLOT_LIMIT:
            entry["note"] = f"not embedded: {item['size']:,} bytes (limit {PLOT_LIMIT:,})"
        else:
            try:
                data = record.read_bytes(run_dir / record.PLOTS_DIR / item["path"], PLOT_LIMIT)
            except OSError as exc:
                entry["note"] = f"not shown: {exc}"
            else:
                # an SVG shown through <img> cannot run scripts, so embedding it is safe
                entry["data_uri"] = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
        plots.append(entry)
    return plots


def list_files(root: Path, limit: int = 200) -> list[dict[str, Any]]:
    """The entries under ``root`` (artifacts/): path, kind, size; links with their target."""
    files = []
    for item in record.walk(root, limit=limit):
        entry = {"path": item["path"], "size": item["size"], "kind": item["kind"], "note": ""}
        if item["kind"] == "link":
            entry["note"] = _link_note(item)
        elif item["kind"] != "file":
            entry["note"] = f"a {item['kind']}: not downloadable"
        files.append(entry)
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
        "name": run.get("name") if isinstance(run.get("name"), str) else None,
        "note": run.get("note") if isinstance(run.get("note"), str) else None,
        "elapsed": elapsed(run),
    }


def elapsed(run: Mapping[str, Any]) -> float | None:
    """Seconds since a running run started (its duration once it ended)."""
    if run.get("status") != "running":
        duration = run.get("duration")
        return (
            float(duration) if isinstance(duration, (int, float)) and _is_number(duration) else None
        )
    start = run.get("start")
    if not isinstance(start, str):
        return None
    from datetime import datetime, timezone

    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return None
    if began.tzinfo is None:
        began = began.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - began).total_seconds())


def live_data(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What a running run's page redraws: status, elapsed time, charts and the output's tail."""
    run_dir = record.run_path(run_dir)
    run, history = _read(run_dir)
    return {
        "kind": "live",
        "id": run["id"],
        "status": run["status"],
        "elapsed": elapsed(run),
        "charts": build_charts([(run["id"], history)]),
        "metric_points": len(history),
        "output": read_output(run_dir, LIVE_OUTPUT_LIMIT),
    }


def tensorboard_commands(run_dir: Path, runs_dir: Path) -> dict[str, str]:
    return {
        "board": f"trainrun board --runs-dir {shlex.quote(str(runs_dir))}",
        "tensorboard": f"tensorboard --logdir {shlex.quote(str(run_dir / record.TENSORBOARD_DIR))}",
    }


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The metric history, as ``record.read_metrics`` gives it (bounded, regular file only)."""
    return record.read_metrics(run_dir)


def _read(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run record and its metric history, the history read once."""
    if not run_dir.is_dir():
        raise RunNotFoundError(
            f"The run folder {run_dir} does not exist. Received: run={str(run_dir)!r}"
        )
    problems = []
    try:
        history = read_history(run_dir)
    except RunRecordError as exc:  # a metrics.jsonl that is a link or too large
        problems.append(str(exc))
        history = []
    run = record.read_run(run_dir, history=history)
    run["problems"] = problems + run["problems"]
    return run, history


# ---------------------------------------------------------------- pages


def run_data(
    run_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Everything the run page shows, as one JSON-ready dict.

    >>> data = run_data("runs/2026-11-27T10-15-42Z")   # doctest: +SKIP
    >>> sorted(data)[:3]                                # doctest: +SKIP
    ['artifacts', 'charts', 'evaluation']
    """
    run_dir = record.run_path(run_dir)
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
        "sources": script_first(read_sources(run_dir), run.get("script")),
        "plots": read_plots(run_dir),
        "artifacts": list_files(run_dir / record.ARTIFACTS_DIR),
        "tensorboard": tensorboard_commands(run_dir, runs_root),
        "problems": list(run.get("problems") or []),
    }


#: summary fields that always differ between two runs, so never flagged as a difference
NOT_DIFFERENCES = ("start", "end", "duration")
#: a metric whose name holds one of these is better when lower
_LOWER_IS_BETTER = re.compile(r"loss|error|err\b|mse|mae|rmse|perplexity|wer|cer|regret", re.I)


def lower_is_better(name: str) -> bool:
    """True for losses and errors (``loss``, ``val_loss``, ``rmse``...), False for scores."""
    return bool(_LOWER_IS_BETTER.search(name))


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )


def _value_table(
    keys: list[str], columns: Sequence[Mapping[str, Any]], *, best: bool = False
) -> list[dict[str, Any]]:
    """Rows of values side by side; ``differs`` when they are not all equal, and with
    ``best`` the index of the better value of each numeric row (None on a tie)."""
    rows = []
    for key in keys:
        values = [col.get(key) for col in columns]
        differs = key not in NOT_DIFFERENCES and any(v != values[0] for v in values[1:])
        row: dict[str, Any] = {"name": key, "values": values, "differs": differs, "best": None}
        numbers: list[float] = [v for v in values if _is_number(v)]  # type: ignore[misc]
        if best and differs and len(numbers) > 1:
            lower = lower_is_better(key)
            target = min(numbers) if lower else max(numbers)
            if numbers.count(target) == 1:
                row["best"] = next(i for i, v in enumerate(values) if _is_number(v) and v == target)
            row["better"] = "lower" if lower else "higher"
        rows.append(row)
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
    lines: list[dict[str, str]] = []
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
    _mark_numbers_only(lines)
    added = sum(1 for x in lines if x["kind"] == "add")
    removed = sum(1 for x in lines if x["kind"] == "del")
    return {"lines": lines, "added": added, "removed": removed, "truncated": truncated}


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _mark_numbers_only(lines: list[dict[str, Any]]) -> None:
    """Mark added/removed lines that another changed line of the same hunk matches once
    their numbers are ignored (progress lines: "step 10 loss 0.31" vs "step 10 loss 0.29")."""
    hunk: list[dict[str, Any]] = []
    for line in [*lines, {"kind": "hunk", "text": ""}]:
        if line["kind"] in ("add", "del"):
            hunk.append(line)
            continue
        if line["kind"] == "hunk" and hunk:
            masked = {"add": {}, "del": {}}  # type: dict[str, dict[str, int]]
            for item in hunk:
                key = _NUMBER.sub("#", item["text"][1:])
                masked[item["kind"]][key] = masked[item["kind"]].get(key, 0) + 1
            for item in hunk:
                other = "del" if item["kind"] == "add" else "add"
                key = _NUMBER.sub("#", item["text"][1:])
                if key in masked[other] and _NUMBER.search(item["text"][1:]):
                    item["numbers_only"] = True
            hunk = []


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
    dirs = [record.run_path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise UsageError(
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
        "evaluation": _value_table(_ordered_union(evals), evals, best=True),
        "metrics": _value_table(_ordered_union(metrics), metrics, best=True),
        "diffs": diffs,
        "problems": [f"{r['id']}: {p}" for r in runs for p in r.get("problems") or []],
    }


def _run_colors(n: int) -> list[str]:
    from trainrun.runs.report._chart import PALETTE

    return [PALETTE[i % len(PALETTE)] for i in range(n)]
