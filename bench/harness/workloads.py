"""The benchmark workloads: one neutral description per model, built by every framework.

A workload is a layer list in a tiny spec language that gpuprop, PyTorch and
JAX each turn into the same model:

    ("dense", units, activation)      activation: "relu", "softmax" (last layer) or None
    ("conv", filters, kernel, act)    3×3 'valid' convolution, stride 1, NHWC in gpuprop/JAX
    ("pool", size)                    max pooling, stride = size, 'valid'
    ("flatten",)

The last layer's softmax is fused with the cross-entropy in every framework
(gpuprop fuses it itself; the peers take logits). Weights are gpuprop's
Glorot-uniform kernels and zero biases, copied into the peers.

FLOPs per training step (``flops_per_step``) count matrix products only:
a Dense layer on a (m × k) input with n units is one GEMM of 2·m·k·n FLOPs, a
convolution is its im2col GEMM with m = N·Ho·Wo, k = kh·kw·C_in, n = C_out.
Forward costs 1 GEMM, backward 2 (dW = xᵀ·dy and dx = dy·Wᵀ), so ×3 — except
the first layer with weights, whose dx nobody reads (×2). Biases, activations,
pooling, the loss and the optimizer update are left out (they are O(m·n),
not O(m·k·n)), so achieved GFLOP/s slightly understates the work done.
"""

import math
from dataclasses import dataclass

import numpy

MNIST_SHAPE = (28, 28, 1)
EPOCH_SAMPLES = 60000


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
    kind: str = "step"  # "step": time train_step; "epoch": time model.fit over EPOCH_SAMPLES
    needs: str = ""  # gpuprop layer classes the workload needs ("conv": Conv2D, MaxPooling2D)
    paired_ceiling: bool = False  # judged against the sgemm ceiling: time that product in its turns too

    @property
    def samples_shape(self):
        return tuple(self.input_shape)


def _mlp(width, depth=2):
    return tuple(("dense", width, "relu") for _ in range(depth)) + (("dense", 10, "softmax"),)


_CNN = (("conv", 32, 3, "relu"), ("pool", 2), ("conv", 64, 3, "relu"), ("pool", 2), ("flatten",),
        ("dense", 128, "relu"), ("dense", 10, "softmax"))

WORKLOADS = {w.name: w for w in (
    Workload("softmax", (("dense", 10, "softmax"),), (784,), 32, "sgd", 0.01,
             "softmax regression 784→10, batch 32, SGD", quick=True),
    Workload("mlp", _mlp(512), (784,), 128, "momentum", 0.01,
             "MLP 784-512-512-10 ReLU, batch 128, SGD momentum 0.9", quick=True),
    Workload("mlp-adam", _mlp(512), (784,), 128, "adam", 0.001,
             "MLP 784-512-512-10 ReLU, batch 128, Adam"),
    Workload("mlp-8192", _mlp(512), (784,), 8192, "momentum", 0.01,
             "MLP 784-512-512-10 ReLU, batch 8192, SGD momentum 0.9"),
    Workload("wide", _mlp(4096), (784,), 1024, "momentum", 0.01,
             "MLP 784-4096-4096-10 ReLU, batch 1024, SGD momentum 0.9 (compute-bound)", paired_ceiling=True),
    Workload("cnn", _CNN, MNIST_SHAPE, 128, "adam", 0.001,
             "Conv32-Pool-Conv64-Pool-Dense128-10, batch 128, Adam", quick=True, needs="conv"),
    Workload("epoch", _mlp(512), (784,), 128, "momentum", 0.01,
             "one epoch of 60000 through DeviceDataset + model.fit, MLP 784-512-512-10, batch 128",
             quick=True, kind="epoch"),
)}


def names():
    return list(WORKLOADS)


def scaling_mlp(width=512, batch=128):
    """The scaling sweeps' model: 784-width-width-10 ReLU at ``batch``, SGD momentum 0.9."""
    return Workload(f"mlp{width}-b{batch}", _mlp(width), (784,), batch, "momentum", 0.01,
                    f"MLP 784-{width}-{width}-10, batch {batch}")


