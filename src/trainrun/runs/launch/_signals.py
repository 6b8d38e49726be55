"""SIGTERM as Ctrl-C: a terminated launcher stops its script and records "interrupted".

Without a handler, SIGTERM ends a Python process on the spot: no ``finally``
runs, so the launcher leaves run.json at "running" (read as killed) and the
script trains on until the death signal reaches it. :class:`SigtermInterrupt`
turns SIGTERM into :class:`Terminated`, a ``KeyboardInterrupt``, so that the
launcher takes its Ctrl-C path: stop the child, write the final record, exit.

It is installed only in the main thread (the only one Python lets set
handlers) and only over the default action: a handler the host program set
itself is left alone (see :func:`sigterm_as_interrupt`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM while a launcher's handler is installed."""


class SigtermInterrupt:
    """A SIGTERM handler that raises :class:`Terminated`, or only notes it while deferred.

    ``deferred`` is set while the launcher writes the final record, so that a
    second SIGTERM cannot leave it half-written; ``received`` tells it to raise
    once the record is safe.
    """

    def __init__(self) -> None:
        self.received = False
        self.deferred = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received = True
        if not self.deferred:
            raise Terminated("SIGTERM")


@contextmanager
def sigterm_as_interrupt() -> Iterator[SigtermInterrupt | None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    Yields the handler, or None where none was installed: outside the main
    thread, on a platform without SIGTERM, or when the program already has its
    own SIGTERM handler (or ignores SIGTERM), which is then respected. An outer
    :class:`SigtermInterrupt` (the ``trainrun`` command's) is replaced for the
    block, so that the innermost launcher defers while it writes its record.
    The previous handler is restored on exit.

    >>> with sigterm_as_interrupt() as handler:
    ...     pass
    """
    sigterm = getattr(signal, "SIGTERM", None)
    if sigterm is None or threading.current_thread() is not threading.main_thread():
        yield None
        return
    try:
        previous = signal.getsignal(sigterm)
    except (OSError, ValueError):
        yield None
        return
    if previous is not signal.SIG_DFL and not isinstance(previous, SigtermInterrupt):
        yield None
        return
    handler = SigtermInterrupt()
    try:
        signal.signal(sigterm, handler)
    except (OSError, ValueError):
        yield None
        return
    try:
        yield handler
    finally:
        signal.signal(sigterm, previous)
