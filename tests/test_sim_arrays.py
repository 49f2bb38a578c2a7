"""The gpu-sim stand-in behaves as CuPy where CuPy's behaviour breaks code.

Oracles: CuPy's documented behaviour (implicit host conversion raises TypeError,
integer-array indices wrap, only CuPy's names and keywords exist), expected
values computed by hand, and CuPy itself for the name lists where it imports.
"""

import json
import pathlib

import numpy
import pytest

from gpuprop.backend import get_backend
from gpuprop.errors import BackendError

SIM = get_backend("gpu-sim")
xp = SIM.xp


def dev(values, dtype="float64"):
    return SIM.asarray(numpy.asarray(values, dtype=dtype))


# --- implicit host conversion ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", [
    lambda a: numpy.asarray(a),
    lambda a: numpy.array(a),
    lambda a: a + numpy.ones(3),
    lambda a: numpy.ones(3) + a,
    lambda a: a * [1.0, 2.0, 3.0],
    lambda a: xp.add(a, numpy.ones(3)),
    lambda a: xp.maximum(a, [0.0, 1.0, 2.0]),
    lambda a: xp.concatenate([a, numpy.ones(3)]),
    lambda a: xp.matmul(numpy.ones((2, 3)), a),
    lambda a: numpy.insert(a, 0, 1.0),  # a NumPy function CuPy does not implement
    lambda a: a.__setitem__(slice(None), numpy.zeros(3)),
], ids=["numpy.asarray", "numpy.array", "dev+host", "host+dev", "dev*list", "xp.add(host)", "xp.maximum(list)",
        "xp.concatenate(host)", "xp.matmul(host)", "numpy.insert(dev)", "setitem(host)"])
def test_implicit_host_conversion_raises_type_error(form):
    a = dev([1.0, 2.0, 3.0])
    with pytest.raises(TypeError):
        form(a)


def test_numpy_functions_cupy_has_dispatch_to_the_device_as_in_cupy():
    a = dev([1.0, 2.0, 3.0])
    r = numpy.exp(a)  # __array_ufunc__
    assert isinstance(r, xp.ndarray)
    s = numpy.concatenate([a, a])  # __array_function__
    assert isinstance(s, xp.ndarray) and s.shape == (6,)
    numpy.testing.assert_allclose(r.get(), [numpy.e, numpy.e**2, numpy.e**3], rtol=1e-15)


def test_explicit_transfers_work_both_ways():
    host = numpy.arange(4.0)
    a = xp.asarray(host)
    host[0] = 99.0  # a copy was taken: the device array does not alias the host
    assert isinstance(a, xp.ndarray) and a.get().tolist() == [0.0, 1.0, 2.0, 3.0]
    b = xp.zeros(4)
    b.set(host)
    assert xp.asnumpy(b).tolist() == [99.0, 1.0, 2.0, 3.0]


# --- out-of-bounds indices wrap (CuPy's kernels take the index modulo the axis length) ---------------------
def test_out_of_range_integer_array_indices_wrap():
    a = dev([10.0, 11.0, 12.0, 13.0, 14.0])
    # 5 -> 0, 7 -> 2, -6 -> 4, 12 -> 2 (by hand: i mod 5)
    assert a[xp.asarray([5, 7, -6, 12])].get().tolist() == [10.0, 12.0, 14.0, 12.0]
    assert xp.take(a, xp.asarray([6, -7]), axis=0).get().tolist() == [11.0, 13.0]
    assert a.take(xp.asarray([9])).get().tolist() == [14.0]
    m = dev(numpy.arange(12.0).reshape(3, 4))
    # row 4 -> 1, column 5 -> 1: m[1, 1] = 5; with Ellipsis the array indexes the last axis
    assert m[xp.asarray([4]), xp.asarray([5])].get().tolist() == [5.0]
    assert m[..., xp.asarray([-5, 4])].get().tolist() == [[3.0, 0.0], [7.0, 4.0], [11.0, 8.0]]
    a[xp.asarray([6])] = 0.0  # setting wraps too: 6 -> 1
    assert a.get().tolist() == [10.0, 0.0, 12.0, 13.0, 14.0]


def test_scalar_out_of_range_index_raises_as_in_cupy():
    with pytest.raises(IndexError):
        dev([1.0, 2.0])[2]


