"""Atomic JSON files for the model directory (readers see the old file or the new one)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainrun._atomic import replace_text


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot store {type(value).__name__} in a model directory's JSON: {value!r}")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    text = json.dumps(obj, default=_default, indent=1, ensure_ascii=False) + "\n"
    replace_text(path, text, durable=False)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
