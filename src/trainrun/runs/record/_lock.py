"""Read-modify-write of a run's JSON files under a lock shared by launcher and script.

The launcher owns run.json, but the script may add ``properties`` to it and
both may touch flags.json or evaluation.json; an exclusive ``flock`` on the
run folder itself serialises these updates so that neither loses the other's.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from trainrun.exceptions import RunRecordError
from trainrun.runs import record

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from typing import Any


@contextmanager
def locked(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the run folder (advisory; only our writers take it)."""
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def update_json(
    path: str | os.PathLike[str],
    change: Callable[[dict[str, Any]], None],
    *,
    durable: bool = True,
) -> dict[str, Any]:
    """Apply ``change`` to the JSON object in ``path`` (absent or corrupt: ``{}``), atomically.

    ``durable``: fsync before the rename (see :func:`trainrun.runs.record.write_json`).
    """
    path = Path(path)
    with locked(path.parent):
        try:
            current = record.read_json(path, default={})
        except RunRecordError:
            current = {}  # a corrupt file is replaced rather than blocking the run forever
        if not isinstance(current, dict):
            current = {}
        change(current)
        record.write_json(path, current, durable=durable)
        return current


def update_run(
    run_dir: str | os.PathLike[str], fields: dict[str, Any], *, durable: bool = True
) -> dict[str, Any]:
    """Set top-level fields of run.json; dict values of ``properties`` are merged, not replaced."""

    def change(current: dict[str, Any]) -> None:
        for key, value in fields.items():
            if key == "properties" and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value

    return update_json(Path(run_dir) / record.RUN_FILE, change, durable=durable)
