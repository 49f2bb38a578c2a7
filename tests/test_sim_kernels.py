"""gpuprop's fused CUDA kernels, their C++ compiled by the host compiler, against float64 textbook formulas.

The gpu-sim stand-in sets each ``ElementwiseKernel``'s operation string in a C++
loop laid out as CuPy lays out the CUDA one (``T`` bound to the arrays' dtype)
and compiles it with g++, so what is checked here is the kernels' own
arithmetic. The oracle is the formula as printed, in float64 NumPy on the host.
Without a C++ compiler these skip, saying so, unless GPUPROP_REQUIRE_CXX is set
(CI installs g++ and sets it), which turns the skip into a failure.
"""

import math

import numpy as np
import pytest

from gpuprop.backend import get_backend
from gpuprop.backend.kernels import KERNELS, elementwise_kernels
from tests.conftest import require_cxx

SIM = get_backend("gpu-sim")
xp = SIM.xp
# atol: 0.5·(1 + tanh(x/2)) cancels for large −x (sigmoid(−20) ≈ 2e-9 carries 1e-17 absolute error)
TOL = {"float16": dict(rtol=1e-2, atol=2e-3), "float32": dict(rtol=2e-6, atol=1e-7),
       "float64": dict(rtol=1e-14, atol=1e-16)}
DTYPES = ["float16", "float32", "float64"]


@pytest.fixture(autouse=True)
def _compiler():
    require_cxx()


def _data(dtype, shape=(37, 5), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.flat[:4] = [0.0, -0.0, 20.0, -20.0]
    return x, rng.standard_normal(shape).astype(dtype)


def _run(name, *host):
    k = elementwise_kernels(xp)[name]
    args = [SIM.asarray(h) if isinstance(h, np.ndarray) else h for h in host]
    return k, args


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward(dtype):
    y, dy = _data(dtype)
    y = np.maximum(y, 0)
    k, (yd, dyd) = _run("gpuprop_relu_backward", y, dy)
    out = k(yd, dyd)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.get(), np.where(y > 0, dy, 0).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid(dtype):
    x, _ = _data(dtype)
    k, (xd,) = _run("gpuprop_sigmoid", x)
    want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(k(xd).get(), want, **TOL[dtype])
    out = xp.zeros(x.shape, dtype=dtype)  # with an output given it is written in place and returned
    assert k(xd, out) is out
    np.testing.assert_allclose(out.get(), want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_backward(dtype):
    x, dy = _data(dtype)
    y = (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(dtype)
    k, (yd, dyd) = _run("gpuprop_sigmoid_backward", y, dy)
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(k(yd, dyd).get(), dy * y64 * (1 - y64), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_backward(dtype):
    x, dy = _data(dtype)
    y = np.tanh(x)
    k, (yd, dyd) = _run("gpuprop_tanh_backward", y, dy)
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(k(yd, dyd).get(), dy * (1 - y64 * y64), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update_is_adam(dtype):
    """m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p·decay − lr_t·m/(√v + ε_t), all three in place."""
    rng = np.random.default_rng(3)
    p, g = (rng.standard_normal((9, 4)).astype(dtype) for _ in range(2))
    m, v = (rng.standard_normal((9, 4)) * 0.1).astype(dtype), (rng.random((9, 4)) * 0.1).astype(dtype)
    lr_t, b1, b2, eps_t, decay = 0.01, 0.9, 0.999, 1e-7, 0.999
    t = np.dtype(dtype).type
    pd, gd, md, vd = (SIM.asarray(a) for a in (p, g, m, v))
    elementwise_kernels(xp)["gpuprop_adam_update"](gd, t(lr_t), t(b1), t(1 - b1), t(b2), t(1 - b2), t(eps_t),
                                                    t(decay), pd, md, vd)
    p64, g64, m64, v64 = (a.astype(np.float64) for a in (p, g, m, v))
    m_want = b1 * m64 + (1 - b1) * g64
    v_want = b2 * v64 + (1 - b2) * g64 * g64
    p_want = p64 * decay - lr_t * m_want / (np.sqrt(v_want) + eps_t)
    tol = dict(TOL, float32=dict(rtol=1e-5, atol=1e-6))[dtype]
    for got, want in ((md, m_want), (vd, v_want), (pd, p_want)):
        np.testing.assert_allclose(got.get(), want, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])  # erfc has no _Float16 overload in host C++
def test_gelu_is_exact_gelu(dtype):
    """y = x·Φ(x) and s = Φ(x) + x·φ(x), Φ(x) = ½·erfc(−x/√2), φ(x) = e^(−x²/2)/√(2π), against math.erfc."""
    x, _ = _data(dtype)
    x64 = x.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x64.ravel()]).reshape(x.shape)
    slope = cdf + x64 * np.exp(-x64 * x64 / 2) / math.sqrt(2 * math.pi)
    k, (xd,) = _run("gpuprop_gelu", x)
    np.testing.assert_allclose(k(xd).get(), x64 * cdf, **TOL[dtype])
    k, (xd,) = _run("gpuprop_gelu_with_slope", x)
    y, s = k(xd)
    assert y.dtype == s.dtype == dtype
    np.testing.assert_allclose(y.get(), x64 * cdf, **TOL[dtype])
    np.testing.assert_allclose(s.get(), slope, **TOL[dtype])


def test_every_kernel_is_tested_here():
    tested = {"gpuprop_relu_backward", "gpuprop_sigmoid", "gpuprop_sigmoid_backward", "gpuprop_tanh_backward",
              "gpuprop_adam_update", "gpuprop_gelu", "gpuprop_gelu_with_slope"}
    assert set(KERNELS) == tested


def test_a_typo_in_the_operation_fails_at_compile_with_the_compiler_error():
    k = xp.ElementwiseKernel("T x", "T y", "y = tahn(x)", "gpuprop_typo")
    with pytest.raises(xp.cuda.compiler.CompileException) as info:
        k(SIM.asarray(np.ones(3)))
    first = str(info.value).splitlines()[0]
    assert "gpuprop_typo" in first and "tahn" in first


def test_kernel_arguments_follow_cupy_rules():
    k = xp.ElementwiseKernel("T x, T s", "T y", "y = x * s", "gpuprop_scale_test")
    x = SIM.asarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(k(x, 2.0).get(), np.arange(6.0).reshape(2, 3) * 2)  # Python scalar by value
    row = SIM.asarray(np.array([1.0, 10.0, 100.0]))
    np.testing.assert_array_equal(k(x, row).get(), np.arange(6.0).reshape(2, 3) * [1, 10, 100])  # broadcast
    with pytest.raises(TypeError):
        k(x, x.astype("float32"))  # T cannot be float64 and float32 at once
    with pytest.raises(TypeError):
        k(x, np.ones(3))  # a host array is not a kernel argument
    with pytest.raises(TypeError):
        k(x)  # wrong number of arguments


def test_cuda_math_that_host_cpp_spells_differently_compiles():
    k = xp.ElementwiseKernel("T x", "T y", "y = max(x, (T)0) + min(x, (T)0) * rsqrt((T)4)", "gpuprop_math_test")
    x = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(k(SIM.asarray(x)).get(), np.maximum(x, 0) + np.minimum(x, 0) * 0.5)
