"""``cupy.random.default_rng``: a Generator with CuPy's methods and keywords only.

The draws come from NumPy's PCG64, so they differ from CuPy's XORWOW stream;
what the stand-in checks is the interface (no ``permutation``, ``choice`` or
``normal`` on CuPy's Generator) and that results are device arrays.
"""

import numpy

from . import convert, devices


class Generator:
    """CuPy's ``cupy.random.Generator``: methods installed from CuPy's list by ``install``."""

    def __init__(self, seed):
        if not (seed is None or isinstance(seed, (int, numpy.integer))):
            raise TypeError(f"CuPy's default_rng takes an int seed (or None), not {type(seed).__name__}")
        self._rng = numpy.random.default_rng(seed)
        self._dev = devices.current_id()

    def __repr__(self):
        return f"Generator(gpu-sim device {self._dev})"


def _method(name, keywords):
    def method(self, *args, **kwargs):
        convert.check_keywords(f"Generator.{name}", kwargs, keywords)
        a, k, outs = convert.unwrap_call(args, kwargs)
        if name in ("random", "standard_normal", "standard_exponential", "uniform") and "dtype" in k:
            k["dtype"] = numpy.dtype(k["dtype"])  # NumPy's takes float32/float64 too, as CuPy's
        return convert.wrap(getattr(self._rng, name)(*a, **k), outs=outs)

    method.__name__ = name
    return method


def install(names):
    for name, keywords in names["generator_methods"].items():
        if hasattr(numpy.random.Generator, name):
            setattr(Generator, name, _method(name, keywords))


def default_rng(seed=None):
    """A Generator on the current device (CuPy's takes an int seed or a BitGenerator)."""
    return Generator(seed)