# --- every device-to-host read is counted once ---------------------------------------------------------------
@pytest.mark.parametrize("read", [float, int, bool, lambda a: a.item(), lambda a: a.get(), xp.asnumpy,
                                  lambda a: a.tolist(), repr, str, lambda a: SIM.to_host(a), SIM.scalar],
                         ids=["float", "int", "bool", "item", "get", "asnumpy", "tolist", "repr", "str",
                              "to_host", "scalar"])
def test_each_host_read_counts_exactly_one_sync(read):
    a = dev(2.5)
    before = SIM.host_syncs()
    read(a)
    assert SIM.host_syncs() - before == 1


def test_device_work_does_not_sync():
    a = dev(numpy.arange(6.0).reshape(2, 3))
    before = SIM.host_syncs()
    b = (a * 2 + 1).sum(axis=0)
    c = xp.where(b > 3, b, 0.0)
    a[0] = c
    xp.argsort(a[1])
    assert SIM.host_syncs() == before


def test_cpu_backend_cannot_count_syncs():
    assert get_backend("cpu").host_syncs() is None


# --- only CuPy's names and keywords ----------------------------------------------------------------------------
def test_generator_has_cupys_methods_only():
    g = xp.random.default_rng(0)
    assert isinstance(g.random(3), xp.ndarray) and g.standard_normal(2, dtype="float32").dtype == numpy.float32
    for missing in ("permutation", "choice", "normal", "shuffle", "bit_generator"):
        assert not hasattr(g, missing), missing


@pytest.mark.parametrize("call", [
    lambda a: xp.sum(a, where=a > 0),
    lambda a: a.sum(initial=0.0),
    lambda a: xp.zeros(3, like=a),
    lambda a: xp.random.default_rng(0).random(3, out=None, endpoint=True),
], ids=["xp.sum(where)", "a.sum(initial)", "xp.zeros(like)", "Generator.random(endpoint)"])
def test_keywords_cupy_lacks_raise(call):
    with pytest.raises(TypeError, match="unexpected keyword"):
        call(dev([1.0, -1.0]))


@pytest.mark.parametrize("name", ["resize", "setflags", "ctypes", "to_device", "__index__", "__imatmul__"])
def test_array_methods_cupy_lacks_are_absent(name):
    assert not hasattr(dev([1.0]), name)


def test_functions_cupy_lacks_are_absent():
    for name in ("insert", "geomspace", "block", "vecdot"):
        assert not hasattr(xp, name), name


def test_names_come_from_the_installed_cupy_or_the_checked_in_list():
    try:
        import cupy
    except Exception:
        cupy = None
    if cupy is None:
        data = json.loads((pathlib.Path(__file__).parents[1] / "gpuprop/backend/sim/cupy_names.json").read_text())
        assert xp.names_source == f"CuPy {data['cupy_version']} (checked-in list)"
        public = set(data["names"])
    else:
        assert xp.names_source == f"CuPy {cupy.__version__} (installed)"
        public = {n for n in dir(cupy) if not n.startswith("_")}
    offered = {n for n in vars(xp) if not n.startswith("_")} - {"names_source", "host_syncs", "DEVICE_COUNT"}
    assert offered <= public, sorted(offered - public)
    assert {"matmul", "ElementwiseKernel", "asnumpy", "random", "cuda"} <= offered


# --- the backend -----------------------------------------------------------------------------------------------
def test_gpu_sim_is_the_cupy_backend_on_the_stand_in():
    from gpuprop.backend import CupyBackend

    assert type(SIM) is CupyBackend and SIM.is_gpu and SIM.name == "gpu-sim" and SIM.device_id == 0
    assert get_backend("gpu-sim:0") is SIM and get_backend("gpu-sim:1").device_id == 1
    assert SIM.describe().startswith("gpu-sim:0 (CuPy stand-in on the CPU")
    assert "gpu-sim" not in get_backend("cpu").spec


@pytest.mark.parametrize("spec", ["gpu-sim:2", "gpu-sim:x"])
def test_bad_simulated_devices(spec):
    with pytest.raises(BackendError, match="gpu-sim"):
        get_backend(spec)


def test_checked_in_list_is_what_that_cupy_says():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed; the list is compared where it is")
    from gpuprop.backend.sim import names

    data = json.loads(names.DATA.read_text(encoding="utf-8"))
    if data["cupy_version"] != cupy.__version__:
        pytest.skip(f"the list is from CuPy {data['cupy_version']}, this is {cupy.__version__}: "
                    "python -m gpuprop.backend.sim.names refreshes it")
    assert names.collect(cupy) == data
