"""What the figures were measured on: CPU, GPU, library versions, BLAS, environment."""

import datetime
import os
import platform
import sys
import time

import numpy

# Variables that change how fast the CPU libraries run; recorded so a figure can be reproduced.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
               "OPENBLAS_L2_SIZE", "XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "CUPY_TF32")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numpy_blas():
    """NumPy's BLAS as 'name version' (e.g. 'scipy-openblas 0.3.31'), or None where NumPy does not say."""
    try:
        cfg = numpy.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # noqa: BLE001 - show_config's layout varies between NumPy versions
        return None


def _version(dist):
    """Installed version of a distribution, read from its metadata (no slow import of torch or jax)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def load_average():
    """1-minute load average, or None where the OS has none: other processes on the CPU skew CPU timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _idle_s():
    """Idle + iowait time summed over all CPUs, in seconds, from /proc/stat (Linux); None elsewhere.

    The kernel keeps idle time exactly and reports it in 10 ms units, whereas the
    busy fields (user, system, ...) are sampled once per tick: over a 0.25 s repeat
    a single misattributed tick reads as 4 % of a core.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[3] + (fields[4] if len(fields) > 4 else 0)) / os.sysconf("SC_CLK_TCK")


def _online_cpus():
    """CPUs that /proc/stat's first line sums over (its cpuN lines), or os.cpu_count()."""
    try:
        with open("/proc/stat") as f:
            return sum(1 for line in f if line.startswith("cpu") and line[3:4].isdigit()) or os.cpu_count()
    except OSError:
        return os.cpu_count()


def _own_cpu():
    # process_time() is exact (CLOCK_PROCESS_CPUTIME_ID, all threads); os.times() counts in ticks.
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


_CPUS = _online_cpus()


class OtherLoad:
    """CPU time other processes used while a figure was measured, as % of one core.

    ``with OtherLoad() as o: ...`` then ``o.pct``: (CPUs × wall time − idle
    time − this process's CPU time) / wall time. Above ~10 % another process shared the
    CPU and a CPU figure is suspect (OpenBLAS and OpenMP threads that wait for
    each other slow down many-fold when a core is taken away).
    """

    def __enter__(self):
        self.t0, self.idle0, self.own0 = time.perf_counter(), _idle_s(), _own_cpu()
        self.pct = None
        return self

    def __exit__(self, *exc):
        idle1, wall = _idle_s(), time.perf_counter() - self.t0
        if self.idle0 is not None and idle1 is not None and wall > 0:
            busy = _CPUS * wall - (idle1 - self.idle0)
            self.pct = max(0.0, 100.0 * (busy - (_own_cpu() - self.own0)) / wall)
        return False


def wait_for_quiet(max_s=60.0, threshold_pct=10.0, window_s=1.0):
    """Sleep until other processes use < ``threshold_pct`` % of a core for 3 windows in a row, or ``max_s``.

    Returns True when the machine went quiet.
    """
    deadline, calm = time.perf_counter() + max_s, 0
    while time.perf_counter() < deadline:
        with OtherLoad() as o:
            time.sleep(window_s)
        if o.pct is None:
            return True
        calm = calm + 1 if o.pct < threshold_pct else 0
        if calm >= 3:
            return True
    return False


def info(backends=(), peers=("torch", "jax")):
    """A JSON-able dict; ``backends`` are the gpuprop Backends in use (their describe() names the GPU).

    torch and jax are imported (for thread counts and devices) only when they are among ``peers``.
    """
    out = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numpy_blas": numpy_blas(),
        "cupy": None, "torch": None, "jax": None,
        "gpu": None,
        "env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        "argv": " ".join(sys.argv),
        "load_before": load_average(),
    }
    for b in backends:
        if b.is_gpu:
            out["gpu"] = b.describe()
            out["cupy"] = b.xp.__version__
    out["torch"] = _version("torch")
    if out["torch"] and any(p.startswith("torch") for p in peers):
        import torch

        out["torch_threads"] = torch.get_num_threads()
        out["torch_cuda"] = torch.version.cuda
    out["jax"] = _version("jax")
    if out["jax"] and "jax" in peers:
        try:
            import jax

            out["jax_devices"] = [str(d) for d in jax.devices()]
        except Exception as exc:  # noqa: BLE001 - a jax without a working backend still imports
            out["jax_devices"] = f"n/a ({str(exc).splitlines()[0][:80]})"
    return out
