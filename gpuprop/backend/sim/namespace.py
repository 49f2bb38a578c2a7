"""The stand-in ``cupy`` module: CuPy's names, each backed by NumPy on the simulated device.

Only names CuPy has are offered (``names.load``), each function taking only
CuPy's keyword arguments; a CuPy function NumPy cannot stand in for raises
NotImplementedError naming it, rather than quietly doing something else.
"""

import functools
import types

import numpy

from . import arrays, convert, devices, kernels, names, random

# Functions that take host data on purpose: the explicit host-to-device transfers.
_HOST_INPUT = ("asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray", "copyto")
_MODULE = []


class ufunc:  # noqa: N801 - CuPy's name
    """A NumPy ufunc on device arrays, with CuPy's keywords (``out``, ``dtype``, ``casting``)."""

    def __init__(self, np_ufunc, keywords):
        self._f, self._keywords = np_ufunc, keywords
        self.__name__ = self.name = np_ufunc.__name__
        self.nin, self.nout, self.nargs, self.types = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs, np_ufunc.types

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def __call__(self, *args, **kwargs):
        convert.check_keywords(self.name, kwargs, self._keywords)
        for a in args:  # a ufunc takes device arrays and scalars only: a Python list is host data too
            if isinstance(a, (list, tuple)):
                raise convert.unsupported(a)
        return _run(self._f, args, kwargs)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _run(self._f.reduce, (array,), dict(axis=axis, dtype=dtype, out=out, keepdims=keepdims))

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return _run(self._f.accumulate, (array,), dict(axis=axis, dtype=dtype, out=out))

    def reduceat(self, array, indices, axis=0, dtype=None, out=None):
        return _run(self._f.reduceat, (array, indices), dict(axis=axis, dtype=dtype, out=out))

    def outer(self, a, b, **kwargs):
        return _run(self._f.outer, (a, b), kwargs)

    def at(self, a, indices, b=None):
        found = [a]
        idx = convert.unwrap(indices, found, host_ok=True)
        val = convert.unwrap(b, found)
        devices.check_same_device(found)
        self._f.at(a._a, convert.wrap_index(idx, a.shape), *(() if b is None else (val,)))


def _run(fn, args, kwargs, host_ok=False):
    if "out" in kwargs and kwargs["out"] is not None and not convert.is_device_array(kwargs["out"]) \
            and not isinstance(kwargs["out"], tuple):
        raise TypeError(f"out must be a cupy.ndarray, not {type(kwargs['out'])}")
    a, k, outs = convert.unwrap_call(args, kwargs, host_ok=host_ok)
    return convert.wrap(fn(*a, **k), outs=outs)


def _function(name, np_fn, keywords):
    host_ok = name in _HOST_INPUT

    @functools.wraps(np_fn)
    def fn(*args, **kwargs):
        convert.check_keywords(name, kwargs, keywords)
        return _run(np_fn, args, kwargs, host_ok)

    return fn


def _not_simulated(path):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"gpu-sim does not simulate cupy.{path}; use it on a real GPU or extend "
                                  "gpuprop/backend/sim")

    fn.__name__ = path.rsplit(".", 1)[-1]
    return fn


# --- functions whose CuPy behaviour differs from NumPy's ----------------------------------------------------------
def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if convert.is_device_array(a):  # CuPy returns the very array when nothing needs converting
        return a if dtype is None or numpy.dtype(dtype) == a.dtype else a.astype(dtype)
    return _run(numpy.asarray, (a,), {"dtype": dtype, "order": order}, host_ok=True).copy()


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if convert.is_device_array(a):
        return a.get(stream=stream, order=order, out=out)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    return _MODULE[0] if any(convert.is_device_array(a) for a in args) else numpy


def take(a, indices, axis=None, out=None):
    return _run(functools.partial(numpy.take, mode="wrap"), (a, indices), {"axis": axis, "out": out})


def take_along_axis(a, indices, axis):
    if axis is not None:
        idx = numpy.mod(convert.unwrap(indices, []), a.shape[axis]) if convert.is_device_array(indices) else indices
        indices = convert.wrap(idx, indices._dev) if convert.is_device_array(indices) else indices
    return _run(numpy.take_along_axis, (a, indices), {"axis": axis})


def as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided``: a view, on the array's own device."""
    return convert.wrap(numpy.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides), x._dev)


_SPECIAL = {"asarray": asarray, "asnumpy": asnumpy, "get_array_module": get_array_module, "take": take,
            "take_along_axis": take_along_axis}


def _submodule(path, listing, np_mod, special=()):
    mod = types.ModuleType(f"cupy.{path}")
    special = dict(special)
    for n, keywords in listing.items():
        np_fn = getattr(np_mod, n, None)
        if n in special:
            setattr(mod, n, special[n])
        elif callable(np_fn) and not isinstance(np_fn, type):
            setattr(mod, n, _function(n, np_fn, keywords))
        else:
            setattr(mod, n, _not_simulated(f"{path}.{n}"))
    for n, obj in special.items():  # classes (cupy.random.Generator) are not in the function listing
        setattr(mod, n, obj)
    return mod


def build():
    """A fresh stand-in cupy module."""
    data = names.load()
    arrays._install(data)
    random.install(data)
    m = types.ModuleType("cupy", "gpuprop's CuPy stand-in on the CPU (gpu-sim)")
    m.__version__ = f"{data['cupy_version']}-sim"
    m.names_source = data["source"]
    for n, kind in data["names"].items():
        np_obj = getattr(numpy, n, None)
        if kind == "ufunc":
            obj = ufunc(np_obj, data["ufuncs"][n]) if isinstance(np_obj, numpy.ufunc) else _not_simulated(n)
        elif kind == "function":
            obj = _SPECIAL.get(n) or (_function(n, np_obj, data["functions"].get(n)) if callable(np_obj)
                                      else _not_simulated(n))
        elif kind in ("class", "value") and np_obj is not None and n not in ("ndarray", "ufunc"):
            obj = np_obj
        else:
            continue
        setattr(m, n, obj)
    m.ndarray, m.ufunc, m.ElementwiseKernel = arrays.ndarray, ufunc, kernels.ElementwiseKernel
    m.random = _submodule("random", data["submodules"]["random"], types.SimpleNamespace(),
                          {"default_rng": random.default_rng, "Generator": random.Generator})
    m.linalg = _submodule("linalg", data["submodules"]["linalg"], numpy.linalg)
    m.fft = _submodule("fft", data["submodules"]["fft"], numpy.fft)
    m.lib = types.ModuleType("cupy.lib")
    m.lib.stride_tricks = _submodule("lib.stride_tricks", data["submodules"]["lib.stride_tricks"],
                                     types.SimpleNamespace(), {"as_strided": as_strided})
    m.cuda = types.ModuleType("cupy.cuda")
    m.cuda.Device, m.cuda.runtime = devices.Device, devices.runtime
    m.cuda.compiler = types.SimpleNamespace(CompileException=kernels.CompileException)
    m.cuda.CUDARuntimeError = devices.runtime.CUDARuntimeError
    m.host_syncs = devices.host_syncs
    m.DEVICE_COUNT = devices.DEVICE_COUNT
    return m


def module():
    """The process's one stand-in module (built on first use)."""
    if not _MODULE:
        _MODULE.append(build())
    return _MODULE[0]
