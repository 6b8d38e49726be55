"""Values formatted for people: one set of rules for the CLI, reports and dashboard."""

from __future__ import annotations

import math

import pytest

from trainrun import _humanize as h


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1,023 bytes"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2 * 1024**5, "2,048.0 TiB"),
        (None, "—"),
        ("12", "—"),
        (True, "—"),
        (math.nan, "—"),
    ],
)
def test_size(n, text):
    assert h.size(n) == text


@pytest.mark.parametrize(
    ("seconds", "long", "compact"),
    [
        (4.25, "4.2 s", "4.2s"),
        (59.9, "59.9 s", "59.9s"),
        (125, "2 min 5 s", "2m05s"),
        (3780, "1 h 3 min", "1h03m"),
        (None, "—", "—"),
        (-1, "—", "—"),
        (math.inf, "—", "—"),
    ],
)
def test_duration(seconds, long, compact):
    assert h.duration(seconds) == long
    assert h.duration(seconds, compact=True) == compact


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (True, "true"),
        (0.123456789, "0.123457"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        (2**70, str(2**70)),
        ("x", "x"),
    ],
)
def test_number(value, text):
    assert h.number(value) == text


def test_timestamp():
    assert h.timestamp("2026-11-27T10:15:42.123456Z") == "2026-11-27 10:15:42 UTC"
    assert h.timestamp("not a time") == "not a time"
    assert h.timestamp(None) == "—"
