"""Timing training steps: the installed bench's method, with the harness's fuller summary.

``measure`` is ``gpuprop.bench.run.measure`` (untimed warm-up, one step to
size a repeat of K steps lasting ≥ ``min_repeat_s``, each repeat
``sync; t0; K × step; sync; t1``, median of (t1 − t0)/K), so a harness
figure is timed exactly as a ``gpuprop bench`` figure is; the harness adds
the quartiles, min and max of the repeats (``stats.summarize_ms``). The
FULL and QUICK settings are the package's too.
"""

from gpuprop.bench.run import FULL, QUICK, steps_for  # noqa: F401 (re-exported)
from gpuprop.bench.run import measure as _measure

from .stats import summarize_ms


def settings(quick=False, repeats=None):
    """Timing settings for a full or ``--quick`` run; ``repeats`` overrides the count."""
    s = dict(QUICK if quick else FULL)
    if repeats is not None:
        s["repeats"] = max(1, int(repeats))
    return s


def measure(step, sync, **timing):
    """Median milliseconds per ``step()`` (see the module docstring), keywords as the package's ``measure``.

    Returns the ``stats.summarize_ms`` dict plus ``steps_per_repeat``,
    ``repeats`` and ``warmup``.
    """
    r = _measure(step, sync, **timing)
    out = summarize_ms(r["repeat_ms"])
    out.update(steps_per_repeat=r["steps_per_repeat"], repeats=r["repeats"], warmup=r["warmup"])
    return out
