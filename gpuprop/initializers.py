"""Weight initializers (Keras names), drawn on the host.

Drawing with one host NumPy generator and then moving the array to the device
means a seed gives the same initial weights on the CPU and on any GPU.
"""

import math

import numpy


def host_rng(seed):
    """The host generator every initializer draws from."""
    return numpy.random.default_rng(seed)


_SEEDS = None  # utils.set_random_seed puts a generator here: unseeded models then draw repeatable seeds


def fresh_seed():
    """A random seed for models built without one; kept on the model so the run can be repeated."""
    if _SEEDS is not None:
        return int(_SEEDS.integers(2**31))
    return int(numpy.random.SeedSequence().entropy % 2**31)


def _fans(shape):
    """(fan_in, fan_out) as Keras computes them: conv kernels (kh, kw, in, out) scale by kh·kw."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, rng):
    """U(−l, l) with l = √(6 / (fan_in + fan_out)); Keras' default for kernels."""
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(shape, rng):
    """Truncated N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return _truncated_normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), rng)


def he_normal(shape, rng):
    """Truncated N(0, 2 / fan_in), as Keras (cut at two standard deviations)."""
    fan_in, _ = _fans(shape)
    return _truncated_normal(shape, math.sqrt(2.0 / fan_in), rng)


def he_uniform(shape, rng):
    """U(−l, l) with l = √(6 / fan_in)."""
    fan_in, _ = _fans(shape)
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def zeros(shape, rng=None):
    return numpy.zeros(shape)


def ones(shape, rng=None):
    return numpy.ones(shape)


def _truncated_normal(shape, stddev, rng):
    # Keras divides by 0.8796... so the truncated draw keeps the intended variance.
    scale = stddev / 0.87962566103423978
    out = rng.standard_normal(size=shape)
    bad = numpy.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = numpy.abs(out) > 2
    return out * scale


_ALL = {f.__name__: f for f in (glorot_uniform, glorot_normal, he_normal, he_uniform, zeros, ones)}


def get(identifier):
    """An initializer from its Keras name (``'glorot_uniform'``, ``'he_normal'``, ...) or a callable."""
    if callable(identifier):
        return identifier
    key = str(identifier).lower().replace("xavier", "glorot")
    if key not in _ALL:
        raise ValueError(f"unknown initializer {identifier!r}: use one of {', '.join(sorted(_ALL))}")
    return _ALL[key]


def name_of(init):
    return getattr(init, "__name__", str(init))
