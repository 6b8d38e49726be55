"""Fixtures every test folder shares.

Tests import nothing from here (pytest runs with ``--import-mode=importlib``): a helper
is a fixture that returns the function, e.g. ``def test_x(wait_until): wait_until(...)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    *,
    ignoring: type[BaseException] | tuple[type[BaseException], ...] = (),
    message: str = "",
) -> T:
    """Call ``predicate`` every ``interval`` s until it returns something truthy; return it.

    An AssertionError after ``timeout`` s names what was awaited (``message``, else the
    predicate) and the last exception of the kinds in ``ignoring`` (for example a server
    not listening yet). Any other exception, an assertion included, ends the wait at once:
    a predicate can check that the process it waits on is still alive.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignoring as exc:
            last = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            detail = f" (last error: {last!r})" if last is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(interval)


@pytest.fixture(name="wait_until")
def _wait_until_fixture() -> Callable[..., Any]:
    """:func:`wait_until`: poll a condition with a deadline instead of sleeping for timing."""
    return wait_until
