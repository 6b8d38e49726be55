"""``trainrun run | ls | show | clean | restore | purge | copy``: the runs verbs.

Each verb is a few lines over ``trainrun.runs.launch`` and ``trainrun.runs.store``,
imported inside the verb so that ``trainrun --help`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from typing import Any

RUNS_DIR_HELP = "folder that holds the runs (default: runs)"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    for add in _VERBS.values():
        add(subparsers)


def register_verb(subparsers: argparse._SubParsersAction, verb: str) -> None:
    """Add only ``verb``'s parser: ``trainrun run`` need not build the other six."""
    _VERBS[verb](subparsers)


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        allow_abbrev=False,  # "--v" must not become --view: the script may have such options
        help="run a script as a recorded training run",
        description="Run SCRIPT as a training run: a new folder under the runs folder records "
        "its flags, output, metrics, status and source. Options may come before or after "
        "SCRIPT; arguments for the script itself go after '--'.",
        epilog="example: trainrun run train.py --flag dropout=0.3 --flag layer1=128 -- --epochs 2\n"
        "exit codes: 0 completed, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C or SIGTERM)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _run_options(p)
    # one REMAINDER positional keeps a '--' after the script (argparse drops a '--'
    # that directly follows a positional of its own)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="SCRIPT [OPTIONS] [-- ARGS]")
    p.set_defaults(func=_run)


def _add_ls(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ls",
        help="list runs as a table",
        description="List the runs of a runs folder, newest first.",
        epilog='example: trainrun ls --filter "eval_accuracy > 0.8 and flag_dropout < 0.3" '
        "--order eval_accuracy --latest 10",
    )
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.add_argument(
        "--order", default=None, metavar="COL", help="sort by this column (default: start)"
    )
    p.add_argument("--asc", action="store_true", help="sort ascending (default: descending)")
    p.add_argument("--filter", default=None, metavar="EXPR", help="keep runs matching EXPR")
    p.add_argument(
        "--latest", type=_positive_int, default=None, metavar="N", help="only the N latest runs"
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="A,B",
        help="columns to show, comma separated; patterns such as 'eval_*' work",
    )
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    p.add_argument("--refresh", action="store_true", help="re-read every run folder, not the index")
    p.set_defaults(func=_ls)


def _add_show(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show", help="show one run's record", description="Show everything a run recorded."
    )
    p.add_argument(
        "run",
        nargs="?",
        default="0",
        help="run id, unique id prefix, folder, or N-th latest (default 0)",
    )
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=_show)


def _add_clean(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "clean",
        help="move runs to the archive (reversible)",
        description="Move runs into RUNS_DIR/archive (undo with `trainrun restore`). "
        "With no RUN and no --filter, every run. Running runs are left in place.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to archive (default: all)")
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.add_argument("--filter", default=None, metavar="EXPR", help="archive the runs matching EXPR")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    p.set_defaults(func=_clean)


def _add_restore(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "restore",
        help="move archived runs back",
        description="Move runs from RUNS_DIR/archive back into RUNS_DIR.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="archived runs to restore (default: all)")
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.set_defaults(func=_restore)


def _add_purge(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "purge",
        help="delete archived runs for good",
        description="Delete runs permanently: by default every run in RUNS_DIR/archive. "
        "Asks to confirm on a terminal; elsewhere it needs --yes.",
    )
    p.add_argument(
        "runs", nargs="*", metavar="RUN", help="runs to delete (default: the whole archive)"
    )
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    p.set_defaults(func=_purge)


def _add_copy(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "copy",
        help="copy a run folder elsewhere",
        description="Copy a run's folder into the folder TO.",
    )
    p.add_argument("run", help="run id, unique id prefix, folder, or N-th latest")
    p.add_argument("to", help="folder to copy the run into (created if needed)")
    p.add_argument("--rename", default=None, help="name of the copy (default: the run's id)")
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.set_defaults(func=_copy)


_VERBS = {
    "run": _add_run,
    "ls": _add_ls,
    "show": _add_show,
    "clean": _add_clean,
    "restore": _add_restore,
    "purge": _add_purge,
    "copy": _add_copy,
}


# ---------------------------------------------------------------- helpers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--flag",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a flag of the script (repeatable)",
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="tag the run (repeatable)"
    )
    p.add_argument("--runs-dir", default="runs", help=RUNS_DIR_HELP)
    p.add_argument("--no-echo", action="store_true", help="do not copy the script's output here")
    p.add_argument("--view", action="store_true", help="open the run's report when it ends")
    p.add_argument(
        "--cwd", default=None, metavar="DIR", help="run the script from DIR (default: here)"
    )
    p.add_argument(
        "--in-script-dir", action="store_true", help="run the script from its own folder"
    )
    p.add_argument(
        "--nproc",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run the script on N processes with torchrun, as one run (docs/distributed.md)",
    )
    p.add_argument(
        "--no-check-flags",
        action="store_true",
        help="pass --flag values unchecked (default: refused unless the script declares them)",
    )


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _Usage(
                f"--{what} expects NAME=VALUE, e.g. --{what} dropout=0.3. Received: {item!r}"
            )
        out[name.strip()] = value
    return out


