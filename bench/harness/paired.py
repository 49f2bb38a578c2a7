"""Paired timing: gpuprop and its peers take turns, repeat by repeat, each in its own process.

A ratio from figures measured minutes apart inherits whatever the machine did
in between: on a shared VM two runs of the same step can differ by 2×. Here
each framework gets a fresh worker process per workload, all of them stay
alive while that workload is measured, and the runner asks them in turn for
one timed repeat each (the order reversed every round: A B, B A, ...), so
repeat i of gpuprop and repeat i of a peer are under a second apart.
A peer's ``paired_ratio`` is the median over rounds of (peer time ÷ gpuprop
time): gpuprop's samples/s over the peer's, as ``gpuprop_ratio`` is defined.
``take_turns`` is the loop itself; ``scaling`` times its sweep points with it too.

Between turns the runner pauses ``GAP_S``: BLAS and OpenMP threads may keep
spinning for a while after their last call (OpenBLAS up to ~0.1 s) and must
not take a core from the next framework's repeat.

Worker side (``python -m harness.paired DEVICE FRAMEWORK``): one
command per line on stdin, one reply line on stdout:

    SETUP name warmup   → READY {"first_loss", "one_step_s"}   (build, first step, warm-up)
    REPEAT name k       → TIME {"s": seconds per step, "other_cpu_pct"}
    GEMM m k n reps     → TIME {"s": seconds per product}          (the sgemm ceiling, in this turn)
    DONE name           → END {device memory figures}          (and drop the model)
    any failure         → FAIL {"reason"}
"""

import json
import subprocess
import sys
import time

from . import memory, timing, workloads
from .machine import OtherLoad
from .stats import median, quantile, summarize

GAP_S = {"cpu": 0.15, "gpu": 0.02}
_REPLIES = ("READY", "TIME", "END", "FAIL", "INFO")


# --- worker side ---------------------------------------------------------------------------------
def serve(device, fw, stdin=sys.stdin):
    from gpuprop.backend import get_backend
    from .ceiling import sgemm
    from .worker import emit, extras, reason, start_trainer

    try:
        emit("INFO", extras(fw, device))
    except Exception:  # noqa: BLE001 - only informative
        emit("INFO", {})
    live, gemms = {}, {}
    for line in stdin:
        cmd, *args = line.split()
        try:
            if cmd == "SETUP":
                wl, warmup = workloads.get(args[0]), int(args[1])
                t, peak, first_loss = start_trainer(wl, device, fw)
                for _ in range(warmup):
                    t.step()
                t.sync()
                t0 = time.perf_counter()
                t.step()
                t.sync()
                live[wl.name] = (t, peak)
                emit("READY", {"first_loss": first_loss, "one_step_s": time.perf_counter() - t0,
                               "note": getattr(t, "note", "")})
            elif cmd == "REPEAT":
                t, _ = live[args[0]]
                k = int(args[1])
                with OtherLoad() as other:
                    t.sync()
                    t0 = time.perf_counter()
                    for _ in range(k):
                        t.step()
                    t.sync()
                    s = (time.perf_counter() - t0) / k
                emit("TIME", {"s": s, "other_cpu_pct": other.pct})
            elif cmd == "GEMM":  # one timed repeat of the ceiling's sgemm, beside this worker's steps
                *size, reps = (int(a) for a in args)
                backend = get_backend(device)  # here, not at start: peers' workers never load CuPy
                if tuple(size) not in gemms:
                    gemms[tuple(size)] = sgemm(backend, *size)
                gemm = gemms[tuple(size)]
                gemm()
                backend.synchronize()
                t0 = time.perf_counter()
                for _ in range(reps):
                    gemm()
                backend.synchronize()
                emit("TIME", {"s": (time.perf_counter() - t0) / reps, "other_cpu_pct": None})
            elif cmd == "DONE":
                t, peak = live.pop(args[0])
                emit("END", peak.stop() or {})
                del t
            else:
                emit("FAIL", {"reason": f"unknown command {cmd!r}"})
        except Exception as exc:  # noqa: BLE001 - one workload failing (OOM, compile error) must not end the others
            live.pop(args[0] if args else None, None)
            emit("FAIL", {"reason": reason(exc)})


