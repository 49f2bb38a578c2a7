"""The backend's ops (fused CUDA kernels on a GPU) equal the reference ``Ops``, and both equal the formula.

On the CPU ``backend.ops`` *is* the reference, so these tests pin it to a
direct NumPy formula on the host; on a GPU they also prove that every override
in ``backend.kernels.CupyOps`` computes the reference function.
"""

import copy

import numpy as np
import pytest

from gpuprop.ops import Ops
from gpuprop.optimizers import Adam, AdamW

DTYPES = ["float32", "float64"]
# backend vs reference: the same arithmetic, at most a few roundings apart
RTOL = {"float32": 1e-6, "float64": 1e-12}
# reference vs a float64 host formula: float32 rounding, and (1 + tanh) cancels for sigmoid of large −x
FORMULA_TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-15)}


def _inputs(dtype, shape=(64, 33), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.flat[:5] = [0.0, -0.0, 1e-30, -20.0, 20.0]  # edges: the relu boundary and saturation
    dy = rng.standard_normal(shape).astype(dtype)
    return x, dy


def _both(backend, name, *args):
    """(backend's result, reference result) on copies, since backward ops may overwrite their first argument."""
    ref = Ops(backend.xp)
    out = getattr(backend.ops, name)(*[backend.asarray(a.copy()) for a in args])
    want = getattr(ref, name)(*[backend.asarray(a.copy()) for a in args])
    out, want = backend.to_host(out), backend.to_host(want)
    assert out.dtype == want.dtype == args[0].dtype and out.shape == want.shape
    return out, want


def _assert_agree(out, want, dtype, scale, what=""):
    """|out − want| <= rtol·(|want| + scale): relative, except where the result cancels to near 0.

    ``scale`` is the size of the terms the result is made from (|dy| for a
    backward): 1 − y² or β·m + (1 − β)·g can cancel, and there one rounding
    more or less (CUDA contracts a·b + c into one fused multiply-add) is a
    large relative but a negligible absolute difference.
    """
    rtol = RTOL[dtype]
    np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * float(scale), err_msg=what)


def _sigmoid64(x):
    x = x.astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -x))  # 1/(1 + e⁻ˣ) without overflow


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = np.maximum(x, 0)
    out, want = _both(backend, "relu_backward", dy, y)
    np.testing.assert_array_equal(out, want)  # a select: no rounding at all
    np.testing.assert_array_equal(out, dy * (y > 0))
    assert (out[y == 0] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid(backend, dtype):
    x, _ = _inputs(dtype)
    out, want = _both(backend, "sigmoid", x)
    _assert_agree(out, want, dtype, 1.0)
    np.testing.assert_allclose(out, _sigmoid64(x), **FORMULA_TOL[dtype])
    assert ((out >= 0) & (out <= 1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = _sigmoid64(x).astype(dtype)
    out, want = _both(backend, "sigmoid_backward", dy, y)
    _assert_agree(out, want, dtype, np.abs(dy).max())
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(out, dy * y64 * (1 - y64), **FORMULA_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = np.tanh(x)
    out, want = _both(backend, "tanh_backward", dy, y)
    _assert_agree(out, want, dtype, np.abs(dy).max())
    y64 = y.astype(np.float64)
    np.testing.assert_allclose(out, dy * (1 - y64 * y64), **FORMULA_TOL[dtype])


def _textbook_adam(p, g, m, v, t, lr, b1, b2, eps, wd, decoupled):
    """Adam as printed (Kingma & Ba, with torch's ε after √v̂); AdamW decays p by (1 − ηλ) first."""
    p, g, m, v = (a.astype(np.float64) for a in (p, g, m, v))
    if decoupled:
        p = p * (1 - lr * wd)
    elif wd:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


# Two keep Keras' default β₂ = 0.999: a kernel that forms 1 − β₂ in float32 from a rounded β₂
# gets 0.00099998713 instead of 0.001 (1.3e-5 off), which the float32 comparison must catch.
ADAMS = {
    "adam": lambda: Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
    "adam_l2": lambda: Adam(0.01, epsilon=1e-7, weight_decay=0.1),
    "adamw": lambda: AdamW(0.01, weight_decay=0.1, epsilon=1e-7),
}


def _run_adam(opt, backend, p, gs, slots, start):
    """Adam.update_step for len(gs) steps from ``slots`` (m, v) at step count ``start``; host (p, m, v)."""
    params = [backend.asarray(p.copy())]
    opt.build(params, backend)
    opt.set_variables(slots)
    opt.iterations = start
    for g in gs:
        opt.apply_gradients(params, [backend.asarray(g)])
    return [backend.to_host(a).copy() for a in (params[0], *opt.variables())]


@pytest.mark.parametrize("start", [0, 5], ids=["fresh", "midrun"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(ADAMS))
def test_adam_update(backend, dtype, kind, start):
    rng = np.random.default_rng(1)
    shape = (257, 3)  # not a multiple of any block size
    p = rng.standard_normal(shape).astype(dtype)
    if start:  # mid-run: bias corrections are neither tiny nor 1
        slots = [(rng.standard_normal(shape) * 0.1).astype(dtype), (rng.random(shape) * 0.1).astype(dtype)]
    else:
        slots = [np.zeros(shape, dtype), np.zeros(shape, dtype)]
    gs = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]

    # What this backend runs: CupyOps.adam_update on a GPU, the xp expression on the CPU.
    got = _run_adam(ADAMS[kind](), backend, p, gs, slots, start)
    # The reference: the same optimizer on the same device with the plain Ops (no fused kernel).
    ref_backend = copy.copy(backend)
    ref_backend.ops = Ops(backend.xp)
    assert not hasattr(ref_backend.ops, "adam_update")
    want = _run_adam(ADAMS[kind](), ref_backend, p, gs, slots, start)
    for name, a, b in zip("pmv", got, want):
        assert a.dtype == np.dtype(dtype)
        _assert_agree(a, b, dtype, np.abs(b).max(), name)

    opt = ADAMS[kind]()
    hp, (hm, hv) = p, slots
    for t, g in enumerate(gs, start=start + 1):
        hp, hm, hv = _textbook_adam(hp, g, hm, hv, t, opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon,
                                    opt.weight_decay, opt.decoupled)
    for a, b in zip(got, (hp, hm, hv)):
        np.testing.assert_allclose(a, b, **FORMULA_TOL[dtype])


def test_gpu_backend_really_fuses(backend):
    """Guard for the tests above: on a GPU they must exercise the CUDA kernels, not the reference."""
    overrides = ["relu_backward", "sigmoid", "sigmoid_backward", "tanh_backward", "adam_update"]
    if backend.is_gpu:
        for name in overrides:
            assert name in type(backend.ops).__dict__, name
    else:
        assert type(backend.ops) is Ops
