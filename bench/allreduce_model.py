"""Allreduce time on this machine, a latency + bytes/bandwidth fit, and a projected table for 8, 64 and 512 ranks.

    python bench/allreduce_model.py [--out bench/allreduce_model.json]

1. Times MPI_Allreduce (SUM, float32, in place) on 2 ranks for buffers of 1 KB
   to 16 MB (median of repeats), through the mpich wheel's mpiexec.
2. Fits the ring-allreduce cost model T(p, m) = 2(p−1)·α + 2(p−1)/p · m/β;
   with p = 2 that is T = 2α + m/β, a straight line in the bytes m.
3. Times one rank (1 BLAS thread) training the MLP and the CNN at batch 128:
   c = seconds of compute per sample.
4. Projects, for p = 8, 64, 512 ranks: the allreduce time of each model's
   gradient buffer, and the global batch B* = p·T(p, m)/c at which a rank's
   compute per step (B/p samples) only equals the allreduce. Below B* the
   step is communication-bound even if the allreduce overlapped the backward
   (gpuprop runs it after the backward: there it adds T(p, m) to every step).

This is a PROJECTION from one machine: the ranks talk through shared memory
here, so α and β are a best case for a real network (where α is larger and β
smaller); the projection is a lower bound on the communication cost.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [2 ** k for k in range(10, 25, 2)]  # bytes: 1 KB .. 16 MB
PROJECT = (8, 64, 512)


def worker():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = {}
    for nbytes in SIZES:
        buf = numpy.ones(nbytes // 4, dtype=numpy.float32)
        reps = max(5, min(200, (1 << 22) // nbytes))
        times = []
        for i in range(reps + 3):
            comm.Barrier()
            t = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t)
        out[nbytes] = statistics.median(times[3:])
    times = comm.gather(out)
    if comm.rank == 0:  # the slower rank's time is the collective's
        print(json.dumps({n: max(t[n] for t in times) for n in SIZES}))


def fit(points):
    """T = a + b·m over (m, T), least squares in relative error (1 KB and 16 MB count alike); (α, β) with p = 2."""
    m = numpy.array([p[0] for p in points], dtype=float)
    t = numpy.array([p[1] for p in points], dtype=float)
    b, a = numpy.polyfit(m, t, 1, w=1 / t)
    return max(a, 0.0) / 2, 1 / b


def ring(p, m, alpha, beta):
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * m / beta


def compute_per_sample(model):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.path.dirname(HERE))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "ddp_worker.py"), "--engine", "gpuprop", "--model",
                           model, "--batch", "128", "--steps", "20" if model == "mlp" else "10"],
                          capture_output=True, text=True, env=env, timeout=600, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return r["step_s"] / 128, r["params"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "allreduce_model.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.dirname(HERE))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "mpiexec"), "-n", "2", sys.executable,
                           os.path.abspath(__file__), "--worker"], capture_output=True, text=True, env=env,
                          timeout=600, check=True)
    measured = {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    alpha, beta = fit(sorted(measured.items()))
    models = {}
    for model in ("mlp", "cnn"):
        c, params = compute_per_sample(model)
        m = 4 * params  # float32 gradient buffer
        models[model] = {"params": params, "bytes": m, "compute_s_per_sample": c, "projection": [
            {"ranks": p, "allreduce_ms": ring(p, m, alpha, beta) * 1e3,
             "hidden_from_global_batch": int(numpy.ceil(p * ring(p, m, alpha, beta) / c))} for p in PROJECT]}
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": "python bench/allreduce_model.py", "measured_2_ranks_s": measured,
           "alpha_s": alpha, "beta_bytes_per_s": beta, "models": models}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(markdown(doc))


def markdown(doc):
    lines = [f"Fit on 2 ranks (shared memory): α = {doc['alpha_s'] * 1e6:.1f} µs, β = "
             f"{doc['beta_bytes_per_s'] / 1e9:.2f} GB/s; measured: "
             + ", ".join(f"{n // 1024} KB {t * 1e3:.3f} ms" for n, t in sorted(doc["measured_2_ranks_s"].items())),
             "", "PROJECTION (ring allreduce, T = 2(p−1)α + 2(p−1)/p·m/β; not measured beyond 2 ranks):", "",
             "| model | gradient MB | compute µs/sample (1 rank, 1 thread) | ranks | allreduce ms | "
             "global batch below which the allreduce exceeds the compute |", "|---|---|---|---|---|---|"]
    for name, m in doc["models"].items():
        for row in m["projection"]:
            lines.append(f"| {name} | {m['bytes'] / 1e6:.2f} | {m['compute_s_per_sample'] * 1e6:.0f} | {row['ranks']} "
                         f"| {row['allreduce_ms']:.2f} | {row['hidden_from_global_batch']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