# --- runner side ---------------------------------------------------------------------------------
class Worker:
    """One framework's live worker process."""

    def __init__(self, device, fw):
        self.fw = fw
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.paired", device, fw],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=memory.child_env())
        kind, payload = self._read()
        if kind != "INFO":
            self.close()
            raise RuntimeError(payload.get("reason", kind))
        self.info = payload

    def ask(self, command):
        """Send one command; (kind, payload) of its reply; ('FAIL', …) if the worker died."""
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except OSError:
            return "FAIL", {"reason": f"worker ended ({self.proc.poll()})"}
        return self._read()

    def _read(self):
        for line in self.proc.stdout:
            kind, _, payload = line.partition(" ")
            if kind in _REPLIES:  # anything else is a framework's own chatter
                return kind, json.loads(payload)
        return "FAIL", {"reason": f"worker ended ({self.proc.wait()})"}

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def measure(run, device, frameworks, names):
    """Time the step workloads ``names`` for ``frameworks`` (gpuprop first) on ``device``, in turns.

    Every workload gets fresh worker processes: a framework's speed must not depend
    on which workloads ran before it. (Measured: PyTorch's CNN step is ~45 ms in a
    fresh process but ~33 ms right after the wide MLP in the same one, because glibc
    then serves its large tensors from already-mapped memory instead of new pages.)
    ``run`` is the ``runner.Run``: records go through ``run.add`` so the document,
    the log and the time budget work as for unpaired figures.
    """
    settings = run.timing(device)
    for name in names:
        wl = workloads.WORKLOADS[name]
        workers = {}
        try:
            for fw in frameworks:
                if fw != "gpuprop" and run.over_budget():
                    run.add(run.base(wl, device, fw), "n/a", "skipped: --time-budget reached")
                    continue
                try:
                    workers[fw] = Worker(device, fw)
                    run.doc["machine"].update({k: v for k, v in workers[fw].info.items() if v is not None})
                except Exception as exc:  # noqa: BLE001 - the worker could not even start
                    run.add(run.base(wl, device, fw), "error", f"worker did not start ({exc})")
            _one_workload(run, device, workers, wl, settings)
        finally:
            for w in workers.values():
                w.close()


def set_up(workers, name, settings):
    """Build and warm up ``name`` in every worker.

    Returns ({fw: READY payload}, {fw: steps per repeat}, {fw: reason it could not}).
    """
    ready, steps, failed = {}, {}, {}
    for fw, w in workers.items():
        kind, r = w.ask(f"SETUP {name} {settings['warmup']}")
        if kind != "READY":
            failed[fw] = r.get("reason", kind)
            continue
        ready[fw] = r
        steps[fw] = timing.steps_for(r["one_step_s"], settings["min_repeat_s"], settings["max_steps"])
    return ready, steps, failed


def take_turns(workers, order, name, steps, repeats, device, after=None):
    """``repeats`` rounds of one timed repeat per framework, in ``order`` and then reversed.

    Returns ({fw: [seconds per step, or None where a repeat failed]}, one entry per round;
    {fw: [other_cpu_pct of each repeat that reported one]}). ``after(fw)`` runs right after
    each framework's turn.
    """
    times = {fw: [] for fw in order}
    others = {fw: [] for fw in order}
    for i in range(repeats):
        for fw in (order if i % 2 == 0 else order[::-1]):
            time.sleep(GAP_S.get(device, 0.1))
            kind, r = workers[fw].ask(f"REPEAT {name} {steps[fw]}")
            times[fw].append(r["s"] if kind == "TIME" else None)
            if kind == "TIME" and r.get("other_cpu_pct") is not None:
                others[fw].append(r["other_cpu_pct"])
            if after is not None:
                after(fw)
    return times, others


