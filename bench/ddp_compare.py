"""gpuprop on 2 MPI ranks against PyTorch DDP (gloo, 2 processes) and against 1 rank × 2 threads, in paired rounds.

    python bench/ddp_compare.py [--rounds 3] [--quick] [--out bench/ddp_compare.json]

Rows: the MLP (784-512-512-10) at global batch 128 and 1024, the CNN (Keras'
MNIST convnet) at 128; Adam, synthetic MNIST-shaped data (bench/ddp_worker.py).
Each round runs the three contenders back to back in a rotating order and
keeps the ratio of that round, so load from other users of the machine hits
both sides of a ratio alike; the table gives the median ratio over rounds and
every round's ratio. Contenders:

    gpuprop 2 ranks  mpiexec -n 2, OMP_NUM_THREADS=1 per rank (what --ranks 2 sets on 2 cores)
    torch DDP        mpiexec -n 2 python (torch.distributed, gloo over loopback), 1 thread per process
    gpuprop 1 rank   one process, OMP_NUM_THREADS=2

Samples/s are global (both ranks' samples) over the second of two passes.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = [("mlp", 128, 60), ("mlp", 1024, 12), ("cnn", 128, 20)]  # model, global batch, steps per pass


def mpiexec():
    return os.path.join(os.path.dirname(sys.executable), "mpiexec")


def contender(name, model, batch, steps, port):
    worker = [sys.executable, os.path.join(HERE, "ddp_worker.py"), "--model", model, "--batch", str(batch),
              "--steps", str(steps)]
    if name == "gpuprop-2":
        return [mpiexec(), "-n", "2", *worker, "--engine", "gpuprop"], 1
    if name == "torch-ddp-2":
        return [mpiexec(), "-n", "2", *worker, "--engine", "torch", "--port", str(port)], 1
    return [*worker, "--engine", "gpuprop"], 2


def measure(name, model, batch, steps, port):
    cmd, threads = contender(name, model, batch, steps, port)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=os.path.dirname(HERE))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode:
        raise SystemExit(f"{name} {model} {batch} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a quarter of the steps (a smoke run, not figures)")
    ap.add_argument("--out", default=os.path.join(HERE, "ddp_compare.json"))
    args = ap.parse_args(argv)
    names = ["gpuprop-2", "torch-ddp-2", "gpuprop-1x2"]
    rows, port = [], 29517
    for model, batch, steps in ROWS:
        steps = max(2, steps // 4) if args.quick else steps
        rounds = []
        for r in range(args.rounds):
            order = names[r % 3:] + names[:r % 3]
            got = {}
            for name in order:
                port += 1
                got[name] = measure(name, model, batch, steps, port)
            rounds.append(got)
            print(f"{model} {batch} round {r + 1}: " + ", ".join(f"{n} {got[n]['samples_per_sec']:.0f}/s"
                                                                  for n in names), flush=True)
        rows.append(summarise(model, batch, steps, rounds))
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "load_after": os.getloadavg()[0]},
           "versions": versions(), "command": "python bench/ddp_compare.py " + " ".join(argv or sys.argv[1:]),
           "rows": rows}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(markdown(doc))


def summarise(model, batch, steps, rounds):
    def ratios(a, b):
        return [x[a]["samples_per_sec"] / x[b]["samples_per_sec"] for x in rounds]

    med = {n: statistics.median(x[n]["samples_per_sec"] for x in rounds) for n in rounds[0]}
    vs_ddp, vs_one = ratios("gpuprop-2", "torch-ddp-2"), ratios("gpuprop-2", "gpuprop-1x2")
    allreduce = statistics.median(x["gpuprop-2"]["allreduce_s"] for x in rounds)
    step = statistics.median(x["gpuprop-2"]["step_s"] for x in rounds)
    return {"model": model, "batch": batch, "steps": steps, "median_samples_per_sec": med,
            "ratio_vs_ddp": statistics.median(vs_ddp), "ratios_vs_ddp": vs_ddp,
            "ratio_vs_one_rank": statistics.median(vs_one), "ratios_vs_one_rank": vs_one,
            "allreduce_ms": allreduce * 1e3, "step_ms": step * 1e3,
            "params": rounds[0]["gpuprop-2"]["params"]}


def versions():
    out = {"python": platform.python_version()}
    for mod in ("numpy", "torch", "mpi4py"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    try:
        from mpi4py import MPI

        out["mpi"] = " ".join(MPI.Get_library_version().split("\n")[0].replace("Version:", "").split()[:2])
    except ImportError:
        pass
    return out


def markdown(doc):
    lines = ["| model | global batch | gpuprop 2 ranks (samples/s) | torch DDP 2 proc | gpuprop 1 rank × 2 threads "
             "| 2 ranks ÷ DDP (per round) | 2 ranks ÷ 1 rank (per round) | allreduce ms / step ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        m = r["median_samples_per_sec"]
        lines.append(f"| {r['model']} | {r['batch']} | {m['gpuprop-2']:,.0f} | {m['torch-ddp-2']:,.0f} | "
                     f"{m['gpuprop-1x2']:,.0f} | **{r['ratio_vs_ddp']:.2f}×** "
                     f"({', '.join(f'{x:.2f}' for x in r['ratios_vs_ddp'])}) | {r['ratio_vs_one_rank']:.2f}× "
                     f"({', '.join(f'{x:.2f}' for x in r['ratios_vs_one_rank'])}) | "
                     f"{r['allreduce_ms']:.1f} / {r['step_ms']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
