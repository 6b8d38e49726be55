"""Read ahead: the next chunks of a streamed input are read and encoded in a thread.

Reading Parquet (pyarrow) and encoding (numpy, torch) release the GIL for most of
their work, so on a machine with a spare core the input's cost hides behind the
training step, as tf.data's ``prefetch`` does.

>>> list(prefetch(iter(range(5))))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_END = object()

#: The running producers: (stop event, thread). Stopped at exit (see _stop_all).
_LIVE: set[tuple[threading.Event, threading.Thread]] = set()
_LIVE_LOCK = threading.Lock()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced up to ``depth`` ahead in a background thread.

    An exception in the producer is raised here, at the item where it happened.
    Closing this generator (a consumer that stops early) stops the producer too.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Failed(exc))

    thread = threading.Thread(target=produce, name="trainrun-prefetch", daemon=True)
    entry = (stop, thread)
    with _LIVE_LOCK:
        _LIVE.add(entry)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)
        with _LIVE_LOCK:
            _LIVE.discard(entry)


@atexit.register
def _stop_all() -> None:
    """Stop every producer still running (a reading left unfinished) before the interpreter
    finalizes.

    A daemon thread still inside pyarrow or torch when the interpreter finalizes is
    ended by a forced unwind, which aborts the whole process when it crosses C++ code
    that may not throw ("terminate called without an active exception", exit status
    -6): a finished script would be reported failed. Each producer stops at its next
    item; the wait is bounded.
    """
    with _LIVE_LOCK:
        live = list(_LIVE)
        _LIVE.clear()
    for stop, _ in live:
        stop.set()
    for _, thread in live:
        thread.join(timeout=5.0)
