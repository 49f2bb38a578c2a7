"""Fashion-MNIST test accuracy of the zoo's residual CNN: gpuprop beside the same model in PyTorch.

Both start from the same initial weights (gpuprop's, copied into torch), see
the same training images in the same shuffled order each epoch (gpuprop's
permutation), and use Adam with the same learning rate and ε. Runs in one
process on the CPU; by default a 12,000-image training subset keeps it to a
few minutes on a busy machine. Prints a Markdown table for bench/RESULTS.md.

    python bench/resnet_accuracy.py                      # 12k images, 2 epochs
    python bench/resnet_accuracy.py --train 60000 --epochs 3
"""

import argparse
import os
import platform
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gpuprop  # noqa: E402
from gpuprop import optimizers, zoo  # noqa: E402
from gpuprop.datasets import fashion_mnist  # noqa: E402


def torch_resnet(torch, weights, widths=(16, 32)):
    """The zoo's resnet in torch (NCHW), initialised from gpuprop's weights in Keras order."""
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            convs, c_in = [], 1
            for w in widths:
                convs += [nn.Conv2d(c_in, w, 3, padding=1), nn.Conv2d(w, w, 3, padding=1), nn.Conv2d(w, w, 3, padding=1)]
                c_in = w
            self.convs = nn.ModuleList(convs)
            self.fc = nn.Linear(c_in, 10)

        def forward(self, x):
            h = x.unsqueeze(1)
            for s in range(len(widths)):
                stem, c1, c2 = self.convs[3 * s:3 * s + 3]
                h = F.max_pool2d(F.relu(stem(h)), 2)
                h = F.relu(h + c2(F.relu(c1(h))))  # the skip connection
            return self.fc(h.mean(dim=(2, 3)))  # logits; softmax is folded into the loss

    net = Net().double() if weights[0].dtype == numpy.float64 else Net()
    it = iter(weights)
    with torch.no_grad():
        for conv in net.convs:
            conv.weight.copy_(torch.tensor(next(it)).permute(3, 2, 0, 1))  # HWIO -> OIHW
            conv.bias.copy_(torch.tensor(next(it)))
        net.fc.weight.copy_(torch.tensor(next(it)).T)
        net.fc.bias.copy_(torch.tensor(next(it)))
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=12000, help="training images used (the first N)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    (x, y), (xt, yt) = fashion_mnist.load_data()
    x, y = x[:args.train].astype("float32") / 255, y[:args.train]
    xt = xt.astype("float32") / 255

    model = zoo.resnet(device="cpu", seed=args.seed)
    model.compile(optimizers.Adam(args.lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    net = torch_resnet(torch, model.get_weights())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-7)  # gpuprop's (Keras') ε

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    t_gp = time.perf_counter() - t0
    acc_gp = model.evaluate(xt, yt, batch_size=512, return_dict=True)["accuracy"]

    t0 = time.perf_counter()
    xs, ys = torch.tensor(x), torch.tensor(y.astype("int64"))
    for epoch in range(args.epochs):
        perm = model.backend.to_host(model.backend.permutation((args.seed, epoch), len(x)))  # gpuprop's order
        for lo in range(0, len(x), args.batch_size):
            idx = torch.tensor(perm[lo:lo + args.batch_size])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
    t_torch = time.perf_counter() - t0
    with torch.no_grad():
        pred = torch.cat([net(torch.tensor(xt[i:i + 512])).argmax(1) for i in range(0, len(xt), 512)]).numpy()
    acc_torch = float((pred == yt).mean())

    print(f"\nresnet ({model.count_params():,} parameters), Fashion-MNIST, first {len(x):,} training images, "
          f"{args.epochs} epoch(s), batch {args.batch_size}, Adam lr {args.lr}, seed {args.seed}; "
          f"test split {len(xt):,} images")
    print(f"gpuprop {gpuprop.__version__}, numpy {numpy.__version__}, torch {torch.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPU(s)\n")
    print("| framework | test accuracy | train time (s) |")
    print("|---|---|---|")
    print(f"| gpuprop (CPU) | {acc_gp:.4f} | {t_gp:.1f} |")
    print(f"| PyTorch (CPU) | {acc_torch:.4f} | {t_torch:.1f} |")


if __name__ == "__main__":
    main()
