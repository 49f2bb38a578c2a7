"""One timed data-parallel training run: gpuprop under MPI, or PyTorch DDP over gloo; run by bench/ddp_compare.py.

    mpiexec -n 2 python bench/ddp_worker.py --engine gpuprop --model mlp --batch 128 --steps 60
    mpiexec -n 2 python bench/ddp_worker.py --engine torch --model mlp --batch 128 --steps 60 --port 29517
    python bench/ddp_worker.py --engine gpuprop --model mlp --batch 128 --steps 60      (one process)

Both engines train the same architecture with Adam on the same synthetic
MNIST-shaped data, ``--batch`` being the global batch split across ranks. One
pass of ``--steps`` steps warms up, the second is timed; rank 0 prints one
JSON line: global samples/s, seconds per step and (gpuprop) the mean time per
step spent in the gradient allreduce.
"""

import argparse
import json
import os
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def data(batch, steps):
    rng = numpy.random.default_rng(0)
    n = batch * steps
    return rng.integers(0, 256, size=(n, 28, 28), dtype=numpy.uint8), rng.integers(0, 10, size=n)


def run_gpuprop(args):
    from gpuprop import distributed, optimizers, zoo
    from gpuprop.distributed.parallel import DataParallel

    spent = []
    reduce = DataParallel.reduce_gradients

    def timed(self, model):  # instrumentation only: the allreduce (and its scaling) per step
        t = time.perf_counter()
        reduce(self, model)
        spent.append(time.perf_counter() - t)

    DataParallel.reduce_gradients = timed
    x, y = data(args.batch, args.steps)
    model = zoo.build(args.model, device="cpu", seed=0)
    model.compile(optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x / 255.0, y, batch_size=args.batch, epochs=2, verbose=0)
    stats = history.stats[1]
    timed_steps = spent[len(spent) // 2:]
    return distributed.world().rank, {
        "samples_per_sec": stats["samples_per_sec"], "step_s": stats["time"] / stats["steps"],
        "allreduce_s": sum(timed_steps) / len(timed_steps) if timed_steps else 0.0,
        "params": model.count_params()}


def torch_model(name, torch):
    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


def run_torch(args):
    import torch
    import torch.distributed as dist

    size = int(os.environ.get("PMI_SIZE", "1"))
    rank = int(os.environ.get("PMI_RANK", "0"))
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    torch.manual_seed(0)
    model = torch_model(args.model, torch)
    if size > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=size)
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    x, y = data(args.batch, args.steps)
    local = args.batch // size
    x = torch.from_numpy((x / 255.0).astype(numpy.float32)).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(y)

    def epoch():
        perm = torch.randperm(len(x))
        for s in range(args.steps):
            idx = perm[s * args.batch + rank * local: s * args.batch + (rank + 1) * local]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    epoch()
    if size > 1:
        dist.barrier()
    t = time.perf_counter()
    epoch()
    if size > 1:
        dist.barrier()
    wall = time.perf_counter() - t
    result = {"samples_per_sec": args.batch * args.steps / wall, "step_s": wall / args.steps}
    if size > 1:
        dist.destroy_process_group()
    return rank, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["gpuprop", "torch"], required=True)
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--batch", type=int, required=True, help="global batch")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--port", type=int, default=29517)
    args = ap.parse_args()
    rank, result = (run_gpuprop if args.engine == "gpuprop" else run_torch)(args)
    if rank == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
