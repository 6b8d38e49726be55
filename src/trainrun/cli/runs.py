"""``trainrun run | ls | show | clean | restore | purge | copy``: the runs verbs.

Each verb is a few lines over ``trainrun.runs.launch`` and ``trainrun.runs.store``,
imported inside the verb so that ``trainrun --help`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from trainrun.cli._options import (
    RUNS_DIR_HELP,
    add_run_ref,
    add_runs_dir,
    add_selection,
    one_run,
    positive_int,
    run_ref,
    runs_dir,
    selected,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from typing import Any

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    for add in _VERBS.values():
        add(subparsers)


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
        description="List the runs of a runs folder, newest first: the flags that differ "
        "between the listed runs come first, then the metrics; flags that are the same in "
        "every run are summed up in one line under the table (--all shows them as columns).",
        epilog='example: trainrun ls --filter "eval_accuracy > 0.8 and flag_dropout < 0.3" '
        "--order eval_accuracy --latest 10",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="only these runs (default: all)")
    add_runs_dir(p)
    add_selection(p)
    p.add_argument(
        "--order", default=None, metavar="COL", help="sort by this column (default: start)"
    )
    p.add_argument("--asc", action="store_true", help="sort ascending (default: descending)")
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="only the first N runs after --order (a top N by any column)",
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="A,B",
        help="columns to show, comma separated; patterns such as 'eval_*' work",
    )
    p.add_argument(
        "--all", action="store_true", help="show every column, constant flags and paths too"
    )
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour statuses (auto: on a terminal, unless NO_COLOR is set)",
    )
    p.add_argument("--refresh", action="store_true", help="re-read every run folder, not the index")
    p.set_defaults(func=_ls)


def _add_show(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show", help="show one run's record", description="Show everything a run recorded."
    )
    add_run_ref(p)
    add_runs_dir(p)
    add_selection(p)
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
    add_runs_dir(p)
    add_selection(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    p.set_defaults(func=_clean)


def _add_restore(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "restore",
        help="move archived runs back",
        description="Move runs from RUNS_DIR/archive back into RUNS_DIR.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="archived runs to restore (default: all)")
    add_runs_dir(p)
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
    add_runs_dir(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    p.set_defaults(func=_purge)


def _add_copy(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "copy",
        help="copy a run folder elsewhere",
        description="Copy a run's folder into the folder TO.",
    )
    add_run_ref(p, required=True)
    p.add_argument("to", help="folder to copy the run into (created if needed)")
    p.add_argument("--rename", default=None, help="name of the copy (default: the run's id)")
    add_runs_dir(p)
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


_positive_int = positive_int


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
    p.add_argument(
        "--output-scalars",
        action="store_true",
        help="record printed 'key: value' / 'key=value' lines as metrics",
    )


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from trainrun.exceptions import UsageError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"--{what} expects NAME=VALUE, e.g. --{what} dropout=0.3. Received: {item!r}"
            )
        out[name.strip()] = value
    return out


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


_run_ref = run_ref


# ---------------------------------------------------------------- run


def _run(args: argparse.Namespace) -> int:
    from trainrun.exceptions import UsageError

    if args.command and args.command[0].startswith("-"):
        raise UsageError(
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
        raise UsageError(
            f"unknown option(s) for `trainrun run`: {' '.join(unknown)}. Give flags as "
            f"--flag NAME=VALUE, or pass arguments to the script after '--' "
            f"(trainrun run {args.script} -- {' '.join(unknown)})."
        )
    flags = _pairs(args.flag + opts.flag, "flag")
    tags = _pairs(args.tag + opts.tag, "tag")
    from trainrun.runs.launch import training_run

    if args.in_script_dir or opts.in_script_dir:
        if args.script is None:
            raise UsageError("--in-script-dir needs the script, e.g. trainrun run src/train.py")
        args.cwd = os.path.dirname(os.path.abspath(args.script))
    # errors (a bad flag, no such script, Ctrl-C) go to the one handler in cli/_main.py
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
        output_scalars=bool(args.output_scalars or opts.output_scalars),
        nproc=opts.nproc or args.nproc,
    )
    status = info.get("status")
    url = info.get("run_url")  # a shared store's run: named by its id there
    run_id = url.rsplit("/", 1)[-1] if url else info.get("id")
    print(f"trainrun: run {run_id} {status} ({url or info.get('run_dir')})", file=sys.stderr)
    if status == "completed":
        return 0
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED


# ---------------------------------------------------------------- ls


def format_table(
    df: Any, width: int | None = None, columns: list[str] | None = None, **kw: Any
) -> str:
    """The runs as an aligned text table (see ``trainrun.cli._table``)."""
    from trainrun.cli._table import format_table as table

    return table(df, width=width, columns=columns, **kw)


def _use_color(choice: str) -> bool:
    from trainrun._interactive import is_terminal

    if choice != "auto":
        return choice == "always"
    return (
        is_terminal(sys.stdout)
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )


def _ls(args: argparse.Namespace) -> int:
    import json
    import shutil

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    folder = runs_dir(args)
    only = selected(argparse.Namespace(runs_dir=folder), args.runs) if args.runs else None
    options = {
        "order": args.order,
        "decreasing": not args.asc,
        "filter": args.filter,
        "latest_n": args.latest,
        "columns": columns,
        "refresh": args.refresh,
        "limit": args.limit,
    }
    with _warnings_to_stderr():
        df: Any = None
        if args.format == "table":
            # the table from plain rows of the index, without importing pandas (about half a
            # second); None where only ls_runs' DataFrame can answer (docs/listing.md)
            from trainrun.runs.store._rows import ls_rows

            df = ls_rows(folder, **options)
        if df is None:
            from trainrun.runs.store import ls_runs

            df = ls_runs(folder, **options)
    if only is not None:
        from trainrun.runs.store import get_run_dir

        names = {get_run_dir(r, folder).name for r in only}
        if getattr(df, "plain_rows", False):
            df = df.take([i for i, v in enumerate(df.column("id")) if v in names])
        else:
            df = df[df["id"].isin(names)].reset_index(drop=True)
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    elif args.format == "json":
        records = json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))
        json.dump(records, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        width = shutil.get_terminal_size((160, 24)).columns
        print(
            format_table(
                df,
                width=width,
                columns=list(df.columns) if columns else None,
                color=_use_color(args.color),
                show_all=args.all,
                order=args.order,
            )
        )
    return 0


# ---------------------------------------------------------------- show


def _show(args: argparse.Namespace) -> int:
    import json

    from trainrun.runs.store import run_info

    info = run_info(one_run(args, args.run), runs_dir(args))
    if args.json:
        from trainrun.runs.record import dumps

        print(json.dumps(json.loads(dumps(info)), indent=2, ensure_ascii=False))
        return 0
    print(describe_run(info))
    return 0


def describe_run(info: dict[str, Any]) -> str:
    """A run record as readable text (what ``trainrun show`` prints)."""
    from trainrun import _humanize

    name = f"  {info['name']}" if isinstance(info.get("name"), str) else ""
    lines = [f"Run {info.get('id')}{name}  [{info.get('status')}]"]

    def field(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"  {label:<10} {value}")

    field("store", info.get("run_url"))  # a shared store's run: folder is this machine's copy
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
        field("duration", _humanize.duration(info["duration"]))
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
        field("tags", ", ".join(k if v is True else f"{k}={v}" for k, v in tags.items()))
    field("note", info.get("note") if isinstance(info.get("note"), str) else None)

    def section(title: str, values: Any) -> None:
        if not values or not isinstance(values, dict):
            return
        lines.append("")
        lines.append(title)
        w = max(len(str(k)) for k in values)
        for key, value in values.items():
            shown = _humanize.number(value)
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
    from trainrun import _humanize
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
            entries.append(f"{name} ({_humanize.size(item['size'])})")
        elif item["kind"] == "link":
            entries.append(f"{name} (a link to {item.get('target')}, not followed)")
        else:
            entries.append(f"{name} (a {item['kind']}, not read)")
    return entries


# ---------------------------------------------------------------- clean, restore, purge, copy


def _clean(args: argparse.Namespace) -> int:
    from trainrun._interactive import can_prompt
    from trainrun.runs.store import clean_runs

    folder = runs_dir(args)
    with _warnings_to_stderr():
        runs = selected(args, args.runs)
        if runs == []:
            print("No runs match.")
            return 0
        moved = clean_runs(runs, folder, confirm=can_prompt() and not args.yes)
    print(
        f"Archived {len(moved)} run(s) into {os.path.join(folder, 'archive')} (undo: trainrun restore)."
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from trainrun.runs.store import restore_runs

    folder = runs_dir(args)
    restored = restore_runs([run_ref(r) for r in args.runs] or None, folder)
    print(f"Restored {len(restored)} run(s) into {folder}.")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from trainrun.runs.store import purge_runs

    with _warnings_to_stderr():
        deleted = purge_runs(
            [run_ref(r) for r in args.runs] or None, runs_dir(args), confirm=not args.yes
        )
    print(f"Deleted {len(deleted)} run(s) permanently.")
    return 0


def _copy(args: argparse.Namespace) -> int:
    from trainrun.runs.store import copy_run

    target = copy_run(run_ref(args.run), args.to, runs_dir=runs_dir(args), rename=args.rename)
    print(f"Copied to {target}")
    return 0
