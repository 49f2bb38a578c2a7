"""What exact GELU costs on the CPU: the MLP step with gelu against the same step with relu, paired rounds.

    python bench/gelu.py [--rounds 30] [--dtype float32]

Two MLP 784-512-512-10 models (batch 128, SGD momentum 0.9, the ``mlp`` workload)
differ only in the hidden activation, 'relu' or 'gelu'. In every round each
takes one repeat of K training steps on the same batches, the order alternating;
the figure is the median over rounds of gelu ÷ relu time. Also printed: the gelu
ops alone (training forward + backward on a 128 × 512 array) against relu's, same pairing.

BLAS runs one thread unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise (as
bench/ab_commits.py does): on a shared machine, BLAS threads spinning for busy cores
stretch the matmuls twentyfold and the ratio says nothing about the activation.
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads its BLAS
    os.environ.setdefault(_var, "1")

import numpy  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpuprop import config  # noqa: E402
from gpuprop.bench import workloads  # noqa: E402
from gpuprop.ops import Ops  # noqa: E402


def _paired(run, rounds, min_s=0.05):
    """Median over rounds of run['gelu'](k) ÷ run['relu'](k) time, and the median ms of one relu and gelu call."""
    for f in run.values():
        f(3)
    t0 = time.perf_counter()
    run["relu"](5)
    k = max(1, int(min_s / ((time.perf_counter() - t0) / 5)))
    ratios, ms = [], {"relu": [], "gelu": []}
    for r in range(rounds):
        times = {}
        for which in (("relu", "gelu") if r % 2 else ("gelu", "relu")):
            t0 = time.perf_counter()
            run[which](k)
            times[which] = time.perf_counter() - t0
            ms[which].append(1000 * times[which] / k)
        ratios.append(times["gelu"] / times["relu"])
    return statistics.median(ratios), k, {w: statistics.median(v) for w, v in ms.items()}


def step_runs(dtype):
    config.set_floatx(dtype)
    base = workloads.WORKLOADS["mlp"]
    batches = [(x.astype(dtype), y) for x, y in workloads.host_batches(base)]
    runs = {}
    for act in ("relu", "gelu"):
        layers = tuple((k, n, act if a == "relu" else a) for k, n, a in base.layers)
        model = workloads.build_gpuprop(dataclasses.replace(base, layers=layers), "cpu", seed=0)

        def run(k, model=model, state={"i": 0}):  # noqa: B006 - the position in the batches, per model
            for _ in range(k):
                x, y = batches[state["i"] % len(batches)]
                state["i"] += 1
                model.train_step(x, y)
        runs[act] = run
    return runs


def op_runs(dtype):
    ops = Ops(numpy)
    x = numpy.random.default_rng(0).standard_normal((128, 512)).astype(dtype)
    dy = numpy.ones_like(x)

    def relu(k):
        for _ in range(k):
            y = ops.relu(x)
            ops.relu_backward(dy.copy(), y)

    def gelu(k):
        for _ in range(k):
            _, s = ops.gelu_with_slope(x)
            ops.gelu_backward(dy.copy(), s)
    return {"relu": relu, "gelu": gelu}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    for name, runs in (("mlp step", step_runs(args.dtype)), ("ops 128x512", op_runs(args.dtype))):
        ratio, k, ms = _paired(runs, args.rounds)
        print(f"{name:<12} {args.dtype}: gelu ÷ relu = {ratio:.3f} (median of {args.rounds} paired rounds of {k}; "
              f"relu {ms['relu']:.3f} ms, gelu {ms['gelu']:.3f} ms)", flush=True)


if __name__ == "__main__":
    main()
