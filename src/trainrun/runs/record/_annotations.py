"""What a person adds to a run after the fact: tags, a note and a name, kept in run.json.

Three fields of ``run.json``, changed under the record's lock with its one atomic JSON
writer (``record.write_json``), so the launcher finishing the run at the same moment and
a tag added from the dashboard never lose each other's change::

    "tags": {"best": true, "dataset": "v2"}   a bare tag is true; KEY=VALUE keeps the value
    "note": "lr too high after epoch 3"       free text, one per run ("" removes it)
    "name": "baseline-relu"                   a short readable name shown beside the id

The listing shows them as ``run_name``, ``run_note`` and ``tag_*`` columns.

>>> import pathlib, tempfile
>>> from trainrun.runs import record
>>> run = pathlib.Path(tempfile.mkdtemp()) / "2026-11-27T10-15-42Z"; run.mkdir()
>>> record.write_json(run / "run.json", {"status": "completed"})
>>> annotate(run, add_tags=["best", "dataset=v2"], note="good one", name="baseline")
{'tags': {'best': True, 'dataset': 'v2'}, 'note': 'good one', 'name': 'baseline'}
>>> annotate(run, remove_tags=["best"], note="")["tags"]
{'dataset': 'v2'}
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from trainrun.exceptions import RunRecordError, UsageError
from trainrun.runs import record
from trainrun.runs.record._files import is_real_folder
from trainrun.runs.record._lock import locked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["NAME_LIMIT", "NOTE_LIMIT", "annotate", "annotations_of", "parse_tag"]

#: the longest run name (it is shown in every listing, beside the id)
NAME_LIMIT = 80
#: the longest note (notes are listed; a longer text belongs in an artifact)
NOTE_LIMIT = 10_000
_TAG_LIMIT = 200

#: keep the field unchanged
_KEEP: Any = object()


def parse_tag(text: str) -> tuple[str, Any]:
    """``"best"`` -> ``("best", True)``; ``"dataset=v2"`` -> ``("dataset", "v2")``."""
    if not isinstance(text, str):
        raise UsageError(f"A tag is a word or KEY=VALUE text. Received: {text!r}")
    key, sep, value = text.partition("=")
    key = key.strip()
    if not key or len(key) > _TAG_LIMIT or "\n" in text or "\0" in text:
        raise UsageError(
            "A tag is a word (e.g. best) or KEY=VALUE (e.g. dataset=v2) on one line, "
            f"its key at most {_TAG_LIMIT} characters. Received: {text!r}"
        )
    return key, (value if sep else True)


def _check_text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"A run's {what} is text. Received: {what}={value!r}")
    value = value.strip()
    if len(value) > limit:
        raise UsageError(
            f"A run's {what} has at most {limit:,} characters; this one has {len(value):,}. "
            f"Shorten it (or keep long text as an artifact). Received: {what}={value[:40]!r}..."
        )
    if "\0" in value or (what == "name" and "\n" in value):
        raise UsageError(
            f"A run's {what} cannot hold {'a line break' if what == 'name' else 'NUL'}. "
            f"Received: {what}={value!r}"
        )
    return value or None


def annotations_of(run: dict[str, Any]) -> dict[str, Any]:
    """The tags, note and name of a run record (run.json as read), with their defaults."""
    tags = run.get("tags")
    return {
        "tags": dict(tags) if isinstance(tags, dict) else {},
        "note": run.get("note") if isinstance(run.get("note"), str) else None,
        "name": run.get("name") if isinstance(run.get("name"), str) else None,
    }


def annotate(
    run_dir: str | os.PathLike[str],
    *,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
    note: str | None = _KEEP,
    name: str | None = _KEEP,
) -> dict[str, Any]:
    """Change a run's tags, note and name in its run.json, atomically; returns all three.

    ``add_tags``: words or KEY=VALUE texts; ``remove_tags``: keys (a tag both added and
    removed is removed). ``note``/``name``: the new text, ``""`` or None to remove it,
    left out to keep it. Raises RunRecordError when the run has no readable run.json
    (a run still starting, a corrupt record: it is never overwritten) or when the run
    folder is a link (nothing outside the runs folder is written through it).
    """
    added = [parse_tag(t) for t in ([add_tags] if isinstance(add_tags, str) else add_tags)]
    removed = [
        parse_tag(t)[0] for t in ([remove_tags] if isinstance(remove_tags, str) else remove_tags)
    ]
    new_note = _KEEP if note is _KEEP else _check_text(note, "note", NOTE_LIMIT)
    new_name = _KEEP if name is _KEEP else _check_text(name, "name", NAME_LIMIT)
    folder = Path(run_dir)
    if not is_real_folder(folder):
        raise RunRecordError(
            f"{folder} is a link or not a folder: tags, notes and names are written only into "
            "a run folder itself, never through a link. Annotate the run where it really lies."
        )
    path = folder / record.RUN_FILE
    with locked(folder):
        current = record.read_json(path)
        if not isinstance(current, dict):
            raise RunRecordError(
                f"{path} is missing or does not hold a JSON object, so the run cannot be "
                "annotated; wait for a starting run to write it, or fix the file."
            )
        tags = current.get("tags")
        tags = dict(tags) if isinstance(tags, dict) else {}
        tags.update(added)
        for key in removed:
            tags.pop(key, None)
        current["tags"] = tags
        for field, value in (("note", new_note), ("name", new_name)):
            if value is _KEEP:
                continue
            if value is None:
                current.pop(field, None)
            else:
                current[field] = value
        record.write_json(path, current)
    return annotations_of(current)
