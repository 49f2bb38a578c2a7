"""Activations as functions on arrays, with Keras' names and arguments (``keras.activations.*``).

Each takes a NumPy or CuPy array (or anything array-like, taken on the CPU) and
returns one of the same kind. Inside models the ``Activation`` layer uses the
backend's ops with their hand-written backward passes; these are the same
functions for use outside a model, and the names ``activation=`` accepts
(``Dense(10, activation=activations.softmax)`` works as the string does).
"""

import math

from . import config
from .backend import get_backend

_SIM = "gpuprop.backend.sim"  # the CuPy stand-in's arrays stay on it, as CuPy's do
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _take(x):
    """(array on its backend, that backend): CuPy (and gpu-sim) arrays stay there, the rest go to the CPU as floats."""
    module = type(x).__module__
    backend = get_backend("gpu" if module.startswith("cupy") else "gpu-sim" if module.startswith(_SIM) else "cpu")
    arr = backend.asarray(x)
    if arr.dtype.kind != "f":
        arr = arr.astype(config.floatx())
    return arr, backend


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """y = x for x > threshold else 0, capped at ``max_value``, minus negative_slope·max(threshold − x, 0)."""
    x, b = _take(x)
    xp = b.xp
    y = xp.where(x > threshold, x, 0).astype(x.dtype)
    if max_value is not None:
        y = xp.minimum(y, max_value)
    if negative_slope:
        y = y - negative_slope * xp.maximum(threshold - x, 0)
    return y


def leaky_relu(x, negative_slope=0.2):
    """y = x for x ≥ 0, negative_slope·x below."""
    x, b = _take(x)
    return b.xp.where(x >= 0, x, negative_slope * x)


def relu6(x):
    """y = min(max(x, 0), 6)."""
    x, b = _take(x)
    return b.xp.clip(x, 0, 6)


def elu(x, alpha=1.0):
    """y = x for x > 0, α(eˣ − 1) below."""
    x, b = _take(x)
    return b.xp.where(x > 0, x, alpha * b.xp.expm1(b.xp.minimum(x, 0)))


def selu(x):
    """y = λ·elu(x, α) with the self-normalising constants λ ≈ 1.0507, α ≈ 1.6733."""
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def sigmoid(x):
    """y = 1/(1 + e^−x), computed without overflow for large |x|."""
    x, b = _take(x)
    return b.ops.sigmoid(x)


def hard_sigmoid(x):
    """y = relu6(x + 3)/6, Keras 3's piecewise-linear sigmoid."""
    x, b = _take(x)
    return b.xp.clip(x + 3, 0, 6) / 6


def tanh(x):
    x, b = _take(x)
    return b.xp.tanh(x)


def softplus(x):
    """y = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|), finite for every x."""
    x, b = _take(x)
    xp = b.xp
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def softsign(x):
    """y = x/(|x| + 1)."""
    x, b = _take(x)
    return x / (b.xp.abs(x) + 1)


def silu(x):
    """y = x·σ(x) (also called swish)."""
    return _take(x)[0] * sigmoid(x)


swish = silu


def mish(x):
    """y = x·tanh(softplus(x))."""
    return _take(x)[0] * tanh(softplus(x))


def exponential(x):
    x, b = _take(x)
    return b.xp.exp(x)


def linear(x):
    """y = x."""
    return _take(x)[0]


def softmax(x, axis=-1):
    """y_i = e^(x_i − max x)/Σ_j e^(x_j − max x) along ``axis``."""
    x, b = _take(x)
    if axis in (-1, x.ndim - 1):
        return b.ops.softmax(x)
    return b.xp.moveaxis(b.ops.softmax(b.xp.moveaxis(x, axis, -1)), -1, axis)


def log_softmax(x, axis=-1):
    """log softmax, as x − max − log Σ e^(x − max): no log 0."""
    x, b = _take(x)
    if axis in (-1, x.ndim - 1):
        return b.ops.log_softmax(x)
    return b.xp.moveaxis(b.ops.log_softmax(b.xp.moveaxis(x, axis, -1)), -1, axis)


def gelu(x, approximate=False):
    """y = x·Φ(x) = ½x(1 + erf(x/√2)); ``approximate``: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).

    The exact form is the backend's op, the one ``activation='gelu'`` layers use (on the CPU Φ comes from
    ``gpuprop.normal_cdf``, accurate to the dtype's rounding); the tanh form is Keras' ``approximate=True``.
    """
    x, b = _take(x)
    if not approximate:
        return b.ops.gelu(x)
    u = x + 0.044715 * x**3
    u *= math.sqrt(2 / math.pi)
    return 0.5 * x * (1 + b.xp.tanh(u))


_ALL = {f.__name__: f for f in (relu, leaky_relu, relu6, elu, selu, sigmoid, hard_sigmoid, tanh, softplus, softsign,
                                silu, mish, exponential, linear, softmax, log_softmax, gelu)}
_ALL["swish"] = swish


def get(identifier):
    """The activation function named ``identifier`` (a Keras name), or a callable as it is."""
    if callable(identifier):
        return identifier
    key = "linear" if identifier is None else str(identifier).lower()
    if key not in _ALL:
        raise ValueError(f"unknown activation {identifier!r}: use one of {', '.join(sorted(_ALL))}")
    return _ALL[key]
