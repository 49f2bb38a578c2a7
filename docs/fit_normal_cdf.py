"""Derive the coefficients of ``gpuprop/normal_cdf.py`` and measure their approximation error (needs mpmath).

The lower tail of the standard normal is written Φ(−a) = t·R(t)·e^(−a²/2) with
t = 1/(1 + p·a), a = |x|. R(t) = Φ(−a)·e^(a²/2)/t is smooth on 0 < t ≤ 1
(R(1) = ½ at a = 0, R → 1/(p√(2π)) as a → ∞), so a polynomial in t fits it well
on [t(a_max), 1], where a_max is where e^(−a²/2) underflows in the dtype. The
polynomial interpolates R at Chebyshev nodes (mpmath.chebyfit, 50 digits), its
coefficients are rounded to float64, and the rounded polynomial is compared with
R in 50-digit arithmetic on a dense grid in a. Run:

    /work/venv/bin/python docs/fit_normal_cdf.py
"""

import mpmath as mp

mp.mp.dps = 50
# dtype -> (p, number of coefficients, a_max): p and the degree were chosen by trying p in 0.2..0.35 and degrees
# 8..23, keeping the cheapest with an error far below the dtype's rounding and Σ|c_k| ≈ 1 (no cancellation).
FITS = {"float32": (0.3, 10, 14.5), "float64": (0.3, 22, 38.7)}


def fit(p, n, a_max):
    p = mp.mpf(float(mp.mpf(p) / mp.sqrt(2)))  # in a = |x| rather than |x|/√2, and as the code holds it (float64)

    def r(t):
        a = (1 / t - 1) / p
        return mp.ncdf(-a) * mp.exp(a * a / 2) / t

    coeffs = [float(c) for c in mp.chebyfit(r, [1 / (1 + p * a_max), 1], n)]  # highest power first
    worst = mp.mpf(0)
    for i in range(40001):
        a = mp.mpf(a_max) * i / 40000
        t = 1 / (1 + p * a)
        approx = mp.polyval([mp.mpf(c) for c in coeffs], t)
        worst = max(worst, abs(approx / r(t) - 1))
    return float(p), coeffs, float(worst)


if __name__ == "__main__":
    for dtype, (p, n, a_max) in FITS.items():
        pp, coeffs, worst = fit(p, n, a_max)
        print(f"{dtype}: p = {pp!r}, |a| <= {a_max}, max relative error of R = {worst:.3g}")
        print("    (" + ",\n     ".join(repr(c) for c in coeffs) + ")")
