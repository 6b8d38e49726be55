"""``trainrun tag | note | name``: what a person adds to a run after the fact.

    trainrun tag 0 --add best --add dataset=v2 --remove draft
    trainrun note 2026-11-27T10-15-42Z "lr too high after epoch 3"
    trainrun name 0 baseline-relu

Each is a few lines over ``tag_run``, ``note_run`` and ``name_run``; errors go to the one
handler in ``cli/_main.py``.
"""

from __future__ import annotations

import argparse

from trainrun.cli._options import (
    add_run_ref,
    add_runs_dir,
    add_selection,
    one_run,
    runs_dir,
    selected,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    for add in _VERBS.values():
        add(subparsers)


def _add_tag(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tag",
        help="add or remove tags of a run",
        description="Add and remove a run's tags, listed as tag_* columns. A tag is a word "
        "(best -> tag_best == true) or KEY=VALUE (dataset=v2 -> tag_dataset).",
        epilog="example: trainrun tag 0 --add best --add dataset=v2 --remove draft",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to tag (default: the latest)")
    add_selection(p)
    p.add_argument("--add", action="append", default=[], metavar="TAG", help="tag to add")
    p.add_argument("--remove", action="append", default=[], metavar="KEY", help="tag to remove")
    add_runs_dir(p)
    p.set_defaults(func=_tag)


def _add_note(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "note",
        help="write a note on a run",
        description="Set a run's note (listed as run_note); an empty TEXT removes it.",
        epilog='example: trainrun note 0 "lr too high after epoch 3"',
    )
    add_run_ref(p, required=True)
    p.add_argument("text", metavar="TEXT", help="the note (quote it)")
    add_runs_dir(p)
    p.set_defaults(func=_note)


def _add_name(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "name",
        help="give a run a short readable name",
        description="Name a run (listed as run_name, shown beside its id); an empty NAME "
        "removes it.",
        epilog="example: trainrun name 0 baseline-relu",
    )
    add_run_ref(p, required=True)
    p.add_argument("name", metavar="NAME", help="the run's name")
    add_runs_dir(p)
    p.set_defaults(func=_name)


_VERBS = {"tag": _add_tag, "note": _add_note, "name": _add_name}


def _describe(run: str, found: dict) -> str:
    tags = ", ".join(k if v is True else f"{k}={v}" for k, v in found["tags"].items())
    parts = [f"tags: {tags or '(none)'}"]
    if found["name"]:
        parts.append(f"name: {found['name']}")
    if found["note"]:
        note = found["note"].splitlines()[0]
        parts.append(f"note: {note[:60]}{'…' if len(note) > 60 else ''}")
    return f"Run {run}: " + "; ".join(parts)


def _tag(args: argparse.Namespace) -> int:
    from trainrun.exceptions import UsageError
    from trainrun.runs.store import get_run_dir, tag_run

    if not args.add and not args.remove:
        raise UsageError("`trainrun tag` needs --add TAG or --remove KEY, e.g. --add best.")
    folder = runs_dir(args)
    runs = selected(args, args.runs)
    for run in [0] if runs is None else runs:
        run_dir = get_run_dir(run, folder)
        print(_describe(run_dir.name, tag_run(run_dir, args.add, args.remove, folder)))
    return 0


def _note(args: argparse.Namespace) -> int:
    from trainrun.runs.store import get_run_dir, note_run

    folder = runs_dir(args)
    run_dir = get_run_dir(one_run(args, args.run), folder)
    print(_describe(run_dir.name, note_run(run_dir, args.text, folder)))
    return 0


def _name(args: argparse.Namespace) -> int:
    from trainrun.runs.store import get_run_dir, name_run

    folder = runs_dir(args)
    run_dir = get_run_dir(one_run(args, args.run), folder)
    print(_describe(run_dir.name, name_run(run_dir, args.name, folder)))
    return 0
