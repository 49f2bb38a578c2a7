"""Φ(x), the standard normal CDF, in a few array passes: what exact GELU needs, as NumPy has no erf.

Φ(x) = ½(1 + erf(x/√2)). Only the lower tail is approximated, and in a form whose
relative error is uniform from x = 0 to where it underflows:

    Φ(−a) = t · R(t) · e^(−a²/2),   t = 1/(1 + p·a),   a = |x| ≥ 0

with R a polynomial in t; Φ(x) = 1 − Φ(−x) for x ≥ 0. R(t) = Φ(−a)·e^(a²/2)/t is
smooth on 0 < t ≤ 1 (½ at a = 0, 1/(p√(2π)) as a → ∞), so a low degree suffices
(the substitution of Abramowitz & Stegun 7.1.26, with coefficients fitted anew).
docs/fit_normal_cdf.py derives the coefficients (interpolation at Chebyshev nodes
in 50-digit arithmetic) and measures the rounded polynomial against 50-digit R:

    float32:               degree 9,  p = 0.3/√2, max relative error 2.7e-8  (< 2⁻²⁴, half float32's ε)
    float64:               degree 21, p = 0.3/√2, max relative error 1.1e-16 (≤ 2⁻⁵³, half float64's ε)

for |x| up to 14.5 and 38.7, past which e^(−x²/2) underflows in the dtype.
tests/test_gelu.py holds the result to math.erf/math.erfc on a dense grid. (Ops computes float16
in float32: e^(−x²/2) leaves float16's range by |x| = 4.5.)
e^(−x²/2) is also what φ(x) = e^(−x²/2)/√(2π) needs, so GELU's backward
computes it once for both.
"""

import math

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# (p, coefficients of R from the highest power of t down), from docs/fit_normal_cdf.py
_FIT32 = (0.21213203435596426, (
    0.007063625280811966, -0.10400085660800382, 0.3374598640336786, -0.3861712333560022, 0.3857172777711262,
    -0.10973510472699968, 0.13001786391300243, 0.06908391155915365, 0.08600629088289956, 0.08455835805237831))
_FIT64 = (0.21213203435596426, (
    -0.0003082327207054513, 0.0024613506907469203, -0.00619149757721138, -0.006065096830796756,
    0.07930262932683754, -0.24184127076919137, 0.4330157565157918, -0.5333677569711904, 0.4909184680203248,
    -0.3515385649890005, 0.19330161645628385, -0.08920013439753145, 0.03440868121469164, 0.0017262723495404964,
    0.023916308104061527, 0.03472396989415014, 0.04916923931537093, 0.06228721132871914, 0.0732040411341422,
    0.08082013407030478, 0.08462843831435447, 0.08462843752030708))
_SCALARS = {}  # dtype -> (p, coefficients) as that dtype's scalars: NumPy converts a Python float on every call


def _fit(dtype):
    got = _SCALARS.get(dtype)
    if got is None:
        p, coeffs = _FIT64 if dtype.itemsize >= 8 else _FIT32
        cast = dtype.type
        got = _SCALARS[dtype] = (cast(p), tuple(cast(c) for c in coeffs), cast(-0.5), cast(INV_SQRT_2PI))
    return got


def gauss(xp, x):
    """e^(−x²/2), a new array."""
    e = xp.multiply(x, x)
    e *= _fit(x.dtype)[2]
    return xp.exp(e, out=e)


def lower_tail(xp, a, e):
    """Φ(−a) for a = |x| ≥ 0, given e = e^(−a²/2) (a new array; a and e are left as they are)."""
    p, coeffs, _, _ = _fit(a.dtype)
    t = xp.multiply(a, p)
    t += 1
    xp.reciprocal(t, out=t)
    r = t * coeffs[0]
    r += coeffs[1]
    for c in coeffs[2:]:  # Horner: two passes a degree
        r *= t
        r += c
    r *= t
    r *= e
    return r


def cdf(xp, x, e=None):
    """Φ(x) = ½(1 + erf(x/√2)), given e = e^(−x²/2) or computing it.

    Φ(x) = |[x ≥ 0] − lo| with lo = Φ(−|x|): lo itself on the left (no 1 − (1 − lo) cancellation), 1 − lo on
    the right, each rounded once (so Φ is monotone to the rounding of lo); arithmetic rather than ``where``,
    whose branch on random signs costs as much as the whole polynomial.
    """
    lo = lower_tail(xp, xp.abs(x), gauss(xp, x) if e is None else e)
    xp.subtract(x >= 0, lo, out=lo)
    return xp.abs(lo, out=lo)


def pdf(xp, x):
    """φ(x) = e^(−x²/2)/√(2π)."""
    e = gauss(xp, x)
    e *= _fit(x.dtype)[3]
    return e
