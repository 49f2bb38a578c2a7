"""Did a change slow the training step? Paired rounds of two git revisions, one worker process each.

    python bench/ab_commits.py OLD_REV [NEW_REV] [--workloads softmax,mlp,cnn] [--rounds 30]

Each revision is checked out into a temporary worktree and gets its own worker
process (so neither shares a thread pool or allocator with the other). Both
build the same zoo model with the same seed and train on the same four
synthetic batches. In every round each worker times one repeat of K steps,
the order alternating, a fraction of a second apart; the figure is the median
over rounds of new ÷ old step time (1.00 = no change, 1.05 = 5 % slower), with
the quartiles of the per-round ratios beside it. NEW_REV defaults to the
working tree itself.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside each worker, against that revision's gpuprop (first on sys.path).
WORKER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from gpuprop import zoo, optimizers
name, batch = sys.argv[2], int(sys.argv[3])
model = getattr(zoo, name)(device="cpu", seed=0)
model.compile(optimizer=optimizers.SGD(learning_rate=0.01, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
if not model.built:
    model.build((28, 28))
rng = np.random.default_rng(0)
batches = [(model.backend.asarray(rng.random((batch, 28, 28), dtype=np.float32)),
            model.backend.asarray(rng.integers(0, 10, batch))) for _ in range(4)]
i = 0
def steps(k):
    global i
    for _ in range(k):
        x, y = batches[i % 4]; i += 1
        model.train_step(x, y)
steps(5)
print("ready", flush=True)
for line in sys.stdin:
    k = int(line)
    t0 = time.perf_counter(); steps(k); dt = time.perf_counter() - t0
    print(json.dumps(dt / k), flush=True)
"""

BATCH = {"softmax": 32, "mlp": 128, "cnn": 128}


def checkout(rev, into):
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", into, rev], check=True)
    return into


class Worker:
    def __init__(self, path, workload):
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, path, workload, str(BATCH[workload])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"worker for {path} failed to start")

    def time(self, k):
        self.proc.stdin.write(f"{k}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def compare(old_path, new_path, workload, rounds, min_s=0.2):
    old, new = Worker(old_path, workload), Worker(new_path, workload)
    try:
        for w in (old, new):  # first calls pay for page faults and thread start-up
            w.time(10)
        per_step = statistics.median(old.time(5) for _ in range(5))
        k = max(1, int(min_s / per_step))
        ratios = []
        for r in range(rounds):
            pair = (old, new) if r % 2 == 0 else (new, old)
            t = {id(w): w.time(k) for w in pair}
            ratios.append(t[id(new)] / t[id(old)])
        q = statistics.quantiles(ratios, n=4)
        return {"workload": workload, "batch": BATCH[workload], "steps_per_repeat": k, "rounds": rounds,
                "new_over_old": statistics.median(ratios), "q1": q[0], "q3": q[2]}
    finally:
        old.close()
        new.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?")
    ap.add_argument("--workloads", default="softmax,mlp,cnn")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gpuprop-ab-")
    paths = [checkout(args.old, os.path.join(tmp, "old"))]
    paths.append(checkout(args.new, os.path.join(tmp, "new")) if args.new else ROOT)
    try:
        for wl in args.workloads.split(","):
            print(json.dumps(compare(paths[0], paths[1], wl, args.rounds)), flush=True)
    finally:
        for p in paths:
            if p != ROOT:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", p], check=False)


if __name__ == "__main__":
    main()
