"""Small helpers with Keras names."""

import numpy


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels: shape (N,) → (N, num_classes), as ``keras.utils.to_categorical``."""
    y = numpy.asarray(y, dtype="int64").reshape(-1)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got {y.min()}..{y.max()}")
    out = numpy.zeros((y.shape[0], num_classes), dtype=dtype)
    out[numpy.arange(y.shape[0]), y] = 1
    return out
