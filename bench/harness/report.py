"""Readable text for a benchmark document: the table, the targets, a short summary.

``python bench/summary.py bench.json [tests.log]`` prints the short
summary (bench/gpu_check.sh ends with it).
"""

import json
import sys

# (label, workload, peer, what, goal) — reported, never asserted.
TARGETS = (
    ("MLP b128 ≥ 1.1× PyTorch eager samples/s", "mlp", "torch", "ratio", 1.1),
    ("softmax b32 ≥ 5× PyTorch eager samples/s", "softmax", "torch", "ratio", 5.0),
    ("wide MLP ≥ 85 % of the measured sgemm ceiling", "wide", None, "ceiling", 0.85),
    ("CNN b128 ≥ 1.0× PyTorch eager samples/s", "cnn", "torch", "ratio", 1.0),
)


def fmt(value, spec=".2f", none="n/a"):
    return none if value is None else format(value, spec)


def find(doc, workload, device, framework):
    for r in doc["records"]:
        if (r["workload"], r["device"], r["framework"]) == (workload, device, framework):
            return r
    return None


BUSY_PCT = 10  # other processes' CPU use (% of a core) above which a row is flagged
FRAMEWORKS = ("gpuprop", "torch", "torch-compile", "jax")


def ordered(doc):
    """Records grouped by workload (run order), then device (as run), then framework (gpuprop first)."""
    wls = list(doc["settings"].get("workloads", []))
    devs = list(doc["settings"].get("devices", []))

    def key(r):
        return (wls.index(r["workload"]) if r["workload"] in wls else len(wls),
                devs.index(r["device"]) if r["device"] in devs else len(devs),
                FRAMEWORKS.index(r["framework"]) if r["framework"] in FRAMEWORKS else len(FRAMEWORKS))

    return sorted(doc["records"], key=key)


def table(doc):
    """The full results table as text, one row per record, then ceilings, epoch detail and targets."""
    cols = ("workload", "dev", "framework", "batch", "ms/step", "±%", "samples/s", "GFLOP/s", "%ceil",
            "gpu/cpu", "gpuprop÷", "loss0", "host MB (Δ)", "dev MB")
    rows = []
    for r in ordered(doc):
        if r["status"] != "ok":
            rows.append((r["workload"], r["device"], r["framework"], str(r["batch"]),
                         f"n/a: {r.get('reason', '')}"[:90]))
            continue
        host = ""
        if r.get("peak_host_mb") is not None:
            host = f"{r['peak_host_mb']:.0f} ({r['host_delta_mb']:+.0f})"
        elif r.get("host_mem_error"):
            host = "n/a"
        flag = "*" if (r.get("other_cpu_pct") or 0) > BUSY_PCT else ""
        rows.append((
            r["workload"], r["device"], r["framework"] + flag, str(r["batch"]),
            fmt(r["ms_per_step"], ".3f"), fmt(100 * r["spread"], ".0f") if r.get("spread") is not None else "",
            fmt(r["samples_per_s"], ",.0f"), fmt(r.get("gflops"), ".1f"),
            fmt(100 * r["ceiling_fraction"], ".0f") if r.get("ceiling_fraction") is not None else "",
            fmt(r.get("speedup_vs_cpu"), ".1f") + "×" if r.get("speedup_vs_cpu") else "",
            fmt(r.get("gpuprop_ratio"), ".2f") + "×" if r.get("gpuprop_ratio") else "",
            fmt(r.get("first_loss"), ".4f", ""), host, fmt(r.get("device_peak_mb"), ".0f", ""),
        ))
    widths = [max(len(c), *(len(row[i]) for row in rows if len(row) == len(cols))) if rows else len(c)
              for i, c in enumerate(cols)]
    right = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    lines.append("-" * len(lines[0]))
    for row in rows:
        if len(row) != len(cols):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        else:
            lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))))
    out = ["\n".join(lines), ""]
    out.append("gpuprop÷ = gpuprop samples/s ÷ this framework's (> 1: gpuprop faster); ±% = (max−min)/median "
               "over repeats; loss0 = loss of the first step from the shared initial weights; host MB = RSS "
               "high-water of a fresh process (Δ = model + step on top of imports and data).")
    busy = [r for r in doc["records"] if (r.get("other_cpu_pct") or 0) > BUSY_PCT]
    if busy:
        worst = max(r["other_cpu_pct"] for r in busy)
        out.append(f"* other processes used > {BUSY_PCT} % of a core while this row was measured (up to "
                   f"{worst:.0f} %; for rows timed in turns, in the median repeat): treat it as unreliable.")
    for dev, c in doc["ceilings"].items():
        if c.get("gflops") is None:
            out.append(f"ceiling {dev}: n/a ({c.get('error', '')})")
            continue
        sizes = ", ".join(f"{s['m']}×{s['k']}×{s['n']}: {s['gflops']:.1f}"
                          f"{'*' if (s.get('other_cpu_pct') or 0) > BUSY_PCT else ''}" for s in c["sizes"])
        out.append(f"sgemm ceiling {dev}: {c['gflops']:.1f} GFLOP/s float32 ({sizes})")
    for r in ordered(doc):
        if r["status"] == "ok" and r.get("paired_ceiling_gflops"):
            sizes = ", ".join("×".join(str(v) for v in size) for size in r["paired_ceiling_sizes"])
            out.append(f"{r['workload']} {r['device']}: %ceil is the median over rounds of step ÷ ceiling, the "
                       f"ceiling ({sizes}, best per round; median {r['paired_ceiling_gflops']:.1f} GFLOP/s) "
                       f"timed in gpuprop's turns")
    for r in ordered(doc):
        if r["kind"] == "epoch" and r["status"] == "ok":
            out.append(f"epoch {r['device']}: {r['epoch_s']:.2f} s for 60000 samples ({r['samples_per_s']:,.0f}/s); "
                       f"its {r['steps']} steps alone {r['steps_sum_s']:.2f} s ({r['step_ms']:.3f} ms/step) → "
                       + (f"the loop adds {r['loop_overhead_s']:.2f} s ({r['loop_overhead_pct']:.0f} % of the epoch)"
                          if r["loop_overhead_s"] >= 0 else  # the loop cannot save time: the two figures disagree
                          f"the loop's cost is within the noise of these two figures (epoch − steps = "
                          f"{r['loop_overhead_s']:.2f} s): measure again on a quiet machine"))
    out += ["", "Targets (recorded, not asserted):"] + [f"  {line}" for line in targets(doc)]
    return "\n".join(out)


