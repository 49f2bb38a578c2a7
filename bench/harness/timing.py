"""Timing training steps: warm-up excluded, device-synchronised, median of repeats.

``measure(step, sync)`` runs ``warmup`` untimed steps (they pay for jit
compilation, CuPy kernel compilation, cuBLAS/cuDNN heuristics and first-touch
page faults), then one timed step to size a repeat: each repeat runs K steps,
K chosen so that a repeat lasts at least ``min_repeat_s`` (short repeats are
dominated by timer and launch jitter). A repeat is timed as
``sync(); t0; K × step(); sync(); t1`` so queued device work is inside the
window; the figure is the median over ``repeats`` of (t1 − t0)/K.
"""

import math
import time

from .stats import summarize

FULL = {"repeats": 7, "warmup": 3, "min_repeat_s": 0.25, "max_steps": 2000}
QUICK = {"repeats": 3, "warmup": 2, "min_repeat_s": 0.05, "max_steps": 200}


def settings(quick=False, repeats=None):
    """Timing settings for a full or ``--quick`` run; ``repeats`` overrides the count."""
    s = dict(QUICK if quick else FULL)
    if repeats is not None:
        s["repeats"] = max(1, int(repeats))
    return s


def measure(step, sync, repeats=7, warmup=3, min_repeat_s=0.25, max_steps=2000, clock=time.perf_counter):
    """Median milliseconds per ``step()``; see the module docstring for the method.

    Returns the ``stats.summarize`` dict plus ``steps_per_repeat``, ``repeats``
    and ``warmup``.
    """
    for _ in range(warmup):
        step()
    sync()
    t0 = clock()
    step()
    sync()
    one = clock() - t0
    k = steps_for(one, min_repeat_s, max_steps)
    per_step = []
    for _ in range(repeats):
        sync()
        t0 = clock()
        for _ in range(k):
            step()
        sync()
        per_step.append((clock() - t0) / k)
    out = summarize(per_step)
    out.update(steps_per_repeat=k, repeats=repeats, warmup=warmup)
    return out


def steps_for(one_step_s, min_repeat_s, max_steps):
    """Steps per repeat so a repeat lasts ≥ ``min_repeat_s``, between 1 and ``max_steps``."""
    if one_step_s <= 0:
        return max_steps
    return int(min(max_steps, max(1, math.ceil(min_repeat_s / one_step_s))))
