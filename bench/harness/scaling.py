"""Scaling: time per epoch of the MLP vs batch size and vs width, on each device.

Time per epoch (60000 samples) is computed as ms/step × ⌈60000/batch⌉ from a
handful of timed steps per point (median of repeats, warm-up excluded), not
by training whole epochs. Sweeps: batch 32…8192 for 784-512-512-10, and width
128…4096 (two hidden layers) at batch 128; SGD momentum 0.9 throughout.

Every point is timed in turns, as the bench's step workloads are (``paired``):
fresh worker processes, one per framework, take one timed repeat each, the
order reversed every round. gpuprop's and a peer's figure for a point are
then seconds apart instead of a whole sweep apart, which on a VM whose speed
moves 2× within minutes decides which framework looks faster. A peer's point
also carries ``gpuprop_ratio``, the median over rounds of (peer ÷ gpuprop time).

While a device is overhead-bound (per-step costs that do not grow with the
batch: Python, kernel launches, small-GEMM inefficiency), doubling the batch
nearly halves the epoch; once it is compute-bound the epoch time stops
falling. ``knee`` finds that batch size: the first from which doubling the
batch saves less than 10 % of the epoch time.
"""

import itertools
import math
import sys

from . import machine, paired, timing, workloads
from .selection import devices_for, peer_missing
from .stats import median, relative_spread

BATCHES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WIDTHS = (128, 256, 512, 1024, 2048, 4096)
BUSY_PCT = 10  # as in report.py: other processes' CPU use (% of a core) that flags a point
SAVING = 0.10  # doubling the batch must save at least this fraction of the epoch to count as "still falling"


def sweep_points():
    """[(sweep, batch, width)] of both sweeps."""
    return [("batch", b, 512) for b in BATCHES] + [("width", 128, w) for w in WIDTHS]


def measure_point(device, frameworks, sweep, batch, width, settings, skipped):
    """One point for every framework, timed in turns; a list of point dicts (failures go to ``skipped``)."""
    wl = workloads.scaling_mlp(width, batch)
    where = f"on {device}, batch {batch} width {width}"
    workers, times, others = {}, {}, {}
    try:
        for fw in frameworks:
            try:
                workers[fw] = paired.Worker(device, fw)
            except Exception as exc:  # noqa: BLE001 - the worker could not even start
                skipped.append(f"{fw} {where}: worker did not start ({exc})")
        _, steps, failed = paired.set_up(workers, wl.name, settings)
        skipped.extend(f"{fw} {where}: {why}" for fw, why in failed.items())  # e.g. out of memory
        if steps:
            times, others = paired.take_turns(workers, list(steps), wl.name, steps, settings["repeats"], device)
    finally:
        for w in workers.values():
            w.close()
    out = []
    for fw, ts in times.items():
        ok = [t for t in ts if t is not None]
        if not ok:
            skipped.append(f"{fw} {where}: every timed repeat failed")
            continue
        sec = median(ok)
        p = {"sweep": sweep, "device": device, "framework": fw, "batch": batch, "width": width,
             "ms_per_step": sec * 1000.0, "spread": relative_spread(ok),
             "epoch_s": sec * math.ceil(workloads.EPOCH_SAMPLES / batch), "samples_per_s": batch / sec,
             "gflops": workloads.flops_per_step(wl) / 1e9 / sec, "paired": True,
             "other_cpu_pct": median(others[fw]) if others.get(fw) else None}
        if fw != "gpuprop":
            rounds = paired.round_ratios(times, fw)
            p["gpuprop_ratio"] = median(rounds) if rounds else None
        out.append(p)
    return out


