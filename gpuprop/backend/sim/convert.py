"""Crossing between the stand-in's device arrays and the NumPy arrays that hold their data.

Every operation unwraps its arguments here (refusing host ndarrays mixed into
device work and arrays of another device, as CuPy does), runs NumPy, and wraps
what comes back as arrays on the current device.
"""

import numpy

from . import devices

_ARRAY_TYPE = []  # the stand-in's ndarray class, registered by arrays.py (which imports this module)


def is_device_array(x):
    return isinstance(x, _ARRAY_TYPE[0])


def unsupported(x):
    """CuPy's error for a host array (or other foreign object) handed to a device operation."""
    return TypeError(f"Unsupported type {type(x)}")


def check_keywords(name, kwargs, allowed):
    """Refuse keyword arguments that CuPy's version of ``name`` does not take (``allowed`` None: any)."""
    if allowed is None:
        return
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise TypeError(f"{name}() got an unexpected keyword argument {bad[0]!r} "
                        f"(CuPy's {name} takes {', '.join(allowed) or 'no keywords'})")


def unwrap(x, found, host_ok=False):
    """``x`` with device arrays replaced by their NumPy data, recursing into lists, tuples and dicts.

    Device arrays met are appended to ``found`` (for the device check). A host
    ndarray raises TypeError, as in CuPy, unless ``host_ok`` (explicit transfers).
    """
    if is_device_array(x):
        found.append(x)
        return x._a
    if isinstance(x, numpy.ndarray):
        if host_ok:
            return x
        raise unsupported(x)
    if isinstance(x, (list, tuple)):
        items = [unwrap(v, found, host_ok) for v in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict):
        return {k: unwrap(v, found, host_ok) for k, v in x.items()}
    return x


def unwrap_call(args, kwargs, host_ok=False, check=True):
    """Unwrapped (args, kwargs, outs) where ``outs`` maps id(NumPy data) -> the device array given as ``out``."""
    found = []
    a = unwrap(args, found, host_ok)
    k = unwrap(kwargs, found, host_ok)
    if check:
        devices.check_same_device(found)
    outs = {}
    out = kwargs.get("out")
    for o in (out if isinstance(out, tuple) else (out,)):
        if is_device_array(o):
            outs[id(o._a)] = o
    return a, k, outs


def wrap(r, device=None, outs=None):
    """NumPy results as device arrays on ``device`` (default: the current one); NumPy scalars become 0-d
    arrays, as CuPy returns them; an array that is an ``out=`` argument's data comes back as that argument."""
    if isinstance(r, numpy.ndarray):
        if outs and id(r) in outs:
            return outs[id(r)]
        return _ARRAY_TYPE[0]._new(r, devices.current_id() if device is None else device)
    if isinstance(r, numpy.generic):
        return _ARRAY_TYPE[0]._new(numpy.asarray(r), devices.current_id() if device is None else device)
    if isinstance(r, tuple):
        return tuple(wrap(v, device, outs) for v in r)
    if isinstance(r, list):
        return [wrap(v, device, outs) for v in r]
    return r


def wrap_index(index, shape):
    """The NumPy index equal to ``index`` under CuPy's rule: out-of-bounds *integer array* indices wrap
    around (mod the axis length) instead of raising; scalar integers, slices and masks behave as in NumPy."""
    parts = list(index) if isinstance(index, tuple) else [index]
    consumed = sum(_axes_used(p) for p in parts)
    out, axis = [], 0
    for p in parts:
        if p is Ellipsis:
            axis += len(shape) - consumed
        elif _is_int_array(p):
            if axis >= len(shape):
                raise IndexError(f"too many indices for array: array is {len(shape)}-dimensional")
            arr = numpy.asarray(p) if numpy.size(p) else numpy.asarray(p, dtype=numpy.intp)
            p = numpy.mod(arr, shape[axis]) if shape[axis] else arr
        axis += _axes_used(p)
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _is_int_array(p):
    if isinstance(p, (list, numpy.ndarray)):
        a = numpy.asarray(p)
        return a.dtype.kind in "iu" or (a.size == 0 and a.dtype.kind == "f")
    return False


def _axes_used(p):
    if p is None or p is Ellipsis:
        return 0
    if isinstance(p, (list, numpy.ndarray)) and numpy.asarray(p).dtype == bool:
        return numpy.asarray(p).ndim
    return 1
