"""Sequence feature columns (placeholder replaced below)."""

from __future__ import annotations

from typing import Any


def is_sequence_column(column: Any) -> bool:
    return bool(getattr(column, "is_sequence", False))
