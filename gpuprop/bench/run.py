"""One ``gpuprop bench`` run: a fresh process per (device, framework), one JSON document, one table.

Timing (``measure``): ``warmup`` untimed steps (they pay for compilation,
kernel caches, first-touch page faults), one step to size a repeat, then
``repeats`` repeats of K steps each, K chosen so a repeat lasts at least
``min_repeat_s``; a repeat is ``sync; t0; K × step; sync; t1``, so queued
device work falls inside it, and the figure is the median of (t1 − t0)/K.
A worker is ``python -m gpuprop.bench.run SPEC_JSON`` and prints one
``RECORD {json}`` line per workload as soon as it has it.
"""

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

from . import workloads

SCHEMA = "gpuprop-bench/2"
FULL = {"repeats": 7, "warmup": 3, "min_repeat_s": 0.25, "max_steps": 2000}
QUICK = {"repeats": 3, "warmup": 2, "min_repeat_s": 0.05, "max_steps": 200}
PEERS = ("torch", "torch-compile", "jax")


def median(values):
    xs = sorted(values)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def steps_for(one_step_s, min_repeat_s, max_steps):
    """Steps per repeat so a repeat lasts ≥ ``min_repeat_s``, between 1 and ``max_steps``."""
    if one_step_s <= 0:
        return max_steps
    return int(min(max_steps, max(1, math.ceil(min_repeat_s / one_step_s))))


def measure(step, sync, repeats=7, warmup=3, min_repeat_s=0.25, max_steps=2000, clock=time.perf_counter):
    """Median milliseconds per ``step()`` and the per-repeat figures; see the module docstring."""
    for _ in range(warmup):
        step()
    sync()
    t0 = clock()
    step()
    sync()
    k = steps_for(clock() - t0, min_repeat_s, max_steps)
    ms = []
    for _ in range(repeats):
        sync()
        t0 = clock()
        for _ in range(k):
            step()
        sync()
        ms.append(1000.0 * (clock() - t0) / k)
    mid = median(ms)
    return {"ms_per_step": mid, "spread": (max(ms) - min(ms)) / mid if mid > 0 else None, "repeat_ms": ms,
            "steps_per_repeat": k, "repeats": repeats, "warmup": warmup}


# --- choosing what to run ----------------------------------------------------------------------
def parse_peers(spec):
    """'torch,jax' → ('torch', 'jax'); 'none' or '' → (). torch on a GPU adds torch-compile itself."""
    names = [p.strip().lower() for p in str(spec or "").split(",") if p.strip()]
    if names in (["none"], []):
        return ()
    bad = [p for p in names if p not in PEERS]
    if bad:
        raise ValueError(f"unknown peer(s) {', '.join(bad)}: use torch, torch-compile, jax or none")
    return tuple(dict.fromkeys(names))


def devices_for(spec):
    """'cpu' | 'gpu' | 'all' → device names, GPU first; 'gpu' raises BackendError saying why there is none."""
    from ..backend import get_backend
    from ..errors import BackendError

    if spec == "cpu":
        return ["cpu"]
    try:
        get_backend("gpu")
    except BackendError:
        if spec == "gpu":
            raise
        return ["cpu"]
    return ["gpu"] if spec == "gpu" else ["gpu", "cpu"]


def frameworks_for(device, peers):
    compiled = "torch-compile" in peers or ("torch" in peers and device == "gpu")
    return ["gpuprop"] + [fw for fw in PEERS if fw in peers or (fw == "torch-compile" and compiled)]


def missing(framework):
    pkg = "torch" if framework.startswith("torch") else framework
    return None if framework == "gpuprop" or importlib.util.find_spec(pkg) else f"{pkg} is not installed"


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine(devices):
    from ..backend import get_backend

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": _version("numpy"), "torch": _version("torch"),
            "jax": _version("jax"), "gpu": get_backend("gpu").describe() if "gpu" in devices else None}


