"""``cupy.ElementwiseKernel`` run on the host: its own C++ operation string compiled with g++.

CuPy sets the operation inside a CUDA loop over the broadcast elements, with
each input read into a ``const T`` local, each output bound as ``T&``, and ``T``
the arrays' element type. The same layout is compiled here as a host shared
library (cached by source hash) and called through ctypes, so what is tested is
the kernel's arithmetic as written, not a Python restatement of it. float16
is GCC's ``_Float16``, its math functions computed in float and rounded back,
as CuPy's half-precision math does.
"""

import ctypes
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import numpy

from . import convert, devices

# dtype -> (C++ element type, C++ type a scalar argument travels as, its ctypes type). Scalars travel as
# double or long long and are cast to the parameter's type in the loop: ctypes has no half type, and a
# float32 value survives the round trip through double exactly.
CTYPES = {"float16": ("_Float16", "double", ctypes.c_double), "float32": ("float", "double", ctypes.c_double),
          "float64": ("double", "double", ctypes.c_double), "int32": ("int", "long long", ctypes.c_int64),
          "int64": ("long long", "long long", ctypes.c_int64)}
# What CUDA device code may call unqualified and host C++ spells otherwise (math.h gives the float overloads).
_HALF_MATH = ("sqrt", "exp", "log", "tanh", "log1p", "expm1", "fabs", "sin", "cos", "exp2", "log2", "floor", "ceil")
_CUDA_MATH = ("#include <math.h>\n#include <algorithm>\nusing std::max;\nusing std::min;\n"
              "template <class X> static inline X rsqrt(X v) { return X(1) / sqrt(v); }\n"
              # CuPy's float16 math runs in float and rounds the result to half
              + "".join(f"static inline _Float16 {f}(_Float16 v) {{ return (_Float16){f}f((float)v); }}\n"
                        for f in _HALF_MATH))
_FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++17")
_LIBS = {}


class CompileException(Exception):
    """As ``cupy.cuda.compiler.CompileException``: the kernel source does not compile."""


def _cache_dir():
    base = os.environ.get("GPUPROP_SIM_CACHE") or os.path.join(tempfile.gettempdir(), f"gpuprop-sim-{os.getuid()}")
    path = pathlib.Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _parse(params):
    out = []
    for p in params.split(","):
        words = p.split()
        if len(words) != 2:
            raise ValueError(f"gpu-sim supports parameters written 'TYPE name', not {p.strip()!r}")
        out.append((words[0], words[1]))
    return out