def target_results(doc):
    """[(label, device, value, goal, met or None)] for each target and each device measured."""
    res = []
    for label, wl, peer, what, goal in TARGETS:
        for dev in doc["settings"]["devices"]:
            if what == "ratio":
                r = find(doc, wl, dev, peer)
                value = r.get("gpuprop_ratio") if r else None
            else:
                r = find(doc, wl, dev, "gpuprop")
                value = r.get("ceiling_fraction") if r else None
            res.append((label, dev, value, goal, None if value is None else value >= goal))
    return res


def targets(doc):
    lines = []
    for label, dev, value, goal, met in target_results(doc):
        shown = "n/a" if value is None else (f"{value:.2f}×" if goal > 1 or "×" in label else f"{100 * value:.0f} %")
        verdict = "not measured" if met is None else ("met" if met else "MISSED")
        lines.append(f"[{dev}] {label}: {shown} — {verdict}")
    return lines


def summary(doc, tests_line=None):
    """Short per-workload summary: gpu (else cpu) ms/step, speedup vs CPU, ratios vs each peer."""
    dev = "gpu" if "gpu" in doc["settings"]["devices"] else "cpu"
    peers = ("torch", "torch-compile", "jax")
    head = ("workload", f"{dev} ms/step", "vs cpu", "÷torch", "÷t.compile", "÷jax")
    rows = []
    for wl in doc["settings"]["workloads"]:
        r = find(doc, wl, dev, "gpuprop")
        if r is None or r["status"] != "ok":
            rows.append((wl, "n/a", "", "", "", ""))
            continue
        flag = "*" if (r.get("other_cpu_pct") or 0) > BUSY_PCT else ""
        cells = [wl, f"{r['ms_per_step']:.3f}{flag}", fmt(r.get("speedup_vs_cpu"), ".1f") + "×"
                 if r.get("speedup_vs_cpu") else "-"]
        for p in peers:
            pr = find(doc, wl, dev, p)
            cells.append(f"{pr['gpuprop_ratio']:.2f}×" if pr and pr.get("gpuprop_ratio") else
                         ("n/a" if pr else "-"))
        rows.append(tuple(cells))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = []
    if tests_line:
        lines.append(f"tests: {tests_line}")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.append("(÷peer = gpuprop samples/s ÷ peer's; > 1 means gpuprop is faster)")
    if any((r.get("other_cpu_pct") or 0) > BUSY_PCT for r in doc["records"]):
        lines.append(f"* other processes used > {BUSY_PCT} % of a core meanwhile: unreliable")
    return "\n".join(lines)


def tests_outcome(log_path):
    """The last pytest summary line of a log ('12 passed, 1 skipped in 3.2s'), or why there is none."""
    try:
        with open(log_path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return "no log"
    for ln in reversed(lines):
        if any(w in ln for w in (" passed", " failed", " error", "no tests ran")):
            return ln.strip("= ")
    return (lines[-1][:120] if lines else "empty log")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python bench/summary.py BENCH.json [TESTS.log]")
    try:
        with open(sys.argv[1]) as f:
            document = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"tests: {tests_outcome(sys.argv[2])}" if len(sys.argv) > 2 else "")
        sys.exit(f"no benchmark results: {exc}")
    print(summary(document, tests_outcome(sys.argv[2]) if len(sys.argv) > 2 else None))
