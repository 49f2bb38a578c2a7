"""The speed tricks that stay in the hot path compute what their plain forms beside them compute.

bench/tricks.py measures what each buys (paired rounds); tests/test_hot_path.py covers the bias-gradient
``sum_batch`` and the row-constants cache. Here: ``Ops.sum``/``Ops.amax``, which on NumPy are the bare
``ufunc.reduce`` and elsewhere the ndarray methods (``_sum_method``/``_max_method``, the plain form).
"""

import numpy
import pytest

from gpuprop.ops import _max_method, _sum_method


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis", [((32, 10), 0), ((32, 10), 1), ((128, 512), 0), ((7,), 0), ((3, 4, 5), 2)])
def test_sum_and_amax_equal_the_plain_methods_and_float64(backend, dtype, shape, axis):
    ops = backend.ops
    host = numpy.random.default_rng(1).standard_normal(shape).astype(dtype)
    a = backend.asarray(host)
    for fast, plain, exact in ((ops.sum, _sum_method, host.astype("float64").sum(axis=axis)),
                               (ops.amax, _max_method, host.max(axis=axis))):
        got = backend.to_host(fast(a, axis=axis))
        assert got.dtype == dtype and got.shape == exact.shape
        numpy.testing.assert_array_equal(got, backend.to_host(plain(a, axis=axis)))
        tol = 1e-5 if dtype == "float32" else 1e-12
        numpy.testing.assert_allclose(got, exact, rtol=tol, atol=10 * tol)
        out = backend.xp.empty(exact.shape, dtype=dtype)
        fast(a, axis=axis, out=out)
        numpy.testing.assert_array_equal(backend.to_host(out), got)


def test_numpy_takes_the_bare_reduce():
    from gpuprop import get_backend

    ops = get_backend("cpu").ops
    assert ops.sum == numpy.add.reduce and ops.amax == numpy.maximum.reduce