class ElementwiseKernel:
    """``ElementwiseKernel(in_params, out_params, operation, name)``; call it with inputs, then optional outputs."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        convert.check_keywords("ElementwiseKernel", kwargs, ["reduce_dims", "options", "preamble", "no_return",
                                                             "return_tuple", "loop_prep", "after_loop"])
        self.in_params, self.out_params = _parse(in_params), _parse(out_params)
        self.operation, self.name = operation, name
        self.preamble = kwargs.get("preamble", "")
        self.nin, self.nout = len(self.in_params), len(self.out_params)

    def _source(self, dtype_name, scalars):
        typedefs = f"typedef {CTYPES[dtype_name][0]} T;\n"
        args, body = [], []
        for (t, n), is_scalar in zip(self.in_params, scalars):
            ct = "T" if t == "T" else CTYPES[t][0]
            carrier = CTYPES[dtype_name if t == "T" else t][1]
            args.append(f"{carrier} _in_{n}" if is_scalar else f"const {ct}* _in_{n}")
            body.append(f"const {ct} {n} = {f'({ct})_in_{n}' if is_scalar else f'_in_{n}[i]'};")
        for t, n in self.out_params:
            ct = "T" if t == "T" else CTYPES[t][0]
            args.append(f"{ct}* _out_{n}")
            body.append(f"{ct}& {n} = _out_{n}[i];")
        lines = "\n    ".join(body)
        return (f"{_CUDA_MATH}{typedefs}{self.preamble}\n"
                f'extern "C" void {self.name}({", ".join(args)}, long long _n) {{\n'
                f"  for (long long i = 0; i < _n; ++i) {{\n    {lines}\n    {self.operation};\n  }}\n}}\n")

    def _library(self, source):
        compiler = shutil.which(os.environ.get("CXX", "g++"))
        key = hashlib.sha256(f"{compiler} {_FLAGS}\n{source}".encode()).hexdigest()[:24]
        if key in _LIBS:
            return _LIBS[key]
        cache = _cache_dir()
        lib = cache / f"{self.name}-{key}.so"
        if not lib.exists():
            if compiler is None:
                raise CompileException("gpu-sim needs a C++ compiler to run ElementwiseKernel: install g++ "
                                       "(apt-get install g++) or set CXX")
            src = cache / f".{self.name}-{key}.{os.getpid()}.cpp"  # per process: never read while half-written
            src.write_text(source)
            tmp = cache / f".{lib.name}.{os.getpid()}.tmp"
            res = subprocess.run([compiler, *_FLAGS, "-o", str(tmp), str(src)],
                                 capture_output=True, text=True)
            src.unlink(missing_ok=True)
            if res.returncode:
                tmp.unlink(missing_ok=True)
                errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
                raise CompileException(f"kernel {self.name!r} does not compile: "
                                       f"{(errors or res.stderr.splitlines() or ['?'])[0]}\n{res.stderr}")
            os.replace(tmp, lib)  # atomic: a concurrent process never loads a half-written library
        _LIBS[key] = ctypes.CDLL(str(lib))
        return _LIBS[key]

    def __call__(self, *args, **kwargs):
        convert.check_keywords(self.name, kwargs, ["size", "block_size", "stream"])
        if len(args) not in (self.nin, self.nin + self.nout):
            raise TypeError(f"Wrong number of arguments for {self.name!r}: expected {self.nin} or "
                            f"{self.nin + self.nout}, got {len(args)}")
        found = []
        data = [convert.unwrap(a, found) for a in args]
        devices.check_same_device(found)
        dtype = self._bind_t(args)
        ins, outs_given = data[:self.nin], data[self.nin:]
        scalars = [not convert.is_device_array(a) for a in args[:self.nin]]
        shape = numpy.broadcast_shapes(*(numpy.shape(d) for d in data if isinstance(d, numpy.ndarray)))
        outs = outs_given or [numpy.empty(shape, dtype=dtype if t == "T" else t) for t, _ in self.out_params]
        work = [o if o.flags.c_contiguous and o.shape == shape else numpy.empty(shape, o.dtype) for o in outs]
        for o, w in zip(outs, work):
            if w is not o:
                w[...] = o  # outputs are read too (in-place updates): start from their values
        cargs, keep = [], []  # keep: the contiguous copies must outlive the call
        for (t, _), d, s in zip(self.in_params, ins, scalars):
            if s:
                cargs.append(CTYPES[dtype.name if t == "T" else t][2](d))
            else:
                keep.append(numpy.ascontiguousarray(numpy.broadcast_to(d, shape)))
                cargs.append(ctypes.c_void_p(keep[-1].ctypes.data))
        cargs += [ctypes.c_void_p(w.ctypes.data) for w in work] + [ctypes.c_longlong(int(numpy.prod(shape)))]
        fn = getattr(self._library(self._source(dtype.name, scalars)), self.name)
        fn.restype = None
        fn(*cargs)
        for o, w in zip(outs, work):
            if w is not o:
                o[...] = w
        if outs_given:
            res = args[self.nin:]
        else:
            res = [convert.wrap(o) for o in outs]
        return res[0] if self.nout == 1 else tuple(res)

    def _bind_t(self, args):
        """``T`` is the dtype of the arrays bound to T-typed parameters, which must agree (as CuPy checks)."""
        params = self.in_params + self.out_params
        dts = {a.dtype for (t, _), a in zip(params, args) if t == "T" and convert.is_device_array(a)}
        if not dts:
            dts = {numpy.asarray(a).dtype for (t, _), a in zip(params, args) if t == "T"
                   and isinstance(a, numpy.generic)}
        if len(dts) != 1:
            raise TypeError(f"Type is mismatched. {self.name} binds T to {sorted(str(d) for d in dts)}")
        dt = dts.pop()
        if dt.name not in CTYPES:
            raise TypeError(f"gpu-sim cannot run {self.name} on {dt}: supported types are {', '.join(CTYPES)}")
        return dt
