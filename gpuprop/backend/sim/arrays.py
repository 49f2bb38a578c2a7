"""The stand-in's ``ndarray``: NumPy data on a simulated device, with CuPy's manners.

It refuses implicit host conversion (``numpy.asarray(a)`` raises TypeError),
refuses host ndarrays in its operators, wraps out-of-bounds integer-array
indices, counts every value read on the host, raises when it meets an array of
another device, and has only the methods and keyword arguments CuPy's has.
"""

import operator

import numpy

from . import convert, devices

_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
           "rshift", "divmod")
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
_UNARY = ("neg", "pos", "abs", "invert")
# Methods that return a view of the array's own memory: no kernel runs, so no device check (as in CuPy).
_SERIALISE = ("tobytes", "tofile", "dump", "dumps")
_VIEWS = ("reshape", "view", "transpose", "swapaxes", "squeeze", "diagonal", "ravel")


class ndarray:  # noqa: N801 - CuPy's name
    """A device array. Build it with the stand-in's ``asarray``/``zeros``/...; ``get()`` reads it on the host."""

    __slots__ = ("_a", "_dev")
    __hash__ = None
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = numpy.empty(shape, dtype=dtype, order=order)
        self._dev = devices.current_id()

    @classmethod
    def _new(cls, data, device_id):
        a = cls.__new__(cls)
        a._a, a._dev = data, device_id
        return a

    # --- attributes -------------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    base = property(lambda self: None if self._a.base is None else ndarray._new(self._a.base, self._dev))
    T = property(lambda self: ndarray._new(self._a.T, self._dev))
    mT = property(lambda self: ndarray._new(self._a.mT, self._dev))
    real = property(lambda self: ndarray._new(self._a.real, self._dev))
    imag = property(lambda self: ndarray._new(self._a.imag, self._dev))

    @property
    def device(self):
        return devices.Device(self._dev)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    # --- reads on the host: each is one device-to-host synchronisation -----------------------------------------
    def _host(self):
        devices.count_sync()
        return self._a

    def get(self, stream=None, order="C", out=None, blocking=True):
        data = self._host()
        if out is not None:
            out[...] = data
            return out
        return numpy.array(data, order=order)

    def item(self):
        return self._host().item()

    def tolist(self):
        return self._host().tolist()

    def __float__(self):
        return float(self._host())

    def __int__(self):
        return int(self._host())

    def __complex__(self):
        return complex(self._host())

    def __bool__(self):
        return bool(self._host())

    def __index__(self):
        return operator.index(self._host())

    def __repr__(self):
        return repr(self._host())

    def __str__(self):
        return str(self._host())

    def __format__(self, spec):
        return format(self._host().item() if self._a.ndim == 0 else self._host(), spec)

    def set(self, arr, stream=None):
        """Copy the host array ``arr`` (same shape) into this device array."""
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, not {type(arr)}")
        if arr.shape != self._a.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self._a.shape}, new shape: {arr.shape}")
        self._a[...] = arr

    # --- CuPy's refusals -----------------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
                        "a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on device arrays run the stand-in's ufunc of the same name, as CuPy dispatches them."""
        from . import namespace

        mine = getattr(namespace.module(), ufunc.__name__, None)
        if mine is None or not hasattr(mine, "nin"):
            return NotImplemented
        return mine(*inputs, **kwargs) if method == "__call__" else getattr(mine, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import namespace

        mine = namespace.module()
        for part in func.__module__.split(".")[1:] + [func.__name__]:
            mine = getattr(mine, part, None) if part not in ("_core", "core", "multiarray") else mine
        if mine is None or not callable(mine):
            return NotImplemented  # NumPy then raises TypeError: no implementation for this function
        return mine(*args, **kwargs)

    # --- indexing (integer-array indices wrap, as CuPy's kernels do) -------------------------------------------
    def __getitem__(self, index):
        found = []
        idx = convert.unwrap(index, found, host_ok=True)
        if found or _is_advanced(idx):
            devices.check_same_device([self, *found])
            return convert.wrap(self._a[convert.wrap_index(idx, self._a.shape)])
        return convert.wrap(self._a[idx], self._dev)

    def __setitem__(self, index, value):
        found = [self]
        idx = convert.unwrap(index, found, host_ok=True)
        val = convert.unwrap(value, found)
        devices.check_same_device(found)
        self._a[convert.wrap_index(idx, self._a.shape)] = val

    # --- methods CuPy has but NumPy's ndarray has not, or has with other defaults -------------------------------
    def take(self, indices, axis=None, out=None):
        a, k, outs = convert.unwrap_call((self, indices), {"out": out})
        return convert.wrap(numpy.take(a[0], a[1], axis=axis, out=k["out"], mode="wrap"), outs=outs)

    def put(self, indices, values, mode="wrap"):
        a, _, _ = convert.unwrap_call((self, indices, values), {})
        numpy.put(a[0], a[1], a[2], mode=mode)

    def scatter_add(self, slices, value):
        self._scatter(numpy.add, slices, value)

    def scatter_max(self, slices, value):
        self._scatter(numpy.maximum, slices, value)

    def scatter_min(self, slices, value):
        self._scatter(numpy.minimum, slices, value)

    def _scatter(self, ufunc, slices, value):
        found = [self]
        idx, val = convert.unwrap(slices, found, host_ok=True), convert.unwrap(value, found)
        devices.check_same_device(found)
        ufunc.at(self._a, convert.wrap_index(idx, self._a.shape), val)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and numpy.dtype(dtype) == self._a.dtype:
            return self
        devices.check_same_device([self])
        return convert.wrap(self._a.astype(dtype, order=order, casting=casting or "unsafe"))

    def copy(self, order="C"):  # CuPy copies across devices, onto the current one
        return convert.wrap(self._a.copy(order=order))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()


def _is_advanced(idx):
    parts = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(p, (list, numpy.ndarray)) for p in parts)


