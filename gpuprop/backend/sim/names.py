"""Which names and keyword arguments CuPy offers, so the stand-in offers those and no more.

Where CuPy imports (with or without a GPU) the lists are read from it by
introspection; elsewhere from ``cupy_names.json``, written from CuPy by
``python -m gpuprop.backend.sim.names`` (run it with a CuPy installed to refresh).

A callable's entry is the list of keyword arguments it accepts, or None where
CuPy's signature is unknown or takes ``**kwargs`` (any keyword is then accepted).
"""

import ast
import inspect
import json
import pathlib
import sys

DATA = pathlib.Path(__file__).with_name("cupy_names.json")
SUBMODULES = ("random", "linalg", "lib.stride_tricks", "fft")


def _keywords_of(sig):
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return sorted(p.name for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self")


def _signature_from_doc(obj):
    """Cython methods carry their signature as the docstring's first line: 'name(self, a, b=None) -> T'."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if not doc or "(" not in doc.splitlines()[0]:
        return None
    line = doc.splitlines()[0].replace("\\*", "*")
    head = line[line.index("("):]
    depth = 0
    for i, ch in enumerate(head):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            head = head[:i + 1]
            break
    try:
        tree = ast.parse(f"def f{head}: pass")
    except SyntaxError:
        return None
    a = tree.body[0].args
    if a.kwarg is not None:
        return None
    return sorted({x.arg for x in a.args + a.kwonlyargs} - {"self"})


def keywords(obj):
    """Accepted keyword names of a CuPy callable, or None where any keyword may pass."""
    try:
        return _keywords_of(inspect.signature(obj))
    except (TypeError, ValueError):
        return _signature_from_doc(obj)


def _callables(namespace, names):
    return {n: keywords(getattr(namespace, n)) for n in names if callable(getattr(namespace, n, None))}


def collect(cupy):
    """The name lists of the installed CuPy (the structure ``cupy_names.json`` holds)."""
    public = [n for n in dir(cupy) if not n.startswith("_")]
    ufunc_type = type(cupy.add)
    ufuncs = {n: _signature_from_doc(getattr(cupy, n)) for n in public if isinstance(getattr(cupy, n), ufunc_type)}
    functions = _callables(cupy, [n for n in public if n not in ufuncs and not isinstance(getattr(cupy, n), type)])
    subs = {}
    for path in SUBMODULES:
        mod = cupy
        for part in path.split("."):
            mod = getattr(mod, part)
        # classes left out: cupy.random's appear in dir() only once touched (lazily imported)
        subs[path] = _callables(mod, [n for n in dir(mod) if not n.startswith("_")
                                      and not isinstance(getattr(mod, n), type)])
    members = [n for n in dir(cupy.ndarray) if not n.startswith("_") or n in _DUNDERS]
    methods = {n: keywords(getattr(cupy.ndarray, n)) for n in members if callable(getattr(cupy.ndarray, n))}
    generator = {n: keywords(getattr(cupy.random.Generator, n))
                 for n in dir(cupy.random.Generator) if not n.startswith("_")}
    kinds = {n: _kind(getattr(cupy, n), ufunc_type) for n in public}
    return {"cupy_version": cupy.__version__, "names": kinds, "functions": functions, "ufuncs": ufuncs, "submodules": subs,
            "ndarray_methods": methods, "ndarray_attributes": sorted(set(members) - set(methods)),
            "generator_methods": generator}


def _kind(obj, ufunc_type):
    if isinstance(obj, ufunc_type):
        return "ufunc"
    if isinstance(obj, type):
        return "class"
    if inspect.ismodule(obj):
        return "module"
    return "function" if callable(obj) else "value"


# Operator and protocol methods the array class defines; collected so the stand-in can check it offers no extra.
_DUNDERS = ("__abs__", "__add__", "__and__", "__array__", "__array_function__", "__array_ufunc__", "__bool__",
            "__complex__", "__copy__", "__deepcopy__", "__divmod__", "__eq__", "__float__", "__floordiv__",
            "__ge__", "__getitem__", "__gt__", "__iadd__", "__iand__", "__ifloordiv__", "__ilshift__",
            "__imatmul__", "__imod__", "__imul__", "__index__", "__int__", "__invert__", "__ior__", "__ipow__",
            "__irshift__", "__isub__", "__iter__", "__itruediv__", "__ixor__", "__le__", "__len__", "__lshift__",
            "__lt__", "__matmul__", "__mod__", "__mul__", "__ne__", "__neg__", "__or__", "__pos__", "__pow__",
            "__radd__", "__rand__", "__rdivmod__", "__repr__", "__rfloordiv__", "__rlshift__", "__rmatmul__",
            "__rmod__", "__rmul__", "__ror__", "__rpow__", "__rrshift__", "__rshift__", "__rsub__",
            "__rtruediv__", "__rxor__", "__setitem__", "__str__", "__sub__", "__truediv__", "__xor__")


def load():
    """The name lists: from the installed CuPy when it imports, else from the checked-in file."""
    try:
        import cupy
    except Exception:  # not installed, or a broken CUDA install: the checked-in list stands in
        cupy = None
    if cupy is not None:
        data = collect(cupy)
        data["source"] = f"CuPy {cupy.__version__} (installed)"
        return data
    data = json.loads(DATA.read_text(encoding="utf-8"))
    data["source"] = f"CuPy {data['cupy_version']} (checked-in list)"
    return data


def main():
    import cupy

    text = json.dumps(collect(cupy), indent=1, sort_keys=True) + "\n"
    tmp = DATA.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(DATA)
    print(f"wrote {DATA} from CuPy {cupy.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
