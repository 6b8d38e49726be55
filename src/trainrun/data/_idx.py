"""The IDX file format of MNIST and Fashion-MNIST: a reader that checks, and a writer.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then
the values in row-major order::

    bytes 0-1  always 0
    byte  2    type code: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
               0x0C int32, 0x0D float32, 0x0E float64
    byte  3    number of dimensions
    then       ndim x uint32 (big endian) sizes, then the data

MNIST images are ``0x00000803`` (ubyte, 3 dims: N x 28 x 28) and labels
``0x00000801`` (ubyte, 1 dim: N). Files may be gzip-compressed; the reader
looks at the content (the gzip magic bytes), not only at the name.

>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
>>> write_idx(path, np.arange(5, dtype=np.uint8))
>>> read_idx(path).tolist()
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from trainrun.exceptions import InputError

# type code -> numpy dtype as stored (big endian for the multi-byte types)
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder(">") if dt.itemsize > 1 else dt: code for code, dt in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == _GZIP_MAGIC else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip stream
        raise InputError(
            f"Could not decompress the IDX file {path}: {exc}. "
            "The download may be incomplete; fetch the file again."
        ) from exc


def read_idx(
    path: str | os.PathLike[str],
    *,
    expect_magic: int | None = None,
    expect_shape: tuple[int | None, ...] | None = None,
) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a numpy array in native byte order.

    ``expect_magic`` checks the 4-byte magic number (e.g. ``0x803`` for MNIST
    images); ``expect_shape`` checks the dimensions (``None`` matches any size).
    Raises InputError naming the file and the mismatch.

    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "imgs-idx3-ubyte"
    >>> write_idx(p, np.zeros((2, 28, 28), np.uint8))
    >>> read_idx(p, expect_magic=0x803, expect_shape=(None, 28, 28)).shape
    (2, 28, 28)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise InputError(
            f"The IDX file {path} is too short to hold a header ({len(data)} bytes). "
            "It may be truncated; fetch it again."
        )
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    magic = struct.unpack(">I", data[:4])[0]
    if zero != 0 or code not in _DTYPES:
        raise InputError(
            f"{path} is not an IDX file: its magic number is 0x{magic:08x}, expected "
            "0x0000TTDD (TT a type code such as 08 for unsigned bytes, DD the number of "
            "dimensions). Check that the path points at MNIST-format data."
        )
    if expect_magic is not None and magic != expect_magic:
        raise InputError(
            f"The IDX file {path} has magic number 0x{magic:08x}, expected "
            f"0x{expect_magic:08x}. Images and labels may be swapped, or the file is "
            "of another kind."
        )
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise InputError(f"The IDX file {path} ends inside its header; it is truncated.")
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = _DTYPES[code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_end
    if got != expected_bytes:
        raise InputError(
            f"The IDX file {path} declares shape {tuple(shape)} ({expected_bytes:,} bytes of "
            f"data) but holds {got:,} bytes after its header. The file is truncated or "
            "corrupt; fetch it again."
        )
    if expect_shape is not None:
        if len(expect_shape) != ndim or any(
            e is not None and e != s for e, s in zip(expect_shape, shape, strict=False)
        ):
            want = tuple("N" if e is None else e for e in expect_shape)
            raise InputError(
                f"The IDX file {path} holds an array of shape {tuple(shape)}, expected "
                f"{want}. Received: shape={tuple(shape)}"
            )
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=header_end)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress``).

    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> write_idx(p, np.array([3, 1], np.uint8), compress=True)
    >>> read_idx(p, expect_magic=0x801).tolist()
    [3, 1]
    """
    array = np.asarray(array)
    stored = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = _CODES.get(stored)
    if code is None:
        raise InputError(
            "IDX files hold uint8, int8, int16, int32, float32 or float64 values. "
            f"Received: dtype={array.dtype}"
        )
    header = struct.pack(">HBB", 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=stored).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)
