"""One benchmark run: ceilings, then every (device, workload, framework), into one JSON document.

The document (``SCHEMA``):

    machine   CPU model, cores, GPU, versions of python/numpy(+BLAS)/cupy/torch/jax, env
    settings  devices, workloads, peers, timing settings, the FLOP formula
    ceilings  {device: {gflops, best_size, sizes: [...]}}
    records   one per (workload, device, framework) with status 'ok', 'n/a' or 'error' (+ reason)

A record's figures: ms_per_step (median over repeats), samples_per_s,
gflop_per_step, gflops, ceiling_fraction, first_loss (loss of the first step
from the shared initial weights: equal across frameworks when the models are
the same), speedup_vs_cpu (gpu records: this framework's gpu ÷ cpu samples/s),
gpuprop_ratio (peer records: gpuprop samples/s ÷ this peer's; > 1 means gpuprop
is faster; for paired figures, the median of the per-round ratios, see
``paired``), and memory figures (see ``memory``). Nothing here ever raises for
a peer: a failure becomes a record with status 'n/a' and the reason.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from gpuprop.backend import get_backend
from . import machine, memory, paired, timing, workloads
from .derived import finish
from .selection import PEERS, devices_for, frameworks_for, parse_peers, peer_missing  # noqa: F401 (re-exported)

SCHEMA = "gpuprop-bench/1"
BUSY_PCT = 10  # other processes' CPU use (% of one core) above which a CPU figure is measured again
FLOPS_FORMULA = ("Σ over matmuls 2·m·k·n × 3 (forward, dW, dx); × 2 for the first layer with weights "
                 "(no dx); conv as its im2col GEMM; bias/activation/pool/loss/optimizer not counted")


class Run:
    def __init__(self, devices="all", workload_names=None, peers=("torch", "jax"), quick=False, quick_cpu=False,
                 repeats=None, host_memory=None, time_budget=None, out_path=None, log=None, retry_busy=None):
        self.devices = devices_for(devices) if isinstance(devices, str) else list(devices)
        self.workloads = workloads.select(workload_names, quick)
        self.peers = tuple(peers)
        self.quick, self.quick_cpu = quick, quick_cpu
        self.repeats = repeats
        self.host_memory = (not quick) if host_memory is None else host_memory
        self.time_budget = time_budget
        self.retry_busy = (0 if quick else 2) if retry_busy is None else retry_busy
        self.out_path = out_path
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.t_start = time.perf_counter()
        backends = [get_backend(d) for d in self.devices]
        self.doc = {
            "schema": SCHEMA,
            "machine": machine.info(backends, peers=()),  # workers add torch/jax details
            "settings": {"devices": self.devices, "workloads": [w.name for w in self.workloads],
                         "peers": list(self.peers), "quick": quick, "quick_cpu": quick_cpu,
                         "timing": {d: self.timing(d) for d in self.devices},
                         "host_memory": self.host_memory, "flops": FLOPS_FORMULA,
                         "workload_descriptions": {w.name: w.description for w in self.workloads}},
            "ceilings": {},
            "records": [],
        }

    # --- settings --------------------------------------------------------------------------
    def is_quick(self, device):
        return self.quick or (self.quick_cpu and device == "cpu")

    def timing(self, device):
        return timing.settings(self.is_quick(device), self.repeats)

    def over_budget(self, fraction=1.0):
        """True once ``fraction`` of --time-budget is spent (torch.compile, slow to compile, stops at 60 %)."""
        return self.time_budget is not None and time.perf_counter() - self.t_start > fraction * self.time_budget

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        """One worker per device (GPU first) and framework (gpuprop first, torch.compile last); see ``worker``."""
        # `timeout` sends SIGTERM: turn it into an exception so the running worker is killed, not orphaned.
        old = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
            else None
        try:
            return self._run()
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)

    def _run(self):
        # Step workloads are timed in turns across frameworks (``paired``); the epoch (gpuprop only)
        # and the ceiling run in one plain worker. torch.compile is the slowest to start and the most
        # optional: it goes after every other figure, so a --time-budget cuts it first.
        steps = [w.name for w in self.workloads if w.kind == "step"]
        for device in self.devices:
            fws = [fw for fw in frameworks_for(device, self.peers) if fw != "torch-compile"]
            self.run_worker(device, "gpuprop", kinds=("epoch",), ceiling=True)
            runnable, peers = self.screen(device, fws, steps)
            if runnable:
                paired.measure(self, device, peers, runnable)
        for device in self.devices:
            if "torch-compile" in frameworks_for(device, self.peers):
                self.run_worker(device, "torch-compile")
        for attempt in range(self.retry_busy):
            if not self.retry_busy_rows(attempt + 1):
                break
        if self.host_memory:
            self.probe_host_memory()
        self.doc["machine"]["load_after"] = machine.load_average()
        finish(self.doc)
        self.save()
        return self.doc

    def busy_rows(self):
        # Paired figures are not retried alone: that would unpair them, and their ratio already
        # compares repeats that shared whatever load there was.
        return [r for r in self.doc["records"] if r["status"] == "ok" and r["device"] == "cpu"
                and not r.get("paired") and (r.get("other_cpu_pct") or 0) > BUSY_PCT]

    def ceiling_busy(self):
        c = self.doc["ceilings"].get("cpu") or {}
        return max((s.get("other_cpu_pct") or 0 for s in c.get("sizes", [])), default=0) > BUSY_PCT

    def retry_busy_rows(self, attempt):
        """Measure again the CPU rows (and ceiling) other processes disturbed; keep the less disturbed figure."""
        busy = self.busy_rows()
        ceiling = "cpu" in self.devices and self.ceiling_busy()
        if not (busy or ceiling) or self.over_budget():
            return False
        self.log(f"{len(busy)} CPU figure(s) were measured while other processes used the CPU: "
                 f"waiting for a quiet CPU, then measuring them again (attempt {attempt})")
        machine.wait_for_quiet(60.0, BUSY_PCT)
        groups = {"gpuprop": []} if ceiling else {}
        for r in busy:
            groups.setdefault(r["framework"], []).append(r["workload"])
        for fw, names in groups.items():
            self.run_worker("cpu", fw, only=names, retry=True, ceiling=ceiling and fw == "gpuprop")
        return True

    def screen(self, device, frameworks, names):
        """(workloads gpuprop can build here, frameworks installed here); n/a records for the rest."""
        runnable, fws = [], ["gpuprop"]
        for name in names:
            ok, why = workloads.available(workloads.WORKLOADS[name])
            if ok:
                runnable.append(name)
            else:
                for fw in frameworks:
                    self.add(self.base(workloads.WORKLOADS[name], device, fw), "n/a", why)
        for fw in frameworks[1:]:
            missing = peer_missing(fw, device, deep=False)
            if missing is None:
                fws.append(fw)
                continue
            self.log(f"[{device}] {fw}: n/a: {missing}")
            for name in runnable:
                self.add(self.base(workloads.WORKLOADS[name], device, fw), "n/a", missing)
        return runnable, fws

    def run_worker(self, device, fw, only=None, retry=False, ceiling=None, kinds=("step", "epoch")):
        names = []
        for wl in self.workloads:
            if only is not None:
                if wl.name in only:
                    names.append(wl.name)
                continue
            if wl.kind not in kinds:
                continue
            ok, why = workloads.available(wl)
            missing = None if fw == "gpuprop" else peer_missing(fw, device, deep=False)
            if wl.kind == "epoch" and fw != "gpuprop":
                continue  # the epoch compares gpuprop's loop with gpuprop's steps
            if not ok or missing:
                self.add(self.base(wl, device, fw), "n/a", why or missing)
                self.log(f"[{device}] {wl.name:<9} {fw:<13} n/a: {why or missing}")
            else:
                names.append(wl.name)
        ceiling = fw == "gpuprop" if ceiling is None else ceiling
        if not names and not ceiling:
            return
        deadline = None
        if self.time_budget is not None and fw != "gpuprop":
            deadline = time.time() - (time.perf_counter() - self.t_start) + self.time_budget
        spec = {"device": device, "framework": fw, "workloads": names, "timing": self.timing(device),
                "quick": self.is_quick(device), "ceiling": ceiling, "deadline": deadline}
        seen, proc = set(), None
        try:
            proc = subprocess.Popen([sys.executable, "-m", "harness.worker", json.dumps(spec)],
                                    stdout=subprocess.PIPE, text=True, env=memory.child_env())
            for line in proc.stdout:
                kind, _, payload = line.partition(" ")
                if kind == "RECORD":
                    rec = json.loads(payload)
                    seen.add(rec["workload"])
                    status, reason = rec.pop("status"), rec.pop("reason", "")
                    full = self.base(workloads.WORKLOADS[rec["workload"]], device, fw)
                    full.update(rec)
                    if retry:
                        self.replace_if_calmer(full, status)
                    else:
                        self.add(full, status, reason)
                elif kind == "CEILING":
                    new = json.loads(payload)
                    old = self.doc["ceilings"].get(device)
                    if old is None or _busiest(new) < _busiest(old):
                        self.doc["ceilings"][device] = new
                    self.save()
                elif kind == "INFO":
                    self.doc["machine"].update({k: v for k, v in json.loads(payload).items() if v is not None})
            rc = proc.wait()
        except Exception as exc:  # noqa: BLE001 - the worker could not even start; recorded below
            rc = reason_of(exc)
        finally:
            if proc is not None and proc.poll() is None:  # interrupted: never leave a worker behind
                proc.kill()
                proc.wait()
        for name in names:
            if name not in seen:  # the worker died (segfault, OOM killer) before reporting it
                self.add(self.base(workloads.WORKLOADS[name], device, fw), "error", f"worker ended ({rc})")

    def replace_if_calmer(self, new, status):
        recs = self.doc["records"]
        for i, old in enumerate(recs):
            if (old["workload"], old["device"], old["framework"]) == (new["workload"], new["device"], new["framework"]):
                tries = old.get("busy_retries", 0) + 1
                if status == "ok" and (new.get("other_cpu_pct") or 0) < (old.get("other_cpu_pct") or 0):
                    new.update(status="ok", busy_retries=tries, replaced_busy_pct=old.get("other_cpu_pct"))
                    recs[i] = new
                else:
                    old["busy_retries"] = tries
                self.save()
                return

    def probe_host_memory(self):
        """Peak host RSS per (workload, framework, device), each in a fresh process; see ``memory``."""
        for rec in self.doc["records"]:
            if rec["status"] != "ok" or rec["kind"] != "step" or rec["framework"] == "torch-compile":
                continue
            if self.over_budget():
                rec["host_mem_error"] = "skipped: --time-budget reached"
                continue
            self.log(f"[{rec['device']}] {rec['workload']:<9} {rec['framework']:<13} host memory probe ...")
            rec.update(memory.host_peak(rec["workload"], rec["framework"], rec["device"]))
            self.save()

    # --- records ---------------------------------------------------------------------------------
    def base(self, wl, device, fw):
        return {"workload": wl.name, "device": device, "framework": fw, "batch": wl.batch,
                "kind": wl.kind, "gflop_per_step": workloads.flops_per_step(wl) / 1e9}

    def add(self, rec, status="ok", reason=""):
        rec["status"] = status
        if reason:
            rec["reason"] = reason
        self.doc["records"].append(rec)
        self.save()

    def save(self):
        """Write the document so far (atomically): a run killed by a timeout still leaves its records."""
        if not self.out_path:
            return
        finish(self.doc)  # idempotent: a partial document carries its ratios too
        tmp = f"{self.out_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1, default=_jsonable)
        os.replace(tmp, self.out_path)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def _busiest(ceiling):
    return max((s.get("other_cpu_pct") or 0 for s in ceiling.get("sizes", [])), default=0)


def reason_of(exc):
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def _jsonable(obj):
    try:
        return float(obj)
    except (TypeError, ValueError):
        return str(obj)
