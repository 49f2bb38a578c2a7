"""Train-step time of the CLI's CNN: gpuprop (NumPy) against PyTorch CPU eager, same process.

    python bench/cnn_layers_profile.py [--batch 128] [--steps 30] [--no-torch]

Prints the median and minimum ms per step of each (the two alternate step by
step, so a busy machine hurts both alike) and gpuprop's per-layer split.
"""

import argparse
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gpuprop  # noqa: E402
from gpuprop.layers import Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402


def gpuprop_model(seed=0):
    model = gpuprop.Sequential([
        Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(2), Flatten(),
        Dense(128, activation="relu"), Dense(10, activation="softmax")], device="cpu", seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.build()
    return model


def torch_step_fn(torch, x, y):
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt = torch.from_numpy(numpy.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    return step


def interleaved_ms(fns, steps):
    """Per-step times (ms) of each function, alternating them step by step so load hits both alike."""
    times = [[] for _ in fns]
    for _ in range(steps):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(1e3 * (time.perf_counter() - t0))
    return [numpy.array(t) for t in times]


def per_layer(model, x, y, steps):
    """(name, forward median, min, backward median, min) in ms for each training step."""
    fwd = {id(s): [] for s in model._train_steps}
    bwd = {id(s): [] for s in model._train_steps}
    other = []
    for _ in range(steps):
        out = x
        for s in model._train_steps:
            t0 = time.perf_counter()
            out = s.forward(out, training=True)
            fwd[id(s)].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, grad = model._loss_fn(y, out)
        loss_t = time.perf_counter() - t0
        for s in reversed(model._train_steps):
            t0 = time.perf_counter()
            grad = s.backward(grad)
            bwd[id(s)].append(time.perf_counter() - t0)
            if grad is None:
                break
        t0 = time.perf_counter()
        model.optimizer.apply_gradients(model.params, model.grads)
        other.append((loss_t, time.perf_counter() - t0))
    def stat(v):
        return (1e3 * numpy.median(v), 1e3 * numpy.min(v)) if v else (0.0, 0.0)

    rows = []
    for s in model._train_steps:
        name = getattr(s, "name", None) or type(s).__name__
        rows.append((name, *stat(fwd[id(s)]), *stat(bwd[id(s)])))
    rows.append(("loss", *stat([o[0] for o in other]), 0.0, 0.0))
    rows.append(("adam", 0.0, 0.0, *stat([o[1] for o in other])))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--no-torch", action="store_true", help="gpuprop alone (torch's threads not in the process)")
    args = ap.parse_args()
    rng = numpy.random.default_rng(0)
    x = rng.random((args.batch, 28, 28, 1), dtype=numpy.float32)
    y = rng.integers(0, 10, args.batch)
    model = gpuprop_model()
    ours = lambda: model.train_step(x, y)  # noqa: E731
    theirs = None
    if not args.no_torch:
        try:
            import torch
            theirs = torch_step_fn(torch, x, y)
            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        except ImportError:
            pass
    fns = [ours] + ([theirs] if theirs else [])
    interleaved_ms(fns, 3)  # warm-up: buffers, BLAS threads, torch's lazy init
    times = interleaved_ms(fns, args.steps)
    a = times[0]
    print(f"gpuprop train_step: median {numpy.median(a):7.2f} ms   min {a.min():7.2f} ms")
    if theirs:
        b = times[1]
        print(f"torch   train step: median {numpy.median(b):7.2f} ms   min {b.min():7.2f} ms")
        print(f"speed vs torch: {numpy.median(b) / numpy.median(a):.2f}x by median, {b.min() / a.min():.2f}x by min")
    print(f"\n{'step':<16}{'fwd median':>11}{'fwd min':>9}{'bwd median':>12}{'bwd min':>9}")
    med = low = 0.0
    for name, fm, fl, bm, bl in per_layer(model, x, y, args.steps):
        med, low = med + fm + bm, low + fl + bl
        print(f"{name:<16}{fm:11.2f}{fl:9.2f}{bm:12.2f}{bl:9.2f}")
    print(f"{'sum':<16}{'median':>11} {med:.2f}, min {low:.2f}")

if __name__ == "__main__":
    main()
