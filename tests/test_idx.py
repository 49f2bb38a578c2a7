import gzip
import struct

import numpy as np
import pytest

from gpuprop.datasets.idx import read_idx, read_labels, read_pair, write_idx
from gpuprop.errors import DataError
from tests.idx_files import idx_bytes


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("compress", [False, True])
def test_reads_every_dtype_gzipped_or_raw(tmp_path, dtype, compress):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    data = idx_bytes(arr)
    # No .gz suffix either way: gzip must be recognised by its magic bytes.
    path = tmp_path / "data.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_header_is_big_endian(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], dtype=np.int16))


@pytest.mark.parametrize("gz", [None, True, False])
def test_write_idx_round_trip(tmp_path, gz):
    arr = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    path = write_idx(tmp_path / "a.idx.gz", arr, gzip=gz)
    compressed = path.read_bytes()[:2] == b"\x1f\x8b"
    assert compressed == (gz is not False)
    np.testing.assert_array_equal(read_idx(path), arr)
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx.gz"]  # no temp file left


def test_write_idx_matches_independent_encoder(tmp_path):
    arr = np.arange(12, dtype=np.int32).reshape(3, 4)
    write_idx(tmp_path / "a", arr)
    assert (tmp_path / "a").read_bytes() == idx_bytes(arr)


def test_write_idx_rejects_unsupported_dtype_and_leaves_old_file(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"old")
    with pytest.raises(DataError, match="cannot store dtype int64"):
        write_idx(path, np.zeros(3, dtype=np.int64))
    assert path.read_bytes() == b"old"


def _check_fault(tmp_path, data, pattern, name="bad-file-idx1-ubyte"):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert "download again" in msg
    assert pattern in msg, msg


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize("data,pattern", [
    (b"\x01\x02" + GOOD[2:], "bad IDX magic number 0x0102"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX data type code 0x07"),
    (GOOD[:-1], "truncated: 17 bytes but the header (2x3 of uint8) needs 18"),
    (GOOD + b"\x00", "trailing bytes: 19 bytes"),
    (GOOD[:6], "truncated IDX header"),
    (b"\x00\x00", "too short for an IDX header"),
    (bytes([0, 0, 8, 0]), "zero dimensions"),
    (gzip.compress(GOOD)[:-6], "corrupt or truncated gzip data"),
])
def test_every_header_fault_names_the_file(tmp_path, data, pattern):
    _check_fault(tmp_path, data, pattern)


def test_truncated_inside_gzip_is_caught_by_size_check(tmp_path):
    _check_fault(tmp_path, gzip.compress(GOOD[:-2]), "truncated: 16 bytes")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_label_out_of_range_names_file_and_index(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.array([0, 9, 10, 3], dtype=np.uint8)))
    with pytest.raises(DataError, match=r"labels: label 10 at index 2 is outside 0\.\.9"):
        read_labels(path)


def test_labels_must_be_1d_uint8(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros((2, 2), dtype=np.uint8)))
    with pytest.raises(DataError, match="labels: expected a 1-D uint8 label vector, found 2x2 uint8"):
        read_labels(path)


@pytest.mark.parametrize("arr,found", [
    (np.zeros((2, 28, 27), np.uint8), "2x28x27 uint8"),
    (np.zeros((2, 784), np.uint8), "2x784 uint8"),
    (np.zeros((2, 28, 28), np.float32), "2x28x28 float32"),
])
def test_images_must_be_28x28_uint8(tmp_path, arr, found):
    (tmp_path / "im").write_bytes(idx_bytes(arr))
    (tmp_path / "lb").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match=f"im: expected nx28x28 uint8 images, found {found}"):
        read_pair(tmp_path / "im", tmp_path / "lb")


def test_count_mismatch_names_both_files(tmp_path):
    (tmp_path / "im").write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    (tmp_path / "lb").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError) as info:
        read_pair(tmp_path / "im", tmp_path / "lb")
    msg = str(info.value)
    assert f"{tmp_path / 'im'} holds 3 images but {tmp_path / 'lb'} holds 2 labels" in msg


def test_dims_are_unsigned_32_bit(tmp_path):
    # A huge declared size must be reported as a size fault, not overflow or allocate.
    data = struct.pack(">HBBI", 0, 8, 1, 2**32 - 1) + b"\x00" * 4
    _check_fault(tmp_path, data, "truncated: 12 bytes but the header (4294967295 of uint8)")
