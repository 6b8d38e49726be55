"""The data loaders: bundled churn tables and the IDX reader, on files written here."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from trainrun.data import find_mnist_files, load_churn, load_mnist, read_idx, write_idx
from trainrun.exceptions import InputError


def _raw_idx(magic: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    # written by hand (not with write_idx) so the reader is checked against the format itself
    return struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_load_churn_both_tables_and_licence_note():
    wa = load_churn("wa_churn")
    assert wa.shape == (7043, 20)
    assert set(wa["churn"].unique()) == {"Yes", "No"}
    assert wa["total_charges"].isna().sum() == 11
    mlc = load_churn("mlc_churn")
    assert mlc.shape == (5000, 20)
    from trainrun.data import data_path

    assert "MIT" in data_path("LICENSE.md").read_text()


def test_load_churn_unknown_name_lists_choices():
    with pytest.raises(InputError, match=r"'wa_churn', 'mlc_churn'.*Received: name='iris'"):
        load_churn("iris")


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_hand_written_idx(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 1], dtype=np.uint8)
    img = _raw_idx(0x803, (5, 28, 28), images.tobytes())
    lab = _raw_idx(0x801, (5,), labels.tobytes())
    suffix = ".gz" if compress else ""
    opener = gzip.open if compress else open
    with opener(tmp_path / f"train-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(img)
    with opener(tmp_path / f"train-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(lab)
    got_images, got_labels = load_mnist(tmp_path, kind="train")
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_dotted_names_and_test_alias(tmp_path):
    write_idx(tmp_path / "t10k-images.idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", np.array([4, 5], np.uint8))
    images, labels = load_mnist(tmp_path, kind="test")
    assert images.shape == (2, 28, 28) and labels.tolist() == [4, 5]


def test_missing_files_error_names_expected_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, kind="train")
    msg = str(info.value)
    assert "train-labels-idx1-ubyte" in msg and "dataset-fashion-mnist" in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_mnist_files(tmp_path / "nope")
    with pytest.raises(InputError, match="kind='valid'"):
        find_mnist_files(tmp_path, kind="valid")


def test_swapped_magic_truncated_and_mismatched_counts(tmp_path):
    # images where labels belong: the magic number check catches it
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(InputError, match="expected 0x00000801"):
        load_mnist(tmp_path)
    # declared 3 labels, holds 2
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_raw_idx(0x801, (3,), b"\x01\x02"))
    with pytest.raises(InputError, match="truncated"):
        load_mnist(tmp_path)
    # 2 images, 3 labels
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_raw_idx(0x801, (3,), b"\x01\x02\x03"))
    with pytest.raises(InputError, match="2 images but"):
        load_mnist(tmp_path)
    # wrong image size
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 14, 14), np.uint8))
    with pytest.raises(InputError, match=r"shape \(3, 14, 14\)"):
        load_mnist(tmp_path)
    # not an IDX file at all
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    # a truncated gzip stream
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 40)[:20])
    with pytest.raises(InputError, match="decompress"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_every_type(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", arr, compress=True)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == arr.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, arr)
