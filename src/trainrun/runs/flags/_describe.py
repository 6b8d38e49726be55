"""A script describes its flags without running its body: the declaration as JSON.

The launcher checks a run's flag overrides against what the script declares
*before* it creates a run folder. To learn the declarations it starts the
script once with ``TRAINRUN_DESCRIBE_FLAGS`` naming a file: :func:`flags`
(or the script's own ``argparse`` parser, through the launch bootstrap) then
writes the declarations there as JSON and ends the process at once, so
nothing after the declaration runs. Standard library only.

The file holds ``{"kind": "trainrun" | "argparse", "flags": {name: {"type",
"default", "description", "choices", "option", "action"}}}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

#: Names the file the declarations are written to; set only by the launcher's probe.
DESCRIBE_ENV = "TRAINRUN_DESCRIBE_FLAGS"


def describe_and_exit(declared: dict[str, Any], kind: str = "trainrun") -> None:
    """Write ``declared`` to the file named by :data:`DESCRIBE_ENV` and end the process."""
    target = os.environ.get(DESCRIBE_ENV, "")
    try:
        text = json.dumps({"kind": kind, "flags": declared}, default=str, allow_nan=True)
        tmp = f"{target}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)  # the launcher never reads half a declaration
        code = 0
    except (OSError, TypeError, ValueError) as exc:
        sys.stderr.write(f"trainrun: could not describe the flags: {exc}\n")
        code = 3
    # os._exit: nothing after the declaration may run (no atexit, no finally in the script)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