def round_ratios(times, fw):
    """Per round, ``fw``'s time ÷ gpuprop's: gpuprop's speed over ``fw``'s, rounds where both ran."""
    return [p / g for p, g in zip(times[fw], times.get("gpuprop") or []) if p is not None and g is not None]


def _one_workload(run, device, workers, wl, settings):
    ready, steps, failed = set_up(workers, wl.name, settings)
    for fw, why in failed.items():
        run.add(run.base(wl, device, fw), "n/a", why)
        run.log(f"[{device}] {wl.name:<9} {fw:<13} n/a: {why}")
    # A workload judged against the sgemm ceiling has the ceiling's products timed in gpuprop's
    # turns too, so step and ceiling see the same moment of the machine (the ceiling alone moved
    # 147 → 173 GFLOP/s between two runs minutes apart). Per round the ceiling is the best size.
    gemms = []
    sizes = [(c["m"], c["k"], c["n"]) for c in (run.doc["ceilings"].get(device) or {}).get("sizes", [])]
    if wl.paired_ceiling and "gpuprop" in ready:
        for m, k, n in sizes:
            kind, r = workers["gpuprop"].ask(f"GEMM {m} {k} {n} 1")
            if kind == "TIME":
                gemms.append((f"{m} {k} {n}", 2.0 * m * k * n,
                              timing.steps_for(r["s"], settings["min_repeat_s"] / 2, settings["max_steps"])))
    ceiling = []

    def ceiling_turn(fw):
        if fw == "gpuprop" and gemms:
            rates = []
            for size, flop, reps in gemms:
                kind, r = workers[fw].ask(f"GEMM {size} {reps}")
                if kind == "TIME":
                    rates.append(flop / r["s"] / 1e9)
            ceiling.append(max(rates) if rates else None)

    order = list(ready)
    times, others = take_turns(workers, order, wl.name, steps, settings["repeats"], device, after=ceiling_turn)
    for fw in order:
        kind, mem = workers[fw].ask(f"DONE {wl.name}")
        ts = [t for t in times[fw] if t is not None]
        if not ts:
            run.add(run.base(wl, device, fw), "n/a", "every timed repeat failed")
            continue
        rec = run.base(wl, device, fw)
        rec.update(summarize(ts), steps_per_repeat=steps[fw], repeats=len(ts), warmup=settings["warmup"],
                   paired=True, first_loss=ready[fw]["first_loss"], note=ready[fw].get("note", ""))
        pct = others[fw]
        # Like the figure itself, the flag is a median: one disturbed repeat moves neither.
        rec["other_cpu_pct"] = median(pct) if pct else None
        rec["other_cpu_pct_max"] = max(pct) if pct else None
        rec["samples_per_s"] = wl.batch / (rec["ms_per_step"] / 1000.0)
        if kind == "END":
            rec.update(mem)
        if fw == "gpuprop" and ceiling:
            flop = workloads.flops_per_step(wl)
            rounds = [flop / t / 1e9 / c for t, c in zip(times[fw], ceiling) if t is not None and c]
            if rounds:
                rec.update(paired_ceiling_fraction=quantile(rounds, 0.5), paired_ceiling_rounds=rounds,
                           paired_ceiling_gflops=quantile([c for c in ceiling if c], 0.5),
                           paired_ceiling_sizes=[[int(v) for v in g[0].split()] for g in gemms])
        if fw != "gpuprop":
            rounds = round_ratios(times, fw)
            if rounds:
                rec.update(paired_ratio=quantile(rounds, 0.5), paired_ratio_q1=quantile(rounds, 0.25),
                           paired_ratio_q3=quantile(rounds, 0.75), paired_rounds=rounds)
        run.add(rec)
        run.log(f"[{device}] {wl.name:<9} {fw:<13} {rec['ms_per_step']:9.3f} ms/step "
                f"{rec['samples_per_s']:12,.0f} samples/s" +
                (f"   gpuprop ÷ {fw}: {rec['paired_ratio']:.2f}× (paired)" if "paired_ratio" in rec else ""))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