def _method(name, keywords, view):
    def method(self, *args, **kwargs):
        convert.check_keywords(name, kwargs, keywords)
        if name in _SERIALISE:
            devices.count_sync()  # the bytes are read on the host
        a, k, outs = convert.unwrap_call((self, *args), kwargs, check=not view)
        r = getattr(a[0], name)(*a[1:], **k)
        return convert.wrap(r, self._dev if view else None, outs)

    method.__name__ = name
    return method


def _absent(name):
    def method(self, *args, **kwargs):
        raise NotImplementedError(f"gpu-sim does not simulate cupy.ndarray.{name}; extend gpuprop/backend/sim")

    method.__name__ = name
    return method


_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
        "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "matmul": operator.matmul,
        "and": operator.and_, "or": operator.or_, "xor": operator.xor, "lshift": operator.lshift,
        "rshift": operator.rshift, "divmod": divmod, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
        "le": operator.le, "gt": operator.gt, "ge": operator.ge, "neg": operator.neg, "pos": operator.pos,
        "abs": operator.abs, "invert": operator.invert}


def _operator(name, reflected=False, inplace=False):
    op = getattr(operator, f"i{name}") if inplace else _OPS[name]

    def method(self, *other):
        if other and not (convert.is_device_array(other[0]) or isinstance(other[0], (int, float, complex,
                                                                                     numpy.generic))):
            if isinstance(other[0], (numpy.ndarray, list, tuple)):
                raise convert.unsupported(other[0])  # CuPy never takes host data into device arithmetic
            return NotImplemented
        found = [self]
        o = [convert.unwrap(x, found) for x in other]
        devices.check_same_device(found)
        if inplace:
            op(self._a, o[0])
            return self
        return convert.wrap(op(o[0], self._a) if reflected else op(self._a, *o))

    method.__name__ = f"__{'i' if inplace else 'r' if reflected else ''}{name}__"
    return method


def _install(names):
    """Give the class CuPy's methods (by name, with CuPy's keywords) and drop what CuPy's ndarray lacks."""
    from .names import _DUNDERS

    methods = names["ndarray_methods"]
    for n in _BINARY:
        for prefix, kw in (("", {}), ("r", {"reflected": True}), ("i", {"inplace": True})):
            if f"__{prefix}{n}__" in methods:
                setattr(ndarray, f"__{prefix}{n}__", _operator(n, **kw))
    for n in _COMPARE + _UNARY:
        if f"__{n}__" in methods:
            setattr(ndarray, f"__{n}__", _operator(n))
    for n, keywords in methods.items():
        if not n.startswith("_") and n not in vars(ndarray):
            setattr(ndarray, n, _method(n, keywords, n in _VIEWS) if hasattr(numpy.ndarray, n) else _absent(n))
    for n in list(vars(ndarray)):
        lacking = (n in _DUNDERS and n not in methods) or (
            not n.startswith("_") and n not in methods and n not in names["ndarray_attributes"])
        if lacking:
            delattr(ndarray, n)


convert._ARRAY_TYPE.append(ndarray)
