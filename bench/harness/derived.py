"""The figures a benchmark document derives from its measured records.

Measured: ms/step, samples/s, the ceiling, paired ratios. Derived here, in place:
GFLOP/s, fraction of the sgemm ceiling, GPU ÷ CPU speedup, gpuprop ÷ peer
ratio, and the first-loss difference that shows a peer trained the same model.
``finish`` is idempotent, so a partial document (a run cut short) carries its
ratios too.
"""

from .stats import ratio


def finish(doc):
    """Fill in the derived figures: GFLOP/s, fraction of ceiling, GPU speedups, gpuprop ÷ peer ratios."""
    recs = doc["records"]
    ok = {(r["workload"], r["device"], r["framework"]): r for r in recs if r["status"] == "ok"}
    for r in recs:
        if r["status"] != "ok":
            continue
        sec = r["ms_per_step"] / 1000.0
        r["gflops"] = r["gflop_per_step"] / sec if r["gflop_per_step"] else None
        ceiling = (doc["ceilings"].get(r["device"]) or {}).get("gflops")
        r["ceiling_fraction"] = r.get("paired_ceiling_fraction") or ratio(r["gflops"], ceiling)
        cpu = ok.get((r["workload"], "cpu", r["framework"]))
        if r["device"] == "gpu" and cpu:
            r["speedup_vs_cpu"] = ratio(r["samples_per_s"], cpu["samples_per_s"])
        mine = ok.get((r["workload"], r["device"], "gpuprop"))
        if r["framework"] != "gpuprop" and mine:
            r["gpuprop_ratio"] = r.get("paired_ratio") or ratio(mine["samples_per_s"], r["samples_per_s"])
            if "first_loss" in mine and "first_loss" in r:
                r["first_loss_diff"] = abs(r["first_loss"] - mine["first_loss"])
    for r in recs:
        if r["framework"] == "gpuprop" and r["status"] == "ok":
            r["vs"] = {p["framework"]: p.get("gpuprop_ratio") for p in recs
                       if p["workload"] == r["workload"] and p["device"] == r["device"]
                       and p["framework"] != "gpuprop" and p["status"] == "ok"}
    return doc
