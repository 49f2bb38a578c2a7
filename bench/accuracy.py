"""Test accuracy on real data: gpuprop's CLI beside PyTorch with the same configuration.

Each configuration trains twice on the same machine: once through
`gpuprop train --json` (the real CLI path), once in PyTorch eager with the
same architecture, Glorot-uniform kernels and zero biases, optimizer,
learning rate, epsilon, batch size, epochs and per-epoch shuffling. Prints a
Markdown table for bench/RESULTS.md.

    python bench/accuracy.py                       # all three configurations
    python bench/accuracy.py --configs cnn --seeds 0,1,2    # mean ± std over seeds
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    # name: (model, optimizer, lr, batch, epochs)
    "softmax": ("softmax", "sgd", 0.01, 32, 10),
    "mlp": ("mlp", "adam", 1e-3, 128, 5),
    "cnn": ("cnn", "adam", 1e-3, 128, 3),
}


def run_gpuprop(dataset, model, opt, lr, batch, epochs, seed, device):
    cmd = [sys.executable, "-m", "gpuprop", "train", "--dataset", dataset, "--model", model, "--optimizer", opt,
           "--lr", str(lr), "--batch-size", str(batch), "--epochs", str(epochs), "--seed", str(seed),
           "--device", device, "--json", "--quiet"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    if out.returncode != 0:
        raise SystemExit(f"gpuprop failed: {out.stderr.strip()}")
    result = json.loads(out.stdout)
    return result, time.perf_counter() - t0


def torch_model(torch, kind):
    nn = torch.nn
    if kind == "softmax":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    elif kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                            nn.Linear(512, 10))
    else:
        net = nn.Sequential(nn.Unflatten(1, (1, 28)), nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)  # Keras' glorot_uniform, the same fan computation
            nn.init.zeros_(m.bias)
    return net


def run_torch(data, kind, opt, lr, batch, epochs, seed):
    import torch

    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data
    xtr = torch.from_numpy(xtr.astype("float32") / 255.0)
    xte = torch.from_numpy(xte.astype("float32") / 255.0)
    ytr, yte = torch.from_numpy(ytr.astype("int64")), torch.from_numpy(yte.astype("int64"))
    net = torch_model(torch, kind)
    if opt == "sgd":
        optim = torch.optim.SGD(net.parameters(), lr=lr)
    else:
        optim = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-7)  # gpuprop's (Keras') epsilon
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(xtr.shape[0])
        for lo in range(0, xtr.shape[0], batch):
            idx = perm[lo:lo + batch]
            optim.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            loss.backward()
            optim.step()
    wall = time.perf_counter() - t0
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    return acc, wall


def _mean_std(values):
    values = 100 * numpy.asarray(values)
    return f"{values.mean():.2f}%" + (f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--configs", default="softmax,mlp,cnn")
    ap.add_argument("--seeds", default="0", help="comma list; with several, means and standard deviations")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    sys.path.insert(0, ROOT)
    import gpuprop

    data = gpuprop.datasets.get(args.dataset).load_data()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in args.configs.split(","):
        model, opt, lr, batch, epochs = CONFIGS[name]
        ours, theirs = [], []
        for seed in seeds:
            result, _ = run_gpuprop(args.dataset, model, opt, lr, batch, epochs, seed, args.device)
            ours.append(result["val_accuracy"])
            theirs.append(run_torch(data, model, opt, lr, batch, epochs, seed)[0])
            print(f"{name} seed {seed}: gpuprop {ours[-1]:.4f} torch {theirs[-1]:.4f}", file=sys.stderr, flush=True)
        rows.append({"config": name, "optimizer": opt, "lr": lr, "batch": batch, "epochs": epochs, "seeds": seeds,
                     "gpuprop": ours, "torch": theirs,
                     "delta_pp": 100 * (float(numpy.mean(ours)) - float(numpy.mean(theirs)))})
    print("| model | optimizer, lr | batch | epochs | seeds | gpuprop test acc | PyTorch test acc | Δ (pp) | met (≥ −0.5 pp) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        met = "yes" if r["delta_pp"] >= -0.5 else "no"
        print(f"| {r['config']} | {r['optimizer']} {r['lr']:g} | {r['batch']} | {r['epochs']} | {len(r['seeds'])} | "
              f"{_mean_std(r['gpuprop'])} | {_mean_std(r['torch'])} | {r['delta_pp']:+.2f} | {met} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    numpy.seterr(all="ignore")
    main()
