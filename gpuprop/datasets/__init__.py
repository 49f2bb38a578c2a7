"""Datasets with a Keras-style ``load_data()``: ``mnist`` and ``fashion_mnist``.

>>> from gpuprop.datasets import mnist
>>> (x_train, y_train), (x_test, y_test) = mnist.load_data()
"""

from ..errors import DataError
from . import fashion_mnist, mnist
from .idx import read_idx, write_idx

DATASETS = {"mnist": mnist, "fashion-mnist": fashion_mnist}


def names():
    """The canonical dataset names, as ``get`` accepts them."""
    return list(DATASETS)


def _key(name):
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def get(name):
    """The dataset module for ``name``; case, ``-``, ``_`` and spaces are ignored."""
    for canonical, module in DATASETS.items():
        if _key(canonical) == _key(name):
            return module
    raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


__all__ = ["DATASETS", "fashion_mnist", "get", "mnist", "names", "read_idx", "write_idx"]
