"""Exact GELU, y = x·Φ(x) = ½x(1 + erf(x/√2)) as Keras 3's 'gelu', and the Φ it is computed from.

NumPy has no erf, so the CPU takes Φ from ``gpuprop.normal_cdf`` (a polynomial in
t = 1/(1 + p|x|) times e^(−x²/2), fitted by docs/fit_normal_cdf.py). The oracles
are math.erf / math.erfc (float64), mpmath's 50-digit normal CDF where it is
installed, PyTorch's exact F.gelu with autograd, and Keras' own activation.
"""

import math

import numpy as np
import pytest

from gpuprop import activations, layers, normal_cdf

TINY = np.concatenate([np.geomspace(1e-300, 1e-2, 300), [0.0]])
# Φ(x) = ½(1 + erf(x/√2)) loses Φ's relative precision to the cancellation 1 + erf for x < 0, ½·erfc(−x/√2) does not:
# each where it is accurate. Both carry the rounding of x/√2, whose effect grows as x² (Φ's condition number).
_ORACLE = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))) if v > -1 else 0.5 * math.erfc(-v / math.sqrt(2)))


def _grid():
    return np.concatenate([np.linspace(-40, 10, 100_001), TINY, -TINY])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_cdf_matches_math_erf_on_a_dense_grid(backend, dtype):
    """|Φ − Φ_math| ≤ 8(1 + x²)·ε·Φ: a few units of rounding, relative, from x = 10 down to where Φ underflows
    (x ≈ −37.5 in float64, −13.2 in float32), and at tiny |x| (Φ = ½ to the last bit)."""
    x = _grid().astype(dtype)
    x64 = x.astype(np.float64)
    want = _ORACLE(x64)
    got = backend.to_host(normal_cdf.cdf(backend.xp, backend.asarray(x))).astype(np.float64)
    eps, tiny = float(np.finfo(dtype).eps), float(np.finfo(dtype).tiny)
    bound = 8 * eps * (1 + x64 * x64) * want + tiny  # tiny: values the dtype holds only as subnormals or 0
    worst = np.argmax(np.abs(got - want) - bound)
    assert (np.abs(got - want) <= bound).all(), f"Φ({x64[worst]!r}) = {got[worst]!r}, want {want[worst]!r}"
    assert (got >= 0).all() and (got <= 1).all() and (np.diff(got[:100_001]) >= 0).all()  # a CDF: monotone


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fitted_polynomial_error_is_below_the_dtype_resolution(dtype):
    """The claim in normal_cdf's docstring, checked with mpmath's 50-digit Φ: R(t) = Φ(−a)·e^(a²/2)/t, as the
    rounded coefficients give it, is within 3e-8 (float32, under 2⁻²⁴) or 1.5e-16 (float64) of the true one."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    p, coeffs = normal_cdf._FIT32 if dtype == "float32" else normal_cdf._FIT64
    a_max, limit = (14.5, 3e-8) if dtype == "float32" else (38.7, 1.5e-16)
    worst = 0
    for a in np.linspace(0, a_max, 1500):
        t = 1 / (1 + mp.mpf(p) * mp.mpf(a))
        r = mp.ncdf(-mp.mpf(a)) * mp.exp(mp.mpf(a) ** 2 / 2) / t
        worst = max(worst, abs(mp.polyval([mp.mpf(c) for c in coeffs], t) / r - 1))
    assert worst < limit, float(worst)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_layer_forward_and_backward_match_torch_exact_gelu(backend, dtype):
    """The 'gelu' layer against torch's exact F.gelu and autograd, in float64 on the same inputs, both ways."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(300) * 4, [0.0, -0.0, 1e-30, -1e-30, -9.0, 9.0, -30.0, 30.0]])
    x = x.astype(dtype).reshape(2, -1)
    dy = rng.standard_normal(x.shape).astype(dtype)
    layer = layers.Activation("gelu")
    layer.build(x.shape[1:], backend, rng)
    y = backend.to_host(layer(backend.asarray(x), training=True)).copy()
    dx = backend.to_host(layer.backward(backend.asarray(dy.copy())))
    inference = backend.to_host(layer(backend.asarray(x), training=False))
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    ty = torch.nn.functional.gelu(tx)
    ty.backward(torch.tensor(dy.astype(np.float64)))
    x64 = x.astype(np.float64)
    rtol = 8 * float(np.finfo(dtype).eps) * (1 + x64 * x64)
    # torch's own float64 rounding: it forms 1 + erf(x/√2), absolute to ε₆₄ (Φ(−9) comes out 0 there, not 1e-19)
    atol = float(np.finfo(dtype).tiny) + 4 * 2.0**-52 * (1 + np.abs(x64))
    # dy/dx = Φ + x·φ cancels near x = −0.75: its error is relative to the sum of its terms' magnitudes
    terms = np.abs(dy) * (_ORACLE(x64) + np.abs(x64) * np.exp(-x64 * x64 / 2) / math.sqrt(2 * math.pi))
    for ours, theirs, slope in ((y, ty, False), (inference, ty, False), (dx, tx.grad, True)):
        theirs = theirs.detach().numpy()
        assert ours.dtype == np.dtype(dtype)
        err = np.abs(ours - theirs)
        bound = rtol * terms + atol * np.abs(dy) if slope else rtol * np.abs(theirs) + atol
        worst = np.argmax(err - bound)
        assert (err <= bound).all(), f"x = {x.flat[worst]!r}: {ours.flat[worst]!r} vs torch {theirs.flat[worst]!r}"


