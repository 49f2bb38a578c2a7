"""The matmul ceiling: float32 GEMM throughput of the device, measured in the same run.

A workload's achieved GFLOP/s is reported as a fraction of the best of these
sgemm rates (``xp.matmul(a, b, out=c)`` on the backend's own array module, so
NumPy's BLAS on the CPU and cuBLAS through CuPy on the GPU). The sizes include
the wide MLP's largest product, 1024×4096 @ 4096×4096, so "wide at 85 % of the
ceiling" compares a training step against the very GEMM it is made of.
"""

import numpy

from gpuprop.backend import get_backend
from .machine import OtherLoad
from .timing import measure

SIZES = {
    "cpu": [(1024, 1024, 1024), (1024, 4096, 4096)],
    "gpu": [(1024, 4096, 4096), (4096, 4096, 4096), (8192, 8192, 8192)],
}
QUICK_SIZES = {"cpu": [(1024, 1024, 1024)], "gpu": [(1024, 4096, 4096), (4096, 4096, 4096)]}


def sgemm(backend, m, k, n):
    """A function computing one float32 (m×k)·(k×n) product on ``backend`` into a kept output."""
    rng = numpy.random.default_rng(0)
    xp = backend.xp
    a = backend.asarray(rng.standard_normal((m, k), dtype=numpy.float32))
    b = backend.asarray(rng.standard_normal((k, n), dtype=numpy.float32))
    c = xp.empty((m, n), dtype=numpy.float32)
    return lambda: xp.matmul(a, b, out=c)


def sgemm_gflops(backend, m, k, n, timing):
    """Median GFLOP/s of an (m×k)·(k×n) float32 product on ``backend`` (2·m·k·n FLOPs each)."""
    r = measure(sgemm(backend, m, k, n), backend.synchronize, **timing)
    return 2.0 * m * k * n / (r["ms_per_step"] / 1000.0) / 1e9, r


def measure_ceiling(device, timing, quick=False):
    """``{'gflops': best, 'sizes': [{'m','k','n','gflops','spread'}...]}`` for 'cpu' or 'gpu'."""
    backend = get_backend(device)
    kind = "gpu" if backend.is_gpu else "cpu"
    timing = dict(timing, warmup=max(1, timing.get("warmup", 1)))
    rows = []
    for m, k, n in (QUICK_SIZES if quick else SIZES)[kind]:
        with OtherLoad() as other:
            gflops, r = sgemm_gflops(backend, m, k, n, timing)
        rows.append({"m": m, "k": k, "n": n, "gflops": gflops, "ms": r["ms_per_step"], "spread": r["spread"],
                     "other_cpu_pct": other.pct})
    best = max(rows, key=lambda r: r["gflops"])
    return {"gflops": best["gflops"], "best_size": [best["m"], best["k"], best["n"]], "sizes": rows,
            "how": "median sgemm xp.matmul(a, b, out=c), float32; the best size is the ceiling"}
