"""Small helpers with Keras names: to_categorical, set_random_seed, plot_model."""

import random

import numpy

from . import initializers


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


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and gpuprop, as ``keras.utils.set_random_seed``.

    Models built afterwards without ``seed=`` draw their seeds (initial weights, shuffling,
    dropout) from a generator seeded here, so the same program gives the same run.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"set_random_seed needs a non-negative integer seed, got {seed!r}")
    random.seed(int(seed))
    numpy.random.seed(int(seed) % 2**32)
    initializers._SEEDS = numpy.random.default_rng(int(seed))


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw the model's layers and connections to ``to_file`` (PNG, or any format matplotlib writes by suffix).

    As ``keras.utils.plot_model``, drawn with matplotlib alone: no graphviz or pydot.
    ``rankdir`` 'TB' stacks the layers top to bottom, 'LR' left to right. Returns ``to_file``.
    """
    from .plotting import model_figure, save_figure

    if kwargs:
        raise TypeError(f"plot_model got unexpected argument(s): {', '.join(kwargs)}")
    fig = model_figure(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable)
    save_figure(fig, to_file, dpi)
    return to_file