def test_float16_gelu_is_float32_gelu_rounded(backend):
    """float16 goes through float32 (e^(−x²/2) leaves float16's range by |x| = 4.5): within float16's rounding."""
    x = np.linspace(-12, 8, 2001).astype("float16")
    x64 = x.astype(np.float64)
    cdf = _ORACLE(x64)
    slope = cdf + x64 * np.exp(-x64 * x64 / 2) / math.sqrt(2 * math.pi)
    y, s = (backend.to_host(a) for a in backend.ops.gelu_with_slope(backend.asarray(x)))
    assert y.dtype == s.dtype == np.float16
    tiny = float(np.finfo("float16").smallest_subnormal)
    for got, want in ((y, x64 * cdf), (backend.to_host(backend.ops.gelu(backend.asarray(x))), x64 * cdf), (s, slope)):
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=2 * 2.0**-11, atol=tiny)


def test_approximate_gelu_is_the_tanh_form_as_torch_has_it(backend):
    """activations.gelu(approximate=True) is ½x(1 + tanh(√(2/π)(x + 0.044715x³))), torch's approximate='tanh',
    and differs from the exact form by at most ~4.7e-4 (the tanh form is not what 'gelu' layers compute)."""
    torch = pytest.importorskip("torch")
    x = np.linspace(-8, 8, 4001)
    approx = backend.to_host(activations.gelu(backend.asarray(x), approximate=True))
    exact = backend.to_host(activations.gelu(backend.asarray(x)))
    np.testing.assert_allclose(approx, torch.nn.functional.gelu(torch.tensor(x), approximate="tanh").numpy(),
                               rtol=1e-12, atol=1e-15)
    # torch forms 1 + erf(x/√2): absolute to ε₆₄·|x| in the left tail, where ours keeps its relative precision
    np.testing.assert_allclose(exact, torch.nn.functional.gelu(torch.tensor(x)).numpy(), rtol=1e-13, atol=4e-15)
    assert 4e-4 < np.abs(approx - exact).max() < 5e-4


def test_exact_gelu_matches_keras_activation_and_layer():
    """Keras 3's 'gelu' (keras.activations.gelu, approximate=False by default) on float32 inputs."""
    from tests.keras_oracle import keras

    k = keras()
    x = np.concatenate([np.linspace(-10, 10, 2001), -TINY, TINY]).astype("float32")
    ours = activations.gelu(x)
    for theirs in (k.activations.gelu(x), k.layers.Activation("gelu")(x)):
        theirs = k.ops.convert_to_numpy(theirs)
        # Keras (torch backend) forms 1 + erf(x/√2) in float32: absolute to ε₃₂·|x| left of 0, where ours is relative
        bound = 2e-6 * np.abs(theirs) + 2 * np.finfo("float32").eps * np.abs(x) + 1e-30
        assert (np.abs(ours - theirs) <= bound).all()
        assert np.abs(ours - theirs)[np.abs(x) > 1].max() > 0  # not the same code