def run(devices="all", quick=False, peers=("torch",), log=None, points=None):
    """Both sweeps (or ``points``) on each device for gpuprop and the installed peers; a JSON-able dict."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    devs = devices_for(devices) if isinstance(devices, str) else list(devices)
    settings = timing.settings(quick)  # the bench's own: a point is timed exactly as a bench row is
    from gpuprop.backend import get_backend

    doc = {"machine": machine.info([get_backend(d) for d in devs], peers=()),
           "settings": dict(settings, devices=devs, paired=True), "points": [], "skipped": []}
    for device in devs:
        frameworks = ["gpuprop"]
        for fw in (p for p in peers if p in ("torch", "jax")):
            missing = peer_missing(fw, device, deep=False)
            if missing:
                doc["skipped"].append(f"{fw} on {device}: {missing}")
            else:
                frameworks.append(fw)
        for sweep, batch, width in points or sweep_points():
            for p in measure_point(device, frameworks, sweep, batch, width, settings, doc["skipped"]):
                log(f"[{device}] {p['framework']:<8} {sweep:<5} batch {batch:<5} width {width:<5} "
                    f"{p['ms_per_step']:9.3f} ms/step  {p['epoch_s']:8.2f} s/epoch")
                doc["points"].append(p)
    doc["machine"]["load_after"] = machine.load_average()
    return doc


def series(doc, sweep, device, framework):
    key = "batch" if sweep == "batch" else "width"
    pts = [p for p in doc["points"] if (p["sweep"], p["device"], p["framework"]) == (sweep, device, framework)]
    return sorted(((p[key], p) for p in pts), key=lambda kv: kv[0])


def knee(points):
    """The first batch size from which doubling it saves < 10 % of the epoch; None if it never stops falling."""
    for (b, p), (_, q) in itertools.pairwise(points):
        if q["epoch_s"] > (1 - SAVING) * p["epoch_s"]:
            return b
    return None


def _columns(doc):
    return [(d, f) for d in doc["settings"]["devices"] for f in ("gpuprop", "torch", "jax")
            if any(p["device"] == d and p["framework"] == f for p in doc["points"])]


def markdown(doc):
    """Two markdown tables (s/epoch) and one sentence per device and framework on where overhead stops."""
    cols = _columns(doc)
    out = []
    for sweep, key, title in (("batch", "batch", "Time per epoch (s, 60000 samples) vs batch size, MLP 784-512-512-10"),
                              ("width", "width", "Time per epoch (s) vs hidden width (two layers), batch 128")):
        values = sorted({p[key] for p in doc["points"] if p["sweep"] == sweep})
        peers = [(d, f) for d, f in cols if f != "gpuprop"]
        out += [f"**{title}**", "", "| " + key + " | " + " | ".join(f"{f} {d}" for d, f in cols)
                + "".join(f" | gpuprop÷{f} {d}" for d, f in peers) + " |",
                "|---:|" + "---:|" * (len(cols) + len(peers))]
        for v in values:
            cells = []
            for d, f in cols:
                p = dict(series(doc, sweep, d, f)).get(v)
                busy = p and (p.get("other_cpu_pct") or 0) > BUSY_PCT
                cells.append(f"{p['epoch_s']:.2f}{'*' if busy else ''}" if p else "–")
            for d, f in peers:
                p = dict(series(doc, sweep, d, f)).get(v)
                cells.append(f"{p['gpuprop_ratio']:.2f}×" if p and p.get("gpuprop_ratio") else "–")
            out.append(f"| {v} | " + " | ".join(cells) + " |")
        out.append("")
    for d, f in cols:
        pts = series(doc, "batch", d, f)
        if len(pts) < 2:
            continue
        k = knee(pts)
        best = min(pts, key=lambda kv: kv[1]["epoch_s"])
        if k is None:
            out.append(f"- {f} on {d}: the epoch time still falls by ≥ {SAVING:.0%} at every doubling up to "
                       f"batch {pts[-1][0]}: overhead-bound throughout (fastest {best[1]['epoch_s']:.2f} s at "
                       f"batch {best[0]}).")
        else:
            out.append(f"- {f} on {d}: stops being overhead-bound at batch {k} (doubling beyond it saves "
                       f"< {SAVING:.0%}); fastest {best[1]['epoch_s']:.2f} s/epoch at batch {best[0]}.")
    if any(f != "gpuprop" for _, f in cols):
        out += ["", "Each point is timed in turns (one repeat per framework, order reversed every round); "
                "gpuprop÷peer is the median of the per-round ratios, so it need not equal the quotient of "
                "the two epoch columns, which are each framework's own median."]
    if any((p.get("other_cpu_pct") or 0) > BUSY_PCT for p in doc["points"]):
        out += ["", f"\\* other processes used > {BUSY_PCT} % of a core while this point was measured: unreliable."]
    if doc.get("skipped"):
        out += ["", "Not measured: " + "; ".join(doc["skipped"])]
    return "\n".join(out)


def plot(doc, path):
    """Write a two-panel log-log PNG to ``path``; returns a line saying what was written (or why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(no plot: matplotlib is not installed — pip install matplotlib)"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, label in ((axes[0], "batch", "batch size (MLP 784-512-512-10)"),
                             (axes[1], "width", "hidden width (batch 128)")):
        for d, f in _columns(doc):
            pts = series(doc, sweep, d, f)
            if pts:
                ax.plot([k for k, _ in pts], [p["epoch_s"] for _, p in pts], marker="o",
                        linestyle="-" if f == "gpuprop" else "--", label=f"{f} {d}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({p["batch" if sweep == "batch" else "width"] for p in doc["points"] if p["sweep"] == sweep})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per epoch (60000 samples)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    m = doc["machine"]
    fig.suptitle(f"gpuprop scaling — {m['cpu']} ({m['cores']} cores){', ' + m['gpu'] if m.get('gpu') else ''}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"(plot written to {path})"
