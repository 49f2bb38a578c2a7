"""Keras 3 as an optional test oracle, on its torch backend (set before the first import)."""

import os

import pytest


def keras():
    """The ``keras`` module, or a skip saying why (CI installs it: .ci/run)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras as k
    except Exception as exc:  # ImportError, or a backend it cannot load
        pytest.skip(f"Keras 3 is the oracle here and cannot be imported ({type(exc).__name__}: {exc}); "
                    "pip install keras torch")
    if k.backend.backend() != "torch":
        pytest.skip(f"Keras runs on {k.backend.backend()!r} here; these tests compare against its torch backend")
    return k