class _Usage(Exception):
    """Bad command-line usage: message printed, exit code 2."""


def _error(message: Any) -> int:
    print(f"trainrun: error: {message}", file=sys.stderr)
    return EXIT_USAGE


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Library warnings (a corrupt run skipped...) as one readable line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                print(f"trainrun: warning: {w.message}", file=sys.stderr)


def _run_ref(text: str) -> Any:
    # "0", "1"... count back from the latest run, as the Python API's integers do
    return int(text) if text.isdigit() and len(text) < 6 else text


# ---------------------------------------------------------------- run


def _run(args: argparse.Namespace) -> int:
    if args.command and args.command[0].startswith("-"):
        return _error(
            "`trainrun run` needs the script to run, e.g. trainrun run train.py --flag dropout=0.3"
        )
    # no script: train.py, else the folder's only .py file (tfruns' default)
    args.script, rest = (args.command[0] if args.command else None), list(args.command[1:])
    script_args: list[str] = []
    if "--" in rest:
        cut = rest.index("--")
        rest, script_args = rest[:cut], rest[cut + 1 :]
    # options given after the script: parse them with the same definitions
    late = argparse.ArgumentParser(prog="trainrun run SCRIPT", add_help=False, allow_abbrev=False)
    _run_options(late)
    late.set_defaults(flag=[], tag=[], runs_dir=None, cwd=None)
    opts, unknown = late.parse_known_args(rest)
    if unknown:
        return _error(
            f"unknown option(s) for `trainrun run`: {' '.join(unknown)}. Give flags as "
            f"--flag NAME=VALUE, or pass arguments to the script after '--' "
            f"(trainrun run {args.script} -- {' '.join(unknown)})."
        )
    try:
        flags = _pairs(args.flag + opts.flag, "flag")
        tags = _pairs(args.tag + opts.tag, "tag")
    except _Usage as exc:
        return _error(exc)
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.launch import training_run

    if args.in_script_dir or opts.in_script_dir:
        if args.script is None:
            return _error("--in-script-dir needs the script, e.g. trainrun run src/train.py")
        args.cwd = os.path.dirname(os.path.abspath(args.script))
    try:
        info = training_run(
            args.script,
            flags=flags or None,
            runs_dir=opts.runs_dir or args.runs_dir,
            args=script_args,
            tags=tags or None,
            echo=not (args.no_echo or opts.no_echo),
            view=True if (args.view or opts.view) else None,
            cwd=opts.cwd or args.cwd,
            check_flags=not (args.no_check_flags or opts.no_check_flags),
            nproc=opts.nproc or args.nproc,
        )
    except KeyboardInterrupt:
        print("trainrun: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (TrainrunError, FileNotFoundError) as exc:
        return _error(exc)
    status = info.get("status")
    print(f"trainrun: run {info.get('id')} {status} ({info.get('run_dir')})", file=sys.stderr)
    # all on disk now: the command may skip the interpreter's teardown, unless a report
    # was opened (a viewer may still be serving it)
    args.exit_at_once = not (args.view or opts.view)
    if status == "completed":
        return 0
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED


# ---------------------------------------------------------------- ls


#: the order in which ``trainrun ls`` shows columns until the terminal is full
def _default_columns(names: list[str]) -> list[str]:
    head = ["id", "status", "start", "duration"]
    groups = [[c for c in names if c.startswith(p)] for p in ("eval_", "metric_", "flag_")]
    tail = ["script", *[c for c in names if c.startswith("tag_")], "exit_code", "end", "run_dir"]
    out = [c for c in head if c in names]
    for group in groups:
        out += group
    return out + [c for c in tail if c in names and c not in out]


def _cell(value: Any, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if hasattr(value, "strftime"):
        if value != value:  # NaT
            return ""
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "true" if value else "false"
    if column == "duration" and isinstance(value, (int, float)):
        return _duration(float(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    if value.__class__.__name__ == "NAType":
        return ""
    text = str(value).replace("\n", " ")
    return text if len(text) <= 40 else text[:39] + "…"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_table(df: Any, width: int | None = None, columns: list[str] | None = None) -> str:
    """The runs as an aligned text table that fits ``width`` characters (columns dropped from the right)."""
    names = columns or _default_columns(list(df.columns))
    if len(df) == 0:
        return "No runs."
    rendered: list[tuple[str, list[str], bool]] = []
    used = 0
    hidden = 0
    for name in names:
        values = df[name].tolist()
        cells = [_cell(v, name) for v in values]
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) or _cell(v, name) == ""
            for v in values
        )
        w = max([len(name), *(len(c) for c in cells)])
        if width is not None and rendered and used + w + 2 > width and columns is None:
            hidden += 1
            continue
        used += w + 2
        rendered.append((name, cells, numeric))
    widths = [max([len(n), *(len(c) for c in cells)]) for n, cells, _ in rendered]
    lines = [
        "  ".join(
            n.rjust(w) if num else n.ljust(w)
            for (n, _, num), w in zip(rendered, widths, strict=True)
        ).rstrip()
    ]
    for i in range(len(df)):
        lines.append(
            "  ".join(
                cells[i].rjust(w) if num else cells[i].ljust(w)
                for (_, cells, num), w in zip(rendered, widths, strict=True)
            ).rstrip()
        )
    if hidden:
        lines.append(
            f"({hidden} more column(s) hidden: widen the terminal, or use --columns or --format csv)"
        )
    return "\n".join(lines)


def _ls(args: argparse.Namespace) -> int:
    import json
    import shutil

    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import ls_runs

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    try:
        with _warnings_to_stderr():
            df = ls_runs(
                args.runs_dir,
                order=args.order,
                decreasing=not args.asc,
                filter=args.filter,
                latest_n=args.latest,
                columns=columns,
                refresh=args.refresh,
            )
    except TrainrunError as exc:
        return _error(exc)
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    elif args.format == "json":
        records = json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))
        json.dump(records, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        width = shutil.get_terminal_size((160, 24)).columns
        print(format_table(df, width=width, columns=list(df.columns) if columns else None))
    return 0


# ---------------------------------------------------------------- show


def _show(args: argparse.Namespace) -> int:
    import json

    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import run_info

    try:
        info = run_info(_run_ref(args.run), args.runs_dir)
    except TrainrunError as exc:
        return _error(exc)
    if args.json:
        from trainrun.runs.record import dumps

        print(json.dumps(json.loads(dumps(info)), indent=2, ensure_ascii=False))
        return 0
    print(describe_run(info))
    return 0


def describe_run(info: dict[str, Any]) -> str:
    """A run record as readable text (what ``trainrun show`` prints)."""
    lines = [f"Run {info.get('id')}  [{info.get('status')}]"]

    def field(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"  {label:<10} {value}")

    field("folder", info.get("run_dir"))
    field("script", info.get("script"))
    command = info.get("command")
    if isinstance(command, list):
        import shlex

        command = " ".join(shlex.quote(str(c)) for c in command)
    field("command", command)
    field("started", info.get("start"))
    field("ended", info.get("end"))
    if isinstance(info.get("duration"), (int, float)):
        field("duration", _duration(float(info["duration"])))
    field("exit code", info.get("exit_code"))
    field("error", info.get("error"))
    if info.get("host") or info.get("pid"):
        field("host", f"{info.get('host')} (pid {info.get('pid')})")
    field("python", info.get("python"))
    git = info.get("git") or {}
    if isinstance(git, dict) and git.get("commit"):
        field("git", f"{git['commit']}{' (uncommitted changes)' if git.get('dirty') else ''}")
    tags = info.get("tags") or {}
    if isinstance(tags, dict):
        field("tags", ", ".join(f"{k}={v}" for k, v in tags.items()))

    def section(title: str, values: Any) -> None:
        if not values or not isinstance(values, dict):
            return
        lines.append("")
        lines.append(title)
        w = max(len(str(k)) for k in values)
        for key, value in values.items():
            shown = f"{value:.6g}" if isinstance(value, float) else value
            lines.append(f"  {str(key):<{w}}  {shown}")

    section("Flags", info.get("flags"))
    section("Metrics (last values)", info.get("metrics"))
    section("Evaluation", info.get("evaluation"))
    traceback = info.get("traceback")
    if traceback:
        lines.append("")
        lines.append("Traceback (tail)")
        lines.extend("  " + t for t in str(traceback).rstrip().splitlines()[-15:])
    if info.get("problems"):
        lines.append("")
        lines.append("Problems")
        lines.extend(f"  {p}" for p in info["problems"])
    run_dir = info.get("run_dir")
    if run_dir and os.path.isdir(run_dir):
        entries = _file_entries(run_dir)
        if entries:
            lines.append("")
            lines.append("Files")
            lines.extend(f"  {e}" for e in entries)
    return "\n".join(lines)


def _file_entries(run_dir: str) -> list[str]:
    """The run folder's files for ``show``: links shown as links, never followed."""
    from trainrun.runs.record import walk

    tops: dict[str, list[dict[str, Any]]] = {}
    for item in walk(run_dir, limit=100_000):
        if item["path"].startswith("."):
            continue
        top, sep, _ = item["path"].partition("/")
        tops.setdefault(top + ("/" if sep else ""), []).append(item)
    entries = []
    for name, items in tops.items():
        if name.endswith("/"):
            n = len(items)
            entries.append(f"{name} ({n} file{'s' if n != 1 else ''})")
            continue
        item = items[0]
        if item["kind"] == "file":
            entries.append(f"{name} ({_size(item['size'])})")
        elif item["kind"] == "link":
            entries.append(f"{name} (a link to {item.get('target')}, not followed)")
        else:
            entries.append(f"{name} (a {item['kind']}, not read)")
    return entries


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


# ---------------------------------------------------------------- clean, restore, purge, copy


def _selection(args: argparse.Namespace) -> Any:
    """RUN arguments and/or --filter as what the store's verbs take (None: every run)."""
    from trainrun.runs.store import ls_runs

    refs = [_run_ref(r) for r in args.runs] or None
    if getattr(args, "filter", None):
        df = ls_runs(args.runs_dir, filter=args.filter, columns=["run_dir"])
        chosen = df["run_dir"].tolist()
        if refs is not None:
            from trainrun.runs.store import get_run_dir

            wanted = {str(get_run_dir(r, args.runs_dir)) for r in refs}
            chosen = [c for c in chosen if c in wanted]
        return chosen
    return refs


def _interactive() -> bool:
    return bool(sys.stdin and sys.stdin.isatty())


def _clean(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import clean_runs

    try:
        with _warnings_to_stderr():
            runs = _selection(args)
            if runs == []:
                print("No runs match.")
                return 0
            moved = clean_runs(runs, args.runs_dir, confirm=_interactive() and not args.yes)
    except TrainrunError as exc:
        return _error(exc)
    print(
        f"Archived {len(moved)} run(s) into {os.path.join(args.runs_dir, 'archive')} (undo: trainrun restore)."
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import restore_runs

    try:
        restored = restore_runs([_run_ref(r) for r in args.runs] or None, args.runs_dir)
    except TrainrunError as exc:
        return _error(exc)
    print(f"Restored {len(restored)} run(s) into {args.runs_dir}.")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import purge_runs

    try:
        with _warnings_to_stderr():
            deleted = purge_runs(
                [_run_ref(r) for r in args.runs] or None, args.runs_dir, confirm=not args.yes
            )
    except TrainrunError as exc:
        return _error(exc)
    print(f"Deleted {len(deleted)} run(s) permanently.")
    return 0


def _copy(args: argparse.Namespace) -> int:
    from trainrun.exceptions import TrainrunError
    from trainrun.runs.store import copy_run

    try:
        target = copy_run(_run_ref(args.run), args.to, runs_dir=args.runs_dir, rename=args.rename)
    except (TrainrunError, FileExistsError) as exc:
        return _error(exc)
    print(f"Copied to {target}")
    return 0
