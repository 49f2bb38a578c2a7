"""Small generated IDX datasets for tests.

The encoder here is written independently of ``gpuprop.datasets.idx`` so the
reader is not only checked against its own writer.
"""

import gzip as _gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

FILE_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CLOSED_MIRROR = "http://127.0.0.1:9"  # discard port: refused at once, never the internet
_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


# The fake dataset the CLI tests train on: small enough for seconds, large enough to learn.
N_TRAIN, N_TEST = 512, 128


def idx_bytes(array, code=None):
    """Raw (uncompressed) IDX bytes of ``array``; ``code`` forces the type byte."""
    array = np.asarray(array)
    kind = _CODES[array.dtype.name]
    header = struct.pack(">HBB", 0, kind if code is None else code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def fake_images_labels(n, seed=0, learnable=True):
    """``n`` 28x28 uint8 images and labels 0..9, every class present when n >= 10.

    With ``learnable`` each class lights its own 5x14 block (a 5x2 grid of
    blocks) over faint noise, so a tiny model separates them in one epoch.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 40 if learnable else 256, size=(n, 28, 28), dtype=np.uint8)
    if learnable:
        for i, c in enumerate(labels):
            r, col = (c // 5) * 14, (c % 5) * 5 + 2
            images[i, r:r + 14, col:col + 5] = rng.integers(200, 256, size=(14, 5), dtype=np.uint8)
    return images, labels


def fake_mnist_arrays(n_train=200, n_test=50, seed=0, learnable=True):
    """``((x_train, y_train), (x_test, y_test))`` as ``write_fake_mnist`` writes them."""
    train = fake_images_labels(n_train, seed, learnable)
    test = fake_images_labels(n_test, seed + 1, learnable)
    return train, test


def write_fake_mnist(directory, n_train=200, n_test=50, gzip=True, seed=0, learnable=True):
    """Write the four standard MNIST files (``.gz`` or raw) into ``directory``; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = fake_mnist_arrays(n_train, n_test, seed, learnable)
    for name, arr in zip(FILE_NAMES, (xtr, ytr, xte, yte)):
        data = idx_bytes(arr)
        if gzip:
            (directory / name).write_bytes(_gzip.compress(data, mtime=0))
        else:
            (directory / name[:-3]).write_bytes(data)
    return directory


def sha256_of_files(directory):
    """``{file name: sha256}`` of the four .gz files in ``directory`` (for a test spec)."""
    directory = Path(directory)
    return {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in FILE_NAMES}


def isolate_data_env(monkeypatch, root):
    """Point every place gpuprop looks for data at empty folders under ``root``.

    Sets XDG_CACHE_HOME and GPUPROP_SYSTEM_DATA_DIR, removes GPUPROP_DATA_DIR
    and points the mirror variables at a closed loopback port, so nothing
    installed on the machine leaks in and no test reaches the internet.
    Returns ``(cache_root, system_root)``.
    """
    root = Path(root)
    cache, system = root / "xdg-cache", root / "system-datasets"
    system.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("GPUPROP_SYSTEM_DATA_DIR", str(system))
    monkeypatch.delenv("GPUPROP_DATA_DIR", raising=False)
    for var in ("GPUPROP_MNIST_MIRROR", "GPUPROP_FASHION_MNIST_MIRROR"):
        monkeypatch.setenv(var, CLOSED_MIRROR)
    return cache / "gpuprop", system
