"""Scaling: time per epoch of the MLP vs batch size and vs width, on each device.

Time per epoch (60000 samples) is computed as ms/step × ⌈60000/batch⌉ from a
handful of timed steps per point (median of repeats, warm-up excluded), not
by training whole epochs. Sweeps: batch 32…8192 for 784-512-512-10, and width
128…4096 (two hidden layers) at batch 128; SGD momentum 0.9 throughout.

While a device is overhead-bound (per-step costs that do not grow with the
batch: Python, kernel launches, small-GEMM inefficiency), doubling the batch
nearly halves the epoch; once it is compute-bound the epoch time stops
falling. ``knee`` finds that batch size: the first from which doubling the
batch saves less than 10 % of the epoch time.
"""

import itertools
import json
import math
import subprocess
import sys

from . import machine, timing, workloads
from .memory import child_env
from .selection import devices_for, peer_missing
from .trainer import make

BATCHES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WIDTHS = (128, 256, 512, 1024, 2048, 4096)
BUSY_PCT = 10  # as in report.py: other processes' CPU use (% of a core) that flags a point
SAVING = 0.10  # doubling the batch must save at least this fraction of the epoch to count as "still falling"


def mlp(width=512, batch=128):
    return workloads.Workload(f"mlp{width}-b{batch}", tuple(("dense", width, "relu") for _ in range(2))
                              + (("dense", 10, "softmax"),), (784,), batch, "momentum", 0.01,
                              f"MLP 784-{width}-{width}-10, batch {batch}")


def point(wl, device, framework, settings):
    t = make(framework, wl, device)
    t.load(workloads.host_batches(wl, n_batches=2))
    t.build(workloads.reference_weights(wl))
    with machine.OtherLoad() as other:
        r = timing.measure(t.step, t.sync, **settings)
    steps = math.ceil(workloads.EPOCH_SAMPLES / wl.batch)
    return {"ms_per_step": r["ms_per_step"], "spread": r["spread"], "epoch_s": r["ms_per_step"] * steps / 1000.0,
            "samples_per_s": wl.batch / (r["ms_per_step"] / 1000.0),
            "gflops": workloads.flops_per_step(wl) / 1e9 / (r["ms_per_step"] / 1000.0),
            "other_cpu_pct": other.pct}


def sweep_points():
    """[(sweep, batch, width)] of both sweeps."""
    return [("batch", b, 512) for b in BATCHES] + [("width", 128, w) for w in WIDTHS]


def measure_points(device, framework, points, settings):
    """Measure ``points`` in this process; one dict per point (an 'error' key where it failed)."""
    out = []
    for sweep, batch, width in points:
        wl = mlp(width, batch)
        try:
            p = point(wl, device, framework, settings)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory at the largest point
            p = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
        p.update(sweep=sweep, device=device, framework=framework, batch=batch, width=width)
        print(f"[{device}] {framework:<8} {sweep:<5} batch {batch:<5} width {width:<5} "
              + (f"{p['ms_per_step']:9.3f} ms/step  {p['epoch_s']:8.2f} s/epoch" if "error" not in p else p["error"]),
              file=sys.stderr, flush=True)
        out.append(p)
    return out


def _spawn(device, framework, points, settings):
    """``measure_points`` in a fresh process (frameworks never share one; see ``worker``)."""
    arg = json.dumps({"device": device, "framework": framework, "points": points, "settings": settings})
    res = subprocess.run([sys.executable, "-m", "gpuprop.benchmarks.scaling", arg], check=False,
                         stdout=subprocess.PIPE, text=True, env=child_env())
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return [{"error": f"worker failed (rc {res.returncode})", "sweep": s, "device": device,
                 "framework": framework, "batch": b, "width": w} for s, b, w in points]
    return json.loads(lines[-1])


def _busy(p):
    return (p.get("other_cpu_pct") or 0) > BUSY_PCT


def run(devices="all", quick=False, peers=("torch",), log=None, retry_busy=2):
    """Both sweeps on each device for gpuprop and the installed peers; a JSON-able dict.

    CPU points measured while other processes used the CPU are measured again
    (up to ``retry_busy`` rounds, after waiting for a quiet CPU); the less
    disturbed measurement is kept.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    devs = devices_for(devices) if isinstance(devices, str) else list(devices)
    settings = {"repeats": 3, "warmup": 1, "min_repeat_s": 0.02, "max_steps": 50} if quick else \
        {"repeats": 5, "warmup": 2, "min_repeat_s": 0.1, "max_steps": 200}
    from ..backend import get_backend

    doc = {"machine": machine.info([get_backend(d) for d in devs], peers=()),
           "settings": dict(settings, devices=devs, retry_busy=retry_busy), "points": [], "skipped": []}
    for device in devs:
        for fw in ["gpuprop"] + [p for p in peers if p in ("torch", "jax")]:
            missing = None if fw == "gpuprop" else peer_missing(fw, device, deep=False)
            if missing:
                doc["skipped"].append(f"{fw} on {device}: {missing}")
                continue
            pts = {(p["sweep"], p["batch"], p["width"]): p for p in _spawn(device, fw, sweep_points(), settings)}
            for attempt in range(retry_busy if device == "cpu" else 0):
                busy = [k for k, p in pts.items() if _busy(p)]
                if not busy:
                    break
                log(f"{len(busy)} {fw} point(s) disturbed by other processes: measuring again (attempt {attempt + 1})")
                machine.wait_for_quiet(60.0, BUSY_PCT)
                for p in _spawn(device, fw, busy, settings):
                    k = (p["sweep"], p["batch"], p["width"])
                    if "error" not in p and (p.get("other_cpu_pct") or 0) < (pts[k].get("other_cpu_pct") or 0):
                        pts[k] = p
            for p in pts.values():
                if "error" in p:
                    doc["skipped"].append(f"{fw} on {device}, batch {p['batch']} width {p['width']}: {p['error']}")
                else:
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
        out += [f"**{title}**", "", "| " + key + " | " + " | ".join(f"{f} {d}" for d, f in cols) + " |",
                "|---:|" + "---:|" * len(cols)]
        for v in values:
            cells = []
            for d, f in cols:
                p = dict(series(doc, sweep, d, f)).get(v)
                busy = p and (p.get("other_cpu_pct") or 0) > BUSY_PCT
                cells.append(f"{p['epoch_s']:.2f}{'*' if busy else ''}" if p else "–")
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


if __name__ == "__main__":  # the per-framework worker that ``run`` spawns
    spec = json.loads(sys.argv[1])
    points = [tuple(p) for p in spec["points"]]
    print(json.dumps(measure_points(spec["device"], spec["framework"], points, spec["settings"])))
