"""Where a gpuprop training step spends its time: per layer and phase, then per function.

``breakdown`` wraps (on one model instance only, never the library's classes)
each layer's ``forward`` and ``backward``, the loss and the optimizer's
``update_step`` with a device-synced timer, runs ``steps`` steps and returns
mean milliseconds per step for each part, beside the unwrapped step time.
The wrappers sync after every part, so on a GPU the parts add up to more
than the real (asynchronous) step; "glue" is the step time no part accounts
for (``train_step``'s own Python, the loop). ``hot_functions`` adds a
cProfile view (cumulative time per function, top N) of the same steps.
"""

import cProfile
import io
import pstats
import time
from collections import defaultdict

from . import timing, workloads
from gpuprop.bench.peers import GpupropTrainer


def _timed(fn, label, acc, sync):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sync()
        acc[label] += time.perf_counter() - t0
        return out
    return wrapper


def _trainer(workload, device):
    t = GpupropTrainer(workload, device)
    t.load(workloads.host_batches(workload))
    t.build(workloads.reference_weights(workload))
    return t


def breakdown(workload, device="cpu", steps=50, warmup=5):
    """``{'step_ms', 'parts': [(label, ms_per_step)], 'glue_ms'}`` for one gpuprop workload."""
    t = _trainer(workload, device)
    plain = timing.measure(t.step, t.sync, repeats=5, warmup=warmup, min_repeat_s=0.2)
    model, sync = t.model, t.sync
    acc = defaultdict(float)
    order = []
    for i, s in enumerate(model._train_steps):
        name = f"{i}:{getattr(s, 'name', None) or type(s).__name__}"
        kind = getattr(s, "kind", None)
        name += f" ({kind})" if kind else f" ({type(s).__name__})"
        for phase in ("forward", "backward"):
            label = f"{name} {phase}"
            order.append(label)
            setattr(s, phase, _timed(getattr(s, phase), label, acc, sync))
    model._loss_fn = _timed(model._loss_fn, "loss + dlogits (fused softmax-CE)", acc, sync)
    names = {id(p): f"{layer.name}.{k}" for layer in model.layers for k, p in layer.params.items()}
    if model.packed is not None:
        names[id(model.packed.params)] = "all parameters (one flat array)"
    opt = model.optimizer
    inner = opt.update_step

    def update_step(p, g, slots, lr):
        label = f"optimizer {type(opt).__name__} {names.get(id(p), '?')}"
        t0 = time.perf_counter()
        inner(p, g, slots, lr)
        sync()
        acc[label] += time.perf_counter() - t0

    opt.update_step = update_step
    for _ in range(warmup):
        t.step()
    acc.clear()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        t.step()
    sync()
    wrapped = (time.perf_counter() - t0) / steps * 1000
    labels = [order[i] for i in range(0, len(order), 2)]  # forwards in order
    labels += ["loss + dlogits (fused softmax-CE)"]
    labels += [lab for lab in reversed(order) if lab.endswith("backward")]
    labels += [k for k in acc if k.startswith("optimizer")]
    parts = [(lab, acc[lab] / steps * 1000) for lab in labels if lab in acc]
    return {"workload": workload.name, "device": device, "step_ms": plain["ms_per_step"], "wrapped_ms": wrapped,
            "parts": parts, "glue_ms": wrapped - sum(ms for _, ms in parts)}


def hot_functions(workload, device="cpu", steps=50, top=18):
    """cProfile text (sorted by own time) of ``steps`` steps after warm-up."""
    t = _trainer(workload, device)
    for _ in range(5):
        t.step()
    t.sync()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        t.step()
    t.sync()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def format_breakdown(b):
    lines = [(f"{b['workload']} on {b['device']}: {b['step_ms']:.3f} ms/step unwrapped "
              f"({b['wrapped_ms']:.3f} with per-part syncs)"),
             f"  {'part':<52} {'ms/step':>9} {'share':>7}"]
    for label, ms in b["parts"]:
        lines.append(f"  {label:<52} {ms:9.4f} {100 * ms / b['wrapped_ms']:6.1f}%")
    lines.append(f"  {'glue (train_step Python, unaccounted)':<52} {b['glue_ms']:9.4f} "
                 f"{100 * b['glue_ms'] / b['wrapped_ms']:6.1f}%")
    return "\n".join(lines)
