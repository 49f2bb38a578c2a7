"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then
``ndim`` big-endian uint32 sizes, then the values in C order, big-endian. The
files are usually gzipped; gzip is told apart by its magic bytes ``1f 8b``,
never by the file name, so a renamed file still reads.
"""

import contextlib
import gzip as _gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# IDX type code -> big-endian numpy dtype.
DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"
_FIX = "delete it and download again (or replace it with a fresh copy)"


def _fault(path, what):
    return DataError(f"{path}: {what}; {_FIX}")


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path or download the dataset again") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e}); check its permissions") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return _gzip.decompress(raw)
    except (EOFError, zlib.error, _gzip.BadGzipFile, OSError) as e:
        raise _fault(path, f"corrupt or truncated gzip data ({e})") from None


def read_idx(path):
    """Read an IDX file (gzipped or raw) into a native-endian numpy array.

    Raises ``DataError`` naming the file and the fault when the header is bad
    or the file size does not match the header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise _fault(path, f"only {len(data)} bytes, too short for an IDX header (truncated?)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise _fault(path, f"bad IDX magic number 0x{data[:4].hex()} (first two bytes must be zero); "
                           "not an IDX file")
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise _fault(path, f"unknown IDX data type code 0x{code:02X} (expected one of {known})")
    if ndim == 0:
        raise _fault(path, "IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _fault(path, f"truncated IDX header: {len(data)} bytes, need {header} for {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "trailing bytes"
        shape = "x".join(map(str, dims))
        raise _fault(path, f"{kind}: {len(data)} bytes but the header ({shape} of {dtype.name}) "
                           f"needs {expected}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    # astype copies: the result is writable and native-endian, like Keras' arrays.
    return arr.astype(dtype.newbyteorder("="))


@contextlib.contextmanager
def atomic_writer(path):
    """Yield a binary file that replaces ``path`` only if the block succeeds.

    The temp file sits in the target's folder so ``os.replace`` is atomic
    (same file system); on any error it is removed, so readers never see a
    partial file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_idx(path, array, gzip=None):
    """Write ``array`` as an IDX file, atomically.

    ``gzip=None`` compresses when the name ends in ``.gz``. The dtype must be
    one IDX supports: uint8, int8, int16, int32, float32 or float64.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"{path}: IDX cannot store dtype {array.dtype}; "
                        "convert to uint8, int8, int16, int32, float32 or float64")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    body = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    body += np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
    if gzip is None:
        gzip = path.suffix == ".gz"
    if gzip:
        # mtime=0 makes the output reproducible byte for byte.
        body = _gzip.compress(body, mtime=0)
    with atomic_writer(path) as f:
        f.write(body)
    return path


def read_images(path, shape=(28, 28)):
    """Read an image file and check it is ``(n, *shape)`` uint8."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != tuple(shape):
        want = "x".join(map(str, ("n",) + tuple(shape)))
        got = "x".join(map(str, arr.shape))
        raise DataError(f"{path}: expected {want} uint8 images, found {got} {arr.dtype}; "
                        "the file is not an image set of this dataset, replace it")
    return arr


def read_labels(path, num_classes=10):
    """Read a label file and check it is 1-D uint8 with values below ``num_classes``."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        got = "x".join(map(str, arr.shape))
        raise DataError(f"{path}: expected a 1-D uint8 label vector, found {got} {arr.dtype}; "
                        "the file is not a label set of this dataset, replace it")
    if arr.size and int(arr.max()) >= num_classes:
        bad = int(np.argmax(arr >= num_classes))
        raise DataError(f"{path}: label {int(arr[bad])} at index {bad} is outside 0..{num_classes - 1}; "
                        f"the file is corrupt, {_FIX}")
    return arr


def read_pair(images_path, labels_path, shape=(28, 28), num_classes=10):
    """Read matching image and label files; their counts must agree."""
    x = read_images(images_path, shape)
    y = read_labels(labels_path, num_classes)
    if len(x) != len(y):
        raise DataError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels; "
                        "the two files come from different sets, download both again")
    return x, y