def get(name):
    """A named workload, or a scaling point named as ``scaling_mlp`` names it (``mlp512-b32``)."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    width, sep, batch = name.removeprefix("mlp").partition("-b")
    if name.startswith("mlp") and sep and width.isdigit() and batch.isdigit():
        return scaling_mlp(int(width), int(batch))
    raise KeyError(f"unknown workload {name!r}")


def select(spec=None, quick=False):
    """Workloads named in ``spec`` (names or comma lists), default all (or the --quick subset)."""
    if not spec:
        return [w for w in WORKLOADS.values() if w.quick or not quick]
    wanted = [n.strip() for s in spec for n in str(s).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}: use {', '.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in dict.fromkeys(wanted)]


# --- shapes and FLOPs ----------------------------------------------------------------
def shapes(workload):
    """Per-sample output shape after each layer spec."""
    shape, out = tuple(workload.input_shape), []
    for spec in workload.layers:
        kind = spec[0]
        if kind == "dense":
            shape = (*shape[:-1], spec[1])
        elif kind == "conv":
            h, w, _ = shape
            shape = (h - spec[2] + 1, w - spec[2] + 1, spec[1])
        elif kind == "pool":
            h, w, c = shape
            shape = (h // spec[1], w // spec[1], c)
        elif kind == "flatten":
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
        if spec[0] == "dense":
            m, k, n = batch * math.prod(shape[:-1]), shape[-1], spec[1]
        elif spec[0] == "conv":
            m, k, n = batch * after[0] * after[1], spec[2] * spec[2] * shape[-1], spec[1]
        else:
            shape = after
            continue
        out.append((m, k, n, 3 if seen_weights else 2))
        seen_weights = True
        shape = after
    return out


def flops_per_step(workload, batch=None):
    """Σ 2·m·k·n·passes over the step's GEMMs (forward + backward)."""
    return sum(2 * m * k * n * p for m, k, n, p in gemms(workload, batch))


def count_params(workload):
    shape, total = tuple(workload.input_shape), 0
    for spec, after in zip(workload.layers, shapes(workload)):
        if spec[0] == "dense":
            total += shape[-1] * spec[1] + spec[1]
        elif spec[0] == "conv":
            total += spec[2] * spec[2] * shape[-1] * spec[1] + spec[1]
        shape = after
    return total


# --- data --------------------------------------------------------------------------------
def host_batches(workload, n_batches=4, seed=0):
    """Synthetic MNIST-shaped batches on the host: x = uint8 pixels / 255 as float32, y int64 in 0..9."""
    rng = numpy.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        x = rng.integers(0, 256, size=(workload.batch, *workload.input_shape), dtype=numpy.uint8)
        x = x.astype(numpy.float32) * numpy.float32(1 / 255)
        y = rng.integers(0, 10, size=workload.batch).astype(numpy.int64)
        out.append((x, y))
    return out


def epoch_data(workload, n=EPOCH_SAMPLES, seed=0):
    """60000 synthetic uint8 images and int64 labels, as a dataset file would give them."""
    rng = numpy.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *workload.input_shape), dtype=numpy.uint8)
    return x, rng.integers(0, 10, size=n).astype(numpy.int64)


# --- gpuprop -------------------------------------------------------------------------------
def conv_layers():
    """(Conv2D, MaxPooling2D) from gpuprop, or raise ImportError saying what is missing."""
    from gpuprop import layers

    conv = getattr(layers, "Conv2D", None)
    pool = getattr(layers, "MaxPooling2D", None)
    if conv is None or pool is None:
        try:  # written but perhaps not yet exported from gpuprop.layers
            from gpuprop.layers.conv import Conv2D as conv
            from gpuprop.layers.pooling import MaxPooling2D as pool
        except ImportError as exc:
            raise ImportError(f"gpuprop has no Conv2D/MaxPooling2D yet ({exc})") from None
    return conv, pool


def available(workload):
    """(True, '') or (False, reason) for whether gpuprop can build this workload here."""
    if workload.needs == "conv":
        try:
            conv_layers()
        except ImportError as exc:
            return False, str(exc)
    return True, ""


def gpuprop_optimizer(workload):
    from gpuprop import optimizers

    if workload.optimizer == "adam":
        return optimizers.Adam(learning_rate=workload.lr)
    if workload.optimizer == "momentum":
        return optimizers.SGD(learning_rate=workload.lr, momentum=0.9)
    return optimizers.SGD(learning_rate=workload.lr)


def build_gpuprop(workload, device="cpu", seed=0, metrics=None):
    """The workload as a compiled gpuprop ``Sequential`` on ``device`` (weights fixed by ``seed``)."""
    from gpuprop import Sequential, layers

    stack = []
    for i, spec in enumerate(workload.layers):
        first = {"input_shape": workload.input_shape} if i == 0 else {}
        if spec[0] == "dense":
            stack.append(layers.Dense(spec[1], activation=spec[2], **first))
        elif spec[0] == "conv":
            conv, _ = conv_layers()
            stack.append(conv(spec[1], spec[2], activation=spec[3], **first))
        elif spec[0] == "pool":
            _, pool = conv_layers()
            stack.append(pool(spec[1], **first))
        elif spec[0] == "flatten":
            stack.append(layers.Flatten(**first))
    model = Sequential(stack, device=device, seed=seed, name=workload.name)
    model.compile(gpuprop_optimizer(workload), "sparse_categorical_crossentropy", metrics=metrics)
    model.build(workload.input_shape)
    return model


def reference_weights(workload, seed=0):
    """gpuprop's initial weights (host arrays, Keras order and layout): every framework starts from these."""
    return build_gpuprop(workload, "cpu", seed).get_weights()
