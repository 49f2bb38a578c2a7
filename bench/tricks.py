"""What each speed trick in the hot path buys: paired A/B rounds, trick vs its plain form.

    python bench/tricks.py [--rounds 40] [--workloads softmax,mlp]

For each workload and each trick, two identical models train on the same
batches; in every round each takes one repeat of K steps, the order
alternating, the trick off (plain form patched in) for one of them. The
figure is the median over rounds of plain ÷ trick time: 1.03 means the
trick saves 3 % of a step. Tricks (and their plain forms):

  reduce      Ops.sum/amax are NumPy's ufunc.reduce   vs  the ndarray methods
  sum_batch   bias gradient as ones · dy (BLAS gemv)  vs  dy.sum(axis=0, out=...)

Removed after measuring (under ~2 % of a step, harder to read): SGD's cached
dtype-scalar learning rate multiplied into a kept buffer (1.7-2.1 % of the
softmax step; now ``p -= lr * g``), the last-shape shortcut in front of the
row-constants cache, and the float short-cut in ``current_learning_rate``.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpuprop.bench import workloads  # noqa: E402
from gpuprop.ops import _max_method, _sum_method  # noqa: E402


TRICKS = {
    "reduce": (lambda m: m.backend.ops.__dict__.update(sum=_sum_method, amax=_max_method),
               lambda m: m.backend.ops.__dict__.update(sum=m.xp.add.reduce, amax=m.xp.maximum.reduce)),
    "sum_batch": (lambda m: setattr(m.backend.ops, "sum_batch", lambda dy, out: dy.sum(axis=0, out=out)),
                  lambda m: m.backend.ops.__dict__.pop("sum_batch", None)),
}


def paired(wl, trick, rounds, min_s=0.05):
    plain_on, plain_off = TRICKS[trick]
    models = [workloads.build_gpuprop(wl, "cpu", seed=0) for _ in range(2)]
    batches = [(x, y) for x, y in workloads.host_batches(wl)]
    state = {"i": 0}

    def steps(model, k):
        for _ in range(k):
            x, y = batches[state["i"] % len(batches)]
            state["i"] += 1
            model.train_step(x, y)

    for m in models:
        steps(m, 5)
    t0 = time.perf_counter()
    steps(models[0], 5)
    k = max(1, int(min_s / ((time.perf_counter() - t0) / 5)))
    ratios = []
    for r in range(rounds):
        times = {}
        for which in (("trick", "plain") if r % 2 else ("plain", "trick")):
            m = models[which == "plain"]
            if which == "plain":
                plain_on(m)
            t0 = time.perf_counter()
            steps(m, k)
            times[which] = time.perf_counter() - t0
            if which == "plain":
                plain_off(m)
        ratios.append(times["plain"] / times["trick"])
    return statistics.median(ratios), k, 1000 * times["trick"] / k


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--workloads", default="softmax,mlp")
    args = ap.parse_args()
    for name in args.workloads.split(","):
        wl = workloads.WORKLOADS[name]
        for trick in TRICKS:
            ratio, k, ms = paired(wl, trick, args.rounds)
            print(f"{name:<8} {trick:<12} plain ÷ trick = {ratio:.3f} (median of {args.rounds} paired rounds "
                  f"of {k} steps; {ms:.3f} ms/step with the trick)", flush=True)


if __name__ == "__main__":
    main()
