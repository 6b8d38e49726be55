"""Reading inside a run folder without ever reaching outside it.

A run folder is written by a script the user ran, so what it holds is data, not
instructions: a file in it may be a symbolic link to ``/etc/shadow``, a FIFO that
blocks every reader, or a link to ``/dev/zero``. Every read of a run's files goes
through here, and follows three rules:

* only regular files are read: the last component is opened with ``O_NOFOLLOW``
  (a link is refused, not followed) and ``O_NONBLOCK`` (a FIFO cannot hang the
  open), and the open file must be regular (``fstat``), so devices are refused;
* every read is bounded: a file larger than its limit is refused or cut;
* walking a folder never follows a link; links are reported as links, with
  their target text, and whether that target stays inside the run.
"""

from __future__ import annotations

import os
import stat

from trainrun.exceptions import RunRecordError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms at start-up: annotations only
    from collections.abc import Iterator
    from typing import Any

_O_READ = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)  # no fd leaks into the user's child processes
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)
_CHUNK = 1 << 16

#: the largest JSON record file read (run.json, flags.json, evaluation.json)
JSON_LIMIT = 64 << 20
#: the largest metrics.jsonl read
METRICS_LIMIT = 1 << 30


class NotRegularFileError(RunRecordError, OSError):
    """A file in a run folder is a link, a FIFO, a device or a folder: it is not read."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "file" if stat.S_ISREG(mode) else "special file"


def open_regular(path: str | os.PathLike[str]) -> int:
    """An fd open for reading on ``path``, only if it is a regular file and not a link.

    FileNotFoundError when absent; NotRegularFileError (a RunRecordError) when
    it is a link, FIFO, device, socket or folder.
    """
    try:
        fd = os.open(path, _O_READ)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise exc from None
        if stat.S_ISREG(mode):
            raise
        raise NotRegularFileError(
            f"{os.fspath(path)} is a {_kind(mode)}, not a regular file: trainrun reads only "
            "regular files inside a run folder and never follows links. Replace it with the "
            "file itself."
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFileError(
            f"{os.fspath(path)} is a {_kind(st.st_mode)}, not a regular file: trainrun reads only "
            "regular files inside a run folder. Replace it with the file itself."
        )
    return fd


def read_bytes(path: str | os.PathLike[str], limit: int = JSON_LIMIT) -> bytes:
    """The whole of a regular file, refused (RunRecordError) when larger than ``limit``.

    Through os.open/os.read: half the CPU of open().read() for the small files a
    listing reads by the thousand.
    """
    fd = open_regular(path)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data
        size = os.fstat(fd).st_size
        if size > limit:
            raise RunRecordError(
                f"{os.fspath(path)} is {size:,} bytes, more than the {limit:,} trainrun reads "
                "from such a file; it was not written by trainrun. Move it out of the run folder."
            )
        chunks = [data]
        total = len(data)
        while data:
            data = os.read(fd, _CHUNK)
            total += len(data)
            if total > limit:  # grew while we read
                raise RunRecordError(
                    f"{os.fspath(path)} holds more than the {limit:,} bytes trainrun reads "
                    "from such a file."
                )
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_head_tail(path: str | os.PathLike[str], limit: int) -> tuple[int, bytes, bytes]:
    """(size, head, tail) of a regular file: the whole in ``head`` when it fits ``limit``,
    else its first and last ``limit // 2`` bytes (read with seek, never the whole)."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size <= limit:
            return size, _read_n(fd, limit), b""
        half = limit // 2
        head = _read_n(fd, half)
        os.lseek(fd, size - half, os.SEEK_SET)
        return size, head, _read_n(fd, half)
    finally:
        os.close(fd)


def _read_n(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        data = os.read(fd, min(n, 1 << 20))
        if not data:
            break
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def is_real_folder(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder and not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _inside(root: str, folder: str, target: str) -> bool:
    """Whether a link in ``folder`` whose text is ``target`` points inside ``root`` (lexically
    resolved, every link on the way resolved too)."""
    where = os.path.realpath(os.path.join(folder, target))
    return where == root or where.startswith(root + os.sep)


def walk(root: str | os.PathLike[str], limit: int = 10_000) -> Iterator[dict[str, Any]]:
    """Every entry under the folder ``root``, links never followed, in name order.

    Yields ``{"path": relative posix path, "kind": "file"|"link"|"FIFO"|..., "size": bytes
    (regular files), "target": link text (links), "inside": whether a link stays under
    ``root``}``; folders are entered (not yielded) only when they are real folders.
    Nothing is yielded when ``root`` itself is a link or not a folder. At most
    ``limit`` entries.
    """
    root = os.fspath(root)
    if not is_real_folder(root):
        return
    real_root = os.path.realpath(root)
    count = 0
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = os.path.join(root, rel) if rel else root
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                subfolders.append(path)
                continue
            item: dict[str, Any] = {"path": path, "kind": _kind(st.st_mode), "size": None}
            if stat.S_ISREG(st.st_mode):
                item["size"] = st.st_size
            elif stat.S_ISLNK(st.st_mode):
                try:
                    item["target"] = os.readlink(entry.path)
                except OSError:
                    item["target"] = "?"
                item["inside"] = _inside(real_root, os.path.realpath(folder), item["target"])
            yield item
            count += 1
            if count >= limit:
                return
        stack.extend(reversed(subfolders))
