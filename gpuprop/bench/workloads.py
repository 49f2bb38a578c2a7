"""The standard workloads: one neutral layer spec per model, built alike by gpuprop and the peers.

    ("dense", units, activation)      activation: "relu", "softmax" (last layer) or None
    ("conv", filters, kernel, act)    'valid' convolution, stride 1, NHWC in gpuprop and JAX
    ("pool", size)                    max pooling, stride = size
    ("flatten",)

The final softmax is fused with the cross-entropy everywhere (the peers take
logits). FLOPs per step count matrix products only: a Dense layer on an
(m × k) input with n units is 2·m·k·n, a convolution its im2col GEMM
(m = N·Ho·Wo, k = kh·kw·C_in, n = C_out); forward + dW + dx makes ×3, ×2 for
the first layer with weights (no dx). Biases, activations, pooling, loss and
update are left out, so GFLOP/s slightly understates the work.
"""

import math
from dataclasses import dataclass

import numpy


@dataclass(frozen=True)
class Workload:
    name: str
    layers: tuple
    input_shape: tuple
    batch: int
    optimizer: str  # "sgd", "momentum" (SGD μ = 0.9) or "adam"
    lr: float
    description: str
    quick: bool = False  # part of the --quick subset


def _mlp(width, depth=2):
    return tuple(("dense", width, "relu") for _ in range(depth)) + (("dense", 10, "softmax"),)


CNN = (("conv", 32, 3, "relu"), ("pool", 2), ("conv", 64, 3, "relu"), ("pool", 2), ("flatten",),
       ("dense", 128, "relu"), ("dense", 10, "softmax"))

WORKLOADS = {w.name: w for w in (
    Workload("softmax", (("dense", 10, "softmax"),), (784,), 32, "sgd", 0.01,
             "softmax regression 784→10, batch 32, SGD", quick=True),
    Workload("mlp", _mlp(512), (784,), 128, "momentum", 0.01,
             "MLP 784-512-512-10 ReLU, batch 128, SGD momentum 0.9", quick=True),
    Workload("mlp-adam", _mlp(512), (784,), 128, "adam", 0.001, "MLP 784-512-512-10 ReLU, batch 128, Adam"),
    Workload("mlp-8192", _mlp(512), (784,), 8192, "momentum", 0.01,
             "MLP 784-512-512-10 ReLU, batch 8192, SGD momentum 0.9"),
    Workload("wide", _mlp(4096), (784,), 1024, "momentum", 0.01,
             "MLP 784-4096-4096-10 ReLU, batch 1024, SGD momentum 0.9 (compute-bound)"),
    Workload("cnn", CNN, (28, 28, 1), 128, "adam", 0.001,
             "Conv32-Pool-Conv64-Pool-Dense128-10, batch 128, Adam", quick=True),
)}


def select(spec=None, quick=False, table=None):
    """Workloads named in ``spec`` (names or comma lists), default all (or the --quick subset), from ``table``
    (a name -> workload dict; default ``WORKLOADS``, the bench/ harness passes its own)."""
    table = WORKLOADS if table is None else table
    if not spec:
        return [w for w in table.values() if w.quick or not quick]
    wanted = [n.strip() for s in spec for n in str(s).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in table]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}: use {', '.join(table)}")
    return [table[n] for n in dict.fromkeys(wanted)]


def shapes(workload):
    """Per-sample output shape after each layer spec."""
    shape, out = tuple(workload.input_shape), []
    for spec in workload.layers:
        if spec[0] == "dense":
            shape = (*shape[:-1], spec[1])
        elif spec[0] == "conv":
            shape = (shape[0] - spec[2] + 1, shape[1] - spec[2] + 1, spec[1])
        elif spec[0] == "pool":
            shape = (shape[0] // spec[1], shape[1] // spec[1], shape[2])
        elif spec[0] == "flatten":
            shape = (math.prod(shape),)
        else:
            raise ValueError(f"unknown layer spec {spec!r}")
        out.append(shape)
    return out


def gemms(workload, batch=None):
    """(m, k, n, passes) of every matrix product in one training step; see the module docstring."""
    batch = batch or workload.batch
    shape, seen_weights, out = tuple(workload.input_shape), False, []
    for spec, after in zip(workload.layers, shapes(workload)):
        if spec[0] in ("dense", "conv"):
            if spec[0] == "dense":
                m, k, n = batch * math.prod(shape[:-1]), shape[-1], spec[1]
            else:
                m, k, n = batch * after[0] * after[1], spec[2] * spec[2] * shape[-1], spec[1]
            out.append((m, k, n, 3 if seen_weights else 2))
            seen_weights = True
        shape = after
    return out


def flops_per_step(workload, batch=None):
    return sum(2 * m * k * n * p for m, k, n, p in gemms(workload, batch))


def host_batches(workload, n_batches=4, seed=0):
    """Synthetic MNIST-shaped batches on the host: x = uint8 pixels / 255 as float32, y int64 in 0..9."""
    rng = numpy.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        x = rng.integers(0, 256, size=(workload.batch, *workload.input_shape), dtype=numpy.uint8)
        out.append((x.astype(numpy.float32) * numpy.float32(1 / 255),
                    rng.integers(0, 10, size=workload.batch).astype(numpy.int64)))
    return out


def build_gpuprop(workload, device="cpu", seed=0, metrics=None):
    """The workload as a compiled, built gpuprop ``Sequential`` on ``device`` (weights fixed by ``seed``)."""
    from .. import Sequential, layers, optimizers

    stack = []
    for i, spec in enumerate(workload.layers):
        first = {"input_shape": workload.input_shape} if i == 0 else {}
        if spec[0] == "dense":
            stack.append(layers.Dense(spec[1], activation=spec[2], **first))
        elif spec[0] == "conv":
            stack.append(layers.Conv2D(spec[1], spec[2], activation=spec[3], **first))
        elif spec[0] == "pool":
            stack.append(layers.MaxPooling2D(spec[1], **first))
        elif spec[0] == "flatten":
            stack.append(layers.Flatten(**first))
    model = Sequential(stack, device=device, seed=seed, name=workload.name)
    opt = (optimizers.Adam(learning_rate=workload.lr) if workload.optimizer == "adam" else
           optimizers.SGD(learning_rate=workload.lr, momentum=0.9 if workload.optimizer == "momentum" else 0.0))
    model.compile(opt, "sparse_categorical_crossentropy", metrics=metrics)
    model.build(workload.input_shape)
    return model


def reference_weights(workload, seed=0):
    """gpuprop's initial weights (host arrays, Keras layout): every framework starts from these."""
    return build_gpuprop(workload, "cpu", seed).get_weights()
