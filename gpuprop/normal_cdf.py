"""Φ(x), the standard normal CDF, in a few array passes: what exact GELU needs, as NumPy has no erf.

Φ(x) = ½(1 + erf(x/√2)). Only the lower tail is approximated, and in a form whose
relative error is uniform from x = 0 to where it underflows:

    Φ(−a) = t · R(t) · e^(−a²/2),   t = 1/(1 + p·a),   a = |x| ≥ 0

with R a polynomial in t; Φ(x) = 1 − Φ(−x) for x ≥ 0. R(t) = Φ(−a)·e^(a²/2)/t is
smooth on 0 < t ≤ 1 (½ at a = 0, 1/(p√(2π)) as a → ∞), so a low degree suffices
(the substitution of Abramowitz & Stegun 7.1.26, with coefficients fitted anew).
docs/fit_normal_cdf.py derives the coefficients (interpolation at Chebyshev nodes
in 50-digit arithmetic) and measures the rounded polynomial against 50-digit R:

    float32 (and float16): degree 9, p = 0.3/√2, max relative error 2.7e-8 (< 2⁻²⁴)
    float64:              degree 20, p = 0.25/√2, max relative error 2.5e-16

for |x| up to 14.5 and 38.7, past which e^(−x²/2) underflows in the dtype.
tests/test_gelu.py holds the result to math.erf/math.erfc on a dense grid.
e^(−x²/2) is also what φ(x) = e^(−x²/2)/√(2π) needs, so GELU's backward
computes it once for both.
"""

import math

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# (p, coefficients of R from the highest power of t down), from docs/fit_normal_cdf.py
_FIT32 = (0.21213203435596426, (
    0.0070636252808119505, -0.10400085660800375, 0.3374598640336785, -0.3861712333560021, 0.38571727777112613,
    -0.10973510472699967, 0.13001786391300243, 0.06908391155915365, 0.08600629088289956, 0.08455835805237831))
_FIT64 = (0.1767766952966369, (
    -0.0008465443009772302, 0.00794842712409858, -0.03185514644077022, 0.06907492741439612, -0.08186523828134387,
    0.034323254381479235, 0.05348258269726456, -0.12809746449693313, 0.14431162876964698, -0.10667283315772684,
    0.07171288211366363, -0.01357934776956019, 0.03215859470795624, 0.028581955329171457, 0.04110048871488168,
    0.049424799650278066, 0.05751868636096621, 0.06391105665603627, 0.06831989704634622, 0.07052369549498137,
    0.07052369798614483))
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

    Φ(x) = lo + [x ≥ 0]·(1 − 2·lo) with lo = Φ(−|x|): exact lo on the left (no 1 − (1 − lo) cancellation),
    and arithmetic rather than ``where``, whose branch on random signs costs as much as the whole polynomial.
    """
    lo = lower_tail(xp, xp.abs(x), gauss(xp, x) if e is None else e)
    right = lo * -2
    right += 1
    right *= x >= 0
    lo += right
    return lo


def pdf(xp, x):
    """φ(x) = e^(−x²/2)/√(2π)."""
    e = gauss(xp, x)
    e *= _fit(x.dtype)[3]
    return e
