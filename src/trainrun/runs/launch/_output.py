"""The child's output: copied live to output.log and the terminal; its error read back.

The pump reads the merged stdout+stderr pipe in raw chunks, so progress bars
('\r'), partial lines and any bytes pass through unchanged, and writes each
chunk to output.log at once (unbuffered), so that a kill loses nothing that
was printed. The last :data:`TAIL_BYTES` stay in memory to find the error.
"""

from __future__ import annotations

import codecs
import errno
import os
import sys
import threading
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TAIL_BYTES = 256_000
TRACEBACK_LINES = 60
TRACEBACK_START = "Traceback (most recent call last):"


class OutputPump(threading.Thread):
    """Copy a pipe to a log file and, when ``echo``, to ``sys.stdout``."""

    def __init__(
        self,
        fd: int,
        log_path: str | os.PathLike[str],
        echo: bool,
        scalars: Any = None,
        metrics_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(name="trainrun-output", daemon=True)
        self.fd = fd
        self.log_path = Path(log_path)
        self.echo = echo
        self.tail = bytearray()
        self.error: str | None = None
        # output scalars (see _scalars.py): a parser, and where its rows go
        self.scalars = scalars
        self.metrics_path = metrics_path

    def _scalars(self, chunk: bytes, final: bool = False) -> None:
        if self.scalars is None or self.metrics_path is None:
            return
        try:
            rows = self.scalars.feed(chunk, final)
            if rows:
                from trainrun.runs.record import append_jsonl

                append_jsonl(self.metrics_path, rows)
        except Exception as exc:  # noqa: BLE001 - the output itself must keep flowing
            self.error = self.error or f"could not record output scalars: {exc}"

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            log = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
            os.lseek(log, 0, os.SEEK_END)
        except OSError as exc:
            self.error = f"could not open {self.log_path}: {exc}"
            log = -1
        # splice() moves the output from the pipe into output.log inside the kernel: a
        # launcher stopped or killed at any instant has lost nothing it took from the
        # pipe (what is still in the pipe, the bootstrap's watcher saves)
        splice = getattr(os, "splice", None) if log >= 0 else None
        try:
            while True:
                if splice is not None:
                    try:
                        moved = splice(self.fd, log, 65536)
                    except OSError as exc:
                        # a full disk (the data stays in the pipe) or no splice for this file
                        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                            self.error = f"could not write {self.log_path}: {exc}"
                        splice = None
                        continue
                    if not moved:
                        break
                    end = os.lseek(log, 0, os.SEEK_CUR)
                    chunk = os.pread(log, moved, end - moved)
                else:
                    try:
                        chunk = os.read(self.fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    self._write(log, chunk)
                self._take(chunk, decoder)
            self._scalars(b"", final=True)
        finally:
            for fd in (self.fd, log):
                try:
                    if fd >= 0:
                        os.close(fd)
                except OSError:
                    pass

    def _write(self, log: int, chunk: bytes) -> None:
        if log < 0:
            return
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(log, view) :]
        except OSError as exc:
            self.error = f"could not write {self.log_path}: {exc}"

    def _take(self, chunk: bytes, decoder: codecs.IncrementalDecoder) -> None:
        """A chunk now safe in output.log: keep its tail, read its scalars, echo it."""
        self._scalars(chunk)
        self.tail += chunk
        if len(self.tail) > TAIL_BYTES:
            del self.tail[: len(self.tail) - TAIL_BYTES]
        if self.echo:
            self._echo(decoder.decode(chunk))

    def _echo(self, text: str) -> None:
        out = sys.stdout
        if out is None or not text:
            return
        try:
            out.write(text)
        except UnicodeEncodeError:
            enc = getattr(out, "encoding", None) or "ascii"
            out.write(text.encode(enc, "backslashreplace").decode(enc, "replace"))
        except (OSError, ValueError):
            self.echo = False  # the terminal went away; keep logging
            return
        try:
            out.flush()
        except (OSError, ValueError):
            self.echo = False

    def text(self) -> str:
        return bytes(self.tail).decode("utf-8", "replace")


def error_from_output(output: str) -> tuple[str | None, str | None]:
    """(error line, traceback tail) from a script's output.

    The error is the exception line of the last Python traceback ("ValueError:
    bad"), else the last non-empty line (a message such as "train.py: error: ...").
    """
    lines = output.splitlines()
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(TRACEBACK_START):
            start = i
            break
    if start is None:
        for line in reversed(lines):
            if line.strip():
                return line.strip()[:2000], None
        return None, None
    end = len(lines)
    error = None
    for j in range(start + 1, len(lines)):
        line = lines[j]
        if line and not line.startswith((" ", "\t")):
            error = line.strip()
            # the exception message may span lines until a blank line
            end = j + 1
            while end < len(lines) and lines[end].strip():
                end += 1
            break
    block = lines[start:end]
    if len(block) > TRACEBACK_LINES:
        block = [block[0], "  ...", *block[-(TRACEBACK_LINES - 2) :]]
    return (error[:2000] if error else None), "\n".join(block)
