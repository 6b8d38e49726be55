"""prefetch(): a streamed input read ahead in a thread, in order, errors where they happened."""

from __future__ import annotations

import threading

import pytest

from trainrun.inputs._prefetch import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_reader_is_raised_at_its_item() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader(wait_until) -> None:
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = set(threading.enumerate())  # a parked reading's thread may be alive already
    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    [thread] = [t for t in threading.enumerate() if t not in before]
    assert thread.name == "trainrun-prefetch"
    stream.close()
    wait_until(
        lambda: not thread.is_alive(),
        10,
        message="the prefetch thread to end",
    )
    assert len(produced) <= 5  # it read ahead a little, not forever
