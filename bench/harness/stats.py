"""Summary statistics of repeated timings, in plain Python (no array module needed).

A benchmark figure here is the *median* over repeats: robust to the one repeat
that a background process or a page fault slowed down. The spread beside it,
(max − min)/median, says how much to trust it.
"""

import math


def median(values):
    """Middle value (mean of the two middle ones for an even count)."""
    return quantile(values, 0.5)


def quantile(values, q):
    """Linear-interpolation quantile, as ``numpy.quantile``'s default: position q·(n−1) in sorted order."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def relative_spread(values):
    """(max − min) / median: 0.05 means the repeats agree within 5 % of the median."""
    m = median(values)
    return (max(values) - min(values)) / m if m > 0 else float("inf")


def summarize(seconds_per_step):
    """Milliseconds-per-step summary of per-repeat times (each already divided by its step count)."""
    return summarize_ms([1000.0 * s for s in seconds_per_step])


def summarize_ms(ms):
    """``summarize`` of per-repeat figures already in milliseconds per step."""
    ms = [float(v) for v in ms]
    return {
        "ms_per_step": median(ms),
        "ms_min": min(ms),
        "ms_max": max(ms),
        "ms_q1": quantile(ms, 0.25),
        "ms_q3": quantile(ms, 0.75),
        "spread": relative_spread(ms),
        "repeat_ms": ms,
    }


def ratio(numerator, denominator):
    """numerator / denominator, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def geomean(values):
    """Geometric mean of positive values (the fair average of speed ratios); None for none."""
    vals = [float(v) for v in values if v is not None and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))
