"""One framework on one device, in its own process: ``python -m harness.worker SPEC_JSON``.

The runner starts one worker per (device, framework) so that frameworks never
share a process: PyTorch's OpenMP threads, XLA's thread pool and OpenBLAS's
threads, left spinning after one framework's step, measurably slow the next
framework's BLAS calls on a small CPU, and each framework keeps its own device
memory pool. A worker runs its workloads in order and prints one line per
result on stdout, ``RECORD {json}`` (or ``CEILING``, ``INFO``), as soon as it
has it, so a run cut short by a timeout keeps what was measured. Progress goes
to stderr.

SPEC_JSON: {"device", "framework", "workloads": [names], "timing": {...},
"quick": bool, "ceiling": bool, "deadline": unix time or null}.
"""

import json
import sys
import time

from . import timing, workloads
from .machine import OtherLoad
from .memory import DevicePeak
from gpuprop.bench.peers import make


def emit(kind, obj):
    print(f"{kind} {json.dumps(obj, default=str)}", flush=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def start_trainer(wl, device, fw):
    """``(trainer, DevicePeak, first_loss)``: ``fw``'s model of ``wl`` built from gpuprop's initial
    weights on device-resident batches, after its first step (which also warms it up)."""
    weights = workloads.reference_weights(wl)
    t = make(fw, wl, device)
    t.load(workloads.host_batches(wl))
    t.sync()
    peak = DevicePeak(t)
    peak.start()
    t.build(weights)
    return t, peak, t.loss_value(t.step())


def measure_steps(wl, device, fw, settings):
    """ms/step etc. of ``fw`` training ``wl`` on ``device`` from gpuprop's initial weights."""
    t, peak, first_loss = start_trainer(wl, device, fw)
    with OtherLoad() as other:
        r = timing.measure(t.step, t.sync, **settings)
    out = dict(r, other_cpu_pct=other.pct)
    out.update(peak.stop() or {})
    out["samples_per_s"] = wl.batch / (r["ms_per_step"] / 1000.0)
    out["first_loss"] = first_loss
    out["note"] = getattr(t, "note", "")
    return out


def extras(fw, device):
    """Facts only this framework's process can tell cheaply (threads, devices)."""
    if fw == "torch":
        import torch

        return {"torch_threads": torch.get_num_threads(), "torch_cuda": torch.version.cuda,
                "torch_gpu": torch.cuda.get_device_name(0) if device == "gpu" else None}
    if fw == "jax":
        import jax

        return {"jax_devices": [str(d) for d in jax.devices()]}
    return {}


def run(spec):
    device, fw = spec["device"], spec["framework"]
    settings = spec["timing"]
    deadline = spec.get("deadline")
    if spec.get("ceiling"):
        from .ceiling import measure_ceiling

        log(f"[{device}] sgemm ceiling ...")
        try:
            c = measure_ceiling(device, settings, spec.get("quick", False))
            log(f"[{device}] ceiling {c['gflops']:.1f} GFLOP/s")
        except Exception as exc:  # noqa: BLE001 - reported in the document, the run goes on
            c = {"gflops": None, "error": reason(exc)}
        emit("CEILING", c)
    try:
        emit("INFO", extras(fw, device))
    except Exception as exc:  # noqa: BLE001 - only informative; the trainer reports real failures
        log(f"[{device}] {fw}: no framework details ({reason(exc)})")
    for name in spec["workloads"]:
        wl = workloads.WORKLOADS[name]
        rec = {}
        label = f"[{device}] {name:<9} {fw:<13}"
        if deadline is not None and time.time() > deadline:
            rec.update(status="n/a", reason="skipped: --time-budget reached")
        else:
            try:
                if wl.kind == "epoch":
                    from .epoch import measure_epoch

                    with OtherLoad() as other:
                        rec.update(measure_epoch(wl, device, epoch_repeats=1 if spec.get("quick") else 3))
                    rec["other_cpu_pct"] = other.pct
                else:
                    rec.update(measure_steps(wl, device, fw, settings))
                rec["status"] = "ok"
                log(f"{label} {rec['ms_per_step']:9.3f} ms/step {rec['samples_per_s']:12,.0f} samples/s")
            except Exception as exc:  # noqa: BLE001 - one failing workload (compile error, OOM) must not end the others
                rec.update(status="n/a", reason=reason(exc))
        if rec["status"] != "ok":
            log(f"{label} n/a: {rec['reason']}")
        rec.update(workload=name, device=device, framework=fw)
        emit("RECORD", rec)


def reason(exc):
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
