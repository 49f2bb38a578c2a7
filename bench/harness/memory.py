"""Peak memory of a training step: host RSS in a fresh process, device memory in process.

Host: ``peak_host_mb`` comes from a fresh Python process per (workload,
framework, device) running ``python -m harness.memory``: it imports
the framework, initialises the device, makes the initial weights and the data
batches and uploads them, then resets the kernel's RSS high-water mark
(``/proc/self/clear_refs`` ← 5) and reads the RSS as the baseline, builds the
model, runs a few steps and reads the high-water mark (``VmHWM``). The
difference (``host_delta_mb``) is what the model, its gradients, optimizer
state, activations and the framework's workspace cost; the absolute peak also
counts the framework's import (torch and jax are much larger than NumPy).
Without /proc (not Linux) ``ru_maxrss`` stands in, and the delta can then
understate: memory freed before the baseline still counts in its high-water.
Device: measured in the benchmark process around build + steps, after the data
is on the device. gpuprop/CuPy: the memory pool's ``total_bytes()`` after the
steps minus its ``used_bytes()`` before (the pool keeps freed blocks, so its
total is its high-water; cached blocks are released first). PyTorch:
``max_memory_allocated`` and ``max_memory_reserved`` from the same starting
point (allocated is the tighter figure; reserved is the pool-to-pool match).
JAX: live bytes after the steps, since its peak counter cannot be reset.
"""

import gc
import json
import os
import resource
import subprocess
import sys

MB = 1024.0 * 1024.0


def rss_peak_mb():
    """This process's RSS high-water in MB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (MB if sys.platform == "darwin" else 1024.0)


def _status_mb(field):
    """A VmXXX line of /proc/self/status in MB, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak():
    """Reset the kernel's RSS high-water mark (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_mb("VmHWM") is not None


class DevicePeak:
    """Device memory used by build + steps of one trainer; ``start()`` before build, ``stop()`` after."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.fw = trainer.framework
        self.on_gpu = trainer.device == "gpu"

    def start(self):
        if not self.on_gpu:
            return
        gc.collect()
        if self.fw == "gpuprop":
            import cupy  # only ever reached with the CuPy backend

            pool = cupy.get_default_memory_pool()
            pool.free_all_blocks()
            self.base = pool.used_bytes()
        elif self.fw.startswith("torch"):
            torch = self.trainer.torch
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = (torch.cuda.memory_allocated(), torch.cuda.memory_reserved())
        elif self.fw == "jax":
            self.base = (self.trainer.dev.memory_stats() or {}).get("bytes_in_use")

    def stop(self):
        """A dict of MB figures (with 'device_mem_how'), or None on the CPU."""
        if not self.on_gpu:
            return None
        self.trainer.sync()
        if self.fw == "gpuprop":
            import cupy

            total = cupy.get_default_memory_pool().total_bytes()
            return {"device_peak_mb": (total - self.base) / MB, "device_mem_how": "CuPy pool high-water"}
        if self.fw.startswith("torch"):
            torch = self.trainer.torch
            a0, r0 = self.base
            return {"device_peak_mb": (torch.cuda.max_memory_allocated() - a0) / MB,
                    "device_reserved_mb": (torch.cuda.max_memory_reserved() - r0) / MB,
                    "device_mem_how": "torch max_memory_allocated (reserved beside)"}
        stats = self.trainer.dev.memory_stats() or {}
        if self.base is None or "bytes_in_use" not in stats:
            return {"device_peak_mb": None, "device_mem_how": "n/a: jax reports no memory stats here"}
        return {"device_peak_mb": (stats["bytes_in_use"] - self.base) / MB,
                "device_mem_how": "jax live bytes after steps (no resettable peak)"}


def probe(workload_name, framework, device, steps=5):
    """Run in a fresh process: the RSS figures described in the module docstring."""
    from gpuprop.bench import peers as trainer_mod
    from . import workloads

    wl = workloads.WORKLOADS[workload_name]
    weights = workloads.reference_weights(wl)
    batches = workloads.host_batches(wl)
    t = trainer_mod.make(framework, wl, device)
    t.load(batches)
    t.sync()
    gc.collect()
    exact = reset_peak()
    base = _status_mb("VmRSS") if exact else rss_peak_mb()
    t.build(weights)
    for _ in range(steps):
        t.step()
    t.sync()
    peak = _status_mb("VmHWM") if exact else rss_peak_mb()
    return {"peak_host_mb": peak, "host_baseline_mb": base, "host_delta_mb": peak - base,
            "host_mem_how": "VmHWM after clear_refs" if exact else "ru_maxrss (delta may understate)"}


def child_env():
    """The environment for benchmark child processes: this gpuprop first on the import path."""
    env = dict(os.environ)
    bench = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # harness.* lives here
    root = os.path.dirname(bench)  # and this checkout's gpuprop here
    env["PYTHONPATH"] = os.pathsep.join(p for p in (bench, root, env.get("PYTHONPATH")) if p)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def host_peak(workload_name, framework, device, steps=5, timeout=300):
    """``probe`` in a child process; a dict, or {'host_mem_error': reason} when it failed."""
    env = child_env()
    cmd = [sys.executable, "-m", "harness.memory", workload_name, framework, device, str(steps)]
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"host_mem_error": f"probe timed out after {timeout} s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"host_mem_error": f"probe failed: {tail[:160]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    name, fw, dev = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    print(json.dumps(probe(name, fw, dev, n)))
