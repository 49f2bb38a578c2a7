"""Every op the backend may fuse, and its reference ``Ops`` form, against a float64 formula.

Neither side is the other's oracle: the backend's op (a fused CUDA kernel in
``CupyOps`` on a GPU or on gpu-sim, the reference itself on the CPU) and the
plain ``Ops`` reference are each held to the same formula computed in float64
on the host from the same inputs. The tolerance is a few units of the dtype's
rounding (ε) times the *scale* of the formula, the sum of the magnitudes of
its terms (the forward error bound of evaluating it): a relative test would
be unfair where a result cancels to near 0 (1 − y², 1 + tanh), an absolute one
blind where values are small.
"""

import math

import numpy as np
import pytest

from gpuprop.ops import Ops
from gpuprop.optimizers import Adam, AdamW

DTYPES = ["float32", "float64"]
# Units of rounding allowed, times the formula's scale. A typo in a kernel (a wrong constant, a
# dropped term) is off by the scale itself, 10⁶ times more in float32.
ULPS = 8


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _inputs(dtype, shape=(64, 33), seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x.flat[:5] = [0.0, -0.0, 1e-30, -20.0, 20.0]  # edges: the relu boundary and saturation
    dy = rng.standard_normal(shape).astype(dtype)
    return x, dy


def _both(backend, name, *args):
    """{'backend': its op's result, 'reference': plain Ops' result}, on copies (backward ops overwrite)."""
    results = {}
    for side, ops in (("backend", backend.ops), ("reference", Ops(backend.xp))):
        out = backend.to_host(getattr(ops, name)(*[backend.asarray(a.copy()) for a in args]))
        assert out.dtype == args[0].dtype and out.shape == args[0].shape, side
        results[side] = out
    return results


def _assert_formula(results, exact, scale, dtype, ulps=ULPS):
    """|result − exact| ≤ ulps·ε·scale element-wise, for both sides, naming the side and worst element."""
    bound = ulps * _eps(dtype) * np.asarray(scale, dtype=np.float64)
    for side, out in results.items():
        err = np.abs(out.astype(np.float64) - exact)
        worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.ndim else ()
        assert (err <= bound).all(), (f"{side}: |error| {err[worst]:.3g} > {bound[worst] if bound.ndim else bound:.3g} "
                                      f"at {worst} ({ulps} ulps of the scale)")


def _sigmoid64(x):
    x = x.astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -x))  # 1/(1 + e⁻ˣ) without overflow


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = np.maximum(x, 0)
    for side, out in _both(backend, "relu_backward", dy, y).items():
        np.testing.assert_array_equal(out, np.where(y > 0, dy, 0), err_msg=side)  # a select: no rounding at all


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid(backend, dtype):
    x, _ = _inputs(dtype)
    results = _both(backend, "sigmoid", x)
    _assert_formula(results, _sigmoid64(x), 1.0, dtype)  # the terms of (1 + tanh(x/2))/2 are at most 1
    for out in results.values():
        assert ((out >= 0) & (out <= 1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = _sigmoid64(x).astype(dtype)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    _assert_formula(_both(backend, "sigmoid_backward", dy, y), dy64 * y64 * (1 - y64),
                    np.abs(dy64 * y64) * (1 + y64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_backward(backend, dtype):
    x, dy = _inputs(dtype)
    y = np.tanh(x)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    _assert_formula(_both(backend, "tanh_backward", dy, y), dy64 * (1 - y64 * y64), np.abs(dy64) * (1 + y64 * y64),
                    dtype)


def _gelu64(x):
    """(y, slope, their scales) in float64 from math.erfc: Φ(x) = ½·erfc(−x/√2), φ(x) = e^(−x²/2)/√(2π).

    Φ's condition number is x·φ(x)/Φ(x) ≈ x² in the left tail, so any float evaluation (erfc of a rounded
    x/√2 on the GPU, e^(−x²/2) of a rounded x² on the CPU) is held to its ulps of the scale times (1 + x²),
    plus the dtype's smallest normal number where the value underflows (Φ(−20) in float32).
    """
    x = x.astype(np.float64)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x.ravel()]).reshape(x.shape)
    xpdf = x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    return x * cdf, cdf + xpdf, np.abs(x) * cdf * (1 + x * x), (cdf + np.abs(xpdf)) * (1 + x * x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu(backend, dtype):
    x, _ = _inputs(dtype)
    y64, _, scale, _ = _gelu64(x)
    _assert_formula(_both(backend, "gelu", x), y64, scale + np.finfo(dtype).tiny / _eps(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_with_slope_and_backward(backend, dtype):
    """Training's forward: y and s = dy/dx = Φ(x) + x·φ(x) in one pass; the backward is dy·s."""
    x, dy = _inputs(dtype)
    y64, s64, y_scale, s_scale = _gelu64(x)
    tiny = np.finfo(dtype).tiny / _eps(dtype)
    results = {}
    for side, ops in (("backend", backend.ops), ("reference", Ops(backend.xp))):
        y, s = ops.gelu_with_slope(backend.asarray(x.copy()))
        results[side] = [backend.to_host(a) for a in (y, s)]
        assert all(r.dtype == x.dtype and r.shape == x.shape for r in results[side]), side
        dx = backend.to_host(ops.gelu_backward(backend.asarray(dy.copy()), s))
        s_host = results[side][1].astype(np.float64)
        _assert_formula({side: dx}, dy.astype(np.float64) * s_host, np.abs(dy * s_host), dtype, ulps=1)
    _assert_formula({side: r[0] for side, r in results.items()}, y64, y_scale + tiny, dtype)
    _assert_formula({side: r[1] for side, r in results.items()}, s64, s_scale + tiny, dtype)


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
    """Three steps of the fused update and of the plain-array update, each against textbook Adam in float64.

    In float32 the bound (16 ε of the scale, 1.9e-6) is what one correctly rounded
    evaluation per step achieves; β(s − x) + x, the in-place form the CPU path once
    used, is 1e-4 off on v and fails it.
    """
    import copy

    rng = np.random.default_rng(1)
    shape = (257, 3)  # not a multiple of any block size
    p = rng.standard_normal(shape).astype(dtype)
    if start:  # mid-run: bias corrections are neither tiny nor 1
        slots = [(rng.standard_normal(shape) * 0.1).astype(dtype), (rng.random(shape) * 0.1).astype(dtype)]
    else:
        slots = [np.zeros(shape, dtype), np.zeros(shape, dtype)]
    gs = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]

    opt = ADAMS[kind]()
    hp, (hm, hv) = p, slots
    for t, g in enumerate(gs, start=start + 1):
        hp, hm, hv = _textbook_adam(hp, g, hm, hv, t, opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon,
                                    opt.weight_decay, opt.decoupled)
    # p: its own rounding plus the update's; m and v: the largest value they are accumulated to.
    scales = (np.abs(hp) + np.abs(hp - p), np.abs(hm).max(), np.abs(hv).max())

    plain = copy.copy(backend)  # the same device with the plain Ops: no fused kernel
    plain.ops = Ops(backend.xp)
    assert not hasattr(plain.ops, "adam_update")
    results = {"backend": _run_adam(ADAMS[kind](), backend, p, gs, slots, start),
               "reference": _run_adam(ADAMS[kind](), plain, p, gs, slots, start)}
    for i, name in enumerate("pmv"):
        for side, got in results.items():
            assert got[i].dtype == np.dtype(dtype), (side, name)
        _assert_formula({f"{side} {name}": got[i] for side, got in results.items()},
                        (hp, hm, hv)[i], scales[i], dtype, ulps=16)


def test_gpu_backend_really_fuses(backend):
    """Guard for the tests above: on a GPU (or gpu-sim) they must exercise the CUDA kernels, not the reference."""
    overrides = ["relu_backward", "sigmoid", "sigmoid_backward", "tanh_backward", "adam_update", "gelu",
                 "gelu_with_slope"]
    if backend.is_gpu:
        for name in overrides:
            assert name in type(backend.ops).__dict__, name
    else:
        assert type(backend.ops) is Ops