# --- the run ---------------------------------------------------------------------------------------
def run(devices="all", workload_names=None, peers=("torch", "jax"), quick=False, repeats=None, log=None):
    """Measure every (device, framework, workload); return the JSON document (see ``table``)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    devs, chosen = devices_for(devices), workloads.select(workload_names, quick)
    timing = dict(QUICK if quick else FULL, **({"repeats": repeats} if repeats else {}))
    doc = {"schema": SCHEMA, "machine": machine(devs), "records": [],
           "settings": {"devices": devs, "workloads": [w.name for w in chosen], "peers": list(peers),
                        "quick": quick, "timing": timing}}
    for device in devs:
        for fw in frameworks_for(device, peers):
            why = missing(fw)
            for rec in (_worker(device, fw, chosen, timing) if why is None else
                        ({"workload": w.name, "device": device, "framework": fw, "status": "n/a", "reason": why}
                         for w in chosen)):
                doc["records"].append(rec)
                figure = (f"{rec['ms_per_step']:9.3f} ms/step" if rec["status"] == "ok" else
                          f"{rec['status']}: {rec['reason']}")
                log(f"[{device}] {rec['workload']:<9} {fw:<13} {figure}")
    return derive(doc)


def _worker(device, fw, chosen, timing):
    """Records from a fresh process running ``fw`` on ``device`` (one per workload, even if it dies)."""
    spec = {"device": device, "framework": fw, "workloads": [w.name for w in chosen], "timing": timing}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    seen = []
    with subprocess.Popen([sys.executable, "-m", "gpuprop.bench.run", json.dumps(spec)], stdout=subprocess.PIPE,
                          text=True, env=env) as proc:
        try:
            for line in proc.stdout:
                if line.startswith("RECORD "):
                    seen.append(json.loads(line[7:]))
                    yield seen[-1]
        finally:
            if proc.poll() is None:  # interrupted: never leave a worker behind
                proc.kill()
    for w in chosen[len(seen):]:
        yield {"workload": w.name, "device": device, "framework": fw, "status": "error",
               "reason": f"the worker process ended (exit code {proc.returncode})"}


def worker(spec):
    """The worker process: each workload's figures, from gpuprop's initial weights."""
    from .peers import make

    for name in spec["workloads"]:
        wl = workloads.WORKLOADS[name]
        rec = {"workload": name, "device": spec["device"], "framework": spec["framework"], "batch": wl.batch}
        try:
            t = make(spec["framework"], wl, spec["device"])
            t.load(workloads.host_batches(wl))
            t.build(workloads.reference_weights(wl))
            rec["first_loss"] = t.loss_value(t.step())
            rec.update(measure(t.step, t.sync, **spec["timing"]), status="ok")
            rec["samples_per_s"] = wl.batch / (rec["ms_per_step"] / 1000.0)
        except Exception as exc:  # noqa: BLE001 - one failing workload (no device, OOM) must not end the others
            lines = str(exc).strip().splitlines()
            rec.update(status="n/a", reason=f"{type(exc).__name__}: {lines[0][:200] if lines else ''}")
        print("RECORD " + json.dumps(rec), flush=True)


def derive(doc):
    """GFLOP/s, GPU ÷ CPU speed-up and gpuprop ÷ peer ratios, filled in from the measured records."""
    ok = {(r["workload"], r["device"], r["framework"]): r for r in doc["records"] if r["status"] == "ok"}
    for (wl, dev, fw), r in ok.items():
        r["gflops"] = workloads.flops_per_step(workloads.WORKLOADS[wl]) / 1e9 / (r["ms_per_step"] / 1000.0)
        cpu, mine = ok.get((wl, "cpu", fw)), ok.get((wl, dev, "gpuprop"))
        if dev == "gpu" and cpu:
            r["speedup_vs_cpu"] = r["samples_per_s"] / cpu["samples_per_s"]
        if fw != "gpuprop" and mine:
            r["gpuprop_ratio"] = mine["samples_per_s"] / r["samples_per_s"]
    return doc


def table(doc):
    """The records as an aligned text table, with a line saying how to read it."""
    cols = ("workload", "dev", "framework", "ms/step", "±%", "samples/s", "GFLOP/s", "gpu/cpu", "gpuprop÷", "loss0")
    rows = []
    for r in doc["records"]:
        if r["status"] != "ok":
            rows.append((r["workload"], r["device"], r["framework"], f"{r['status']}: {r.get('reason', '')}"))
            continue
        rows.append((r["workload"], r["device"], r["framework"], f"{r['ms_per_step']:.3f}",
                     f"{100 * r['spread']:.0f}" if r.get("spread") is not None else "",
                     f"{r['samples_per_s']:,.0f}", f"{r['gflops']:.1f}",
                     f"{r['speedup_vs_cpu']:.1f}×" if r.get("speedup_vs_cpu") else "",
                     f"{r['gpuprop_ratio']:.2f}×" if r.get("gpuprop_ratio") else "", f"{r['first_loss']:.4f}"))
    full = [row for row in rows if len(row) == len(cols)]
    widths = [max([len(c)] + [len(row[i]) for row in full]) for i, c in enumerate(cols)]

    def fmt(row):
        if len(row) != len(cols):
            return "  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3]
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    lines = [fmt(cols), "-" * len(fmt(cols))] + [fmt(row) for row in rows]
    lines.append("gpuprop÷ = gpuprop samples/s ÷ this framework's (> 1: gpuprop is faster); ±% = (max − min) / "
                 "median over repeats; loss0 = first step's loss from the shared initial weights (equal when the "
                 "models are). Frameworks run one after another: on a busy machine, rerun before trusting a ratio.")
    return "\n".join(lines)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
