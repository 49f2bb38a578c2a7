"""The same step in each framework, behind one small interface (so the runner treats them alike).

    t = make(framework, workload, device)   # imports, picks the device
    t.load(batches)                         # host (x, y) batches → device-resident
    t.build(weights)                        # model + optimizer from gpuprop's host weights
    loss = t.step()                         # one training step on the next batch (no host sync)
    t.sync(); t.loss_value(loss)            # wait for the device; a step's loss as a float

gpuprop's step is ``model.train_step(x, y)``, what ``fit`` runs per batch.
PyTorch: torch.nn from the spec (NCHW), weights copied from gpuprop's (a
Dense kernel (in, out) is Linear.weight transposed, a Conv2D kernel
(kh, kw, in, out) is Conv2d.weight permuted to (out, in, kh, kw), the Dense
after a Flatten has its rows reordered from (h, w, c) to (c, h, w));
torch.optim with gpuprop's hyper-parameters (Adam ε = 1e-7, as Keras); TF32
off. ``torch-compile`` compiles forward and backward ('reduce-overhead', i.e.
CUDA graphs, on a GPU). JAX: gpuprop's arrays as they are (HWIO kernels,
NHWC), ``value_and_grad`` and the update written out as torch.optim computes
it, the whole step one ``jax.jit`` with buffers donated; matmul precision
'highest'. Importing this module stops JAX from preallocating a GPU.
"""

import os

import numpy

from ..backend import get_backend
from . import workloads
from .workloads import shapes

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
FRAMEWORKS = ("gpuprop", "torch", "torch-compile", "jax")


def make(framework, workload, device):
    """A trainer for ``framework`` on 'cpu' or 'gpu'."""
    if framework == "gpuprop":
        return GpupropTrainer(workload, device)
    if framework in ("torch", "torch-compile"):
        return TorchTrainer(workload, device, compiled=framework == "torch-compile")
    if framework == "jax":
        return JaxTrainer(workload, device)
    raise ValueError(f"unknown framework {framework!r}")


class GpupropTrainer:
    def __init__(self, workload, device):
        self.workload, self.backend = workload, get_backend(device)
        self.framework, self.device, self.note = "gpuprop", "gpu" if self.backend.is_gpu else "cpu", ""
        self.batches, self.model, self._i = [], None, 0

    def load(self, batches):
        self.batches = [(self.backend.asarray(x), self.backend.asarray(y)) for x, y in batches]

    def build(self, weights):
        self.model = workloads.build_gpuprop(self.workload, self.backend, seed=0)
        self.model.set_weights(weights)

    def step(self):
        x, y = self.batches[self._i % len(self.batches)]
        self._i += 1
        return self.model.train_step(x, y)[0]

    def sync(self):
        self.backend.synchronize()

    def loss_value(self, loss):
        return self.backend.scalar(loss)


class TorchTrainer:
    def __init__(self, workload, device, compiled=False):
        import torch

        self.torch, self.workload, self.device, self.compiled = torch, workload, device, compiled
        self.framework = "torch-compile" if compiled else "torch"
        if device == "gpu":
            if not torch.cuda.is_available():
                raise RuntimeError("torch sees no CUDA device (CPU-only torch build?)")
            self.dev = torch.device("cuda")
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
        else:
            self.dev = torch.device("cpu")
        self.mode = "reduce-overhead" if device == "gpu" else "default"  # CUDA graphs on a GPU
        self.note = f"torch.compile(mode={self.mode!r}) of forward+backward; optimizer eager" if compiled else "eager"
        self.batches, self._i = [], 0

    def _x(self, x):
        x = numpy.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x  # NHWC → NCHW
        return self.torch.from_numpy(x).to(self.dev)

    def load(self, batches):
        self.batches = [(self._x(x), self.torch.from_numpy(y).to(self.dev)) for x, y in batches]

    def build(self, weights):
        torch, nn = self.torch, self.torch.nn
        mods, ws = [], list(weights)
        shape, flat_from = tuple(self.workload.input_shape), None
        for spec, after in zip(self.workload.layers, shapes(self.workload)):
            if spec[0] == "dense":
                lin = nn.Linear(shape[-1], spec[1])
                kernel, bias = ws.pop(0), ws.pop(0)
                if flat_from is not None:  # rows in gpuprop's (h, w, c) order → torch's (c, h, w)
                    h, w, c = flat_from
                    kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                    flat_from = None
                _copy(lin.weight, kernel.T)
                _copy(lin.bias, bias)
                mods.append(lin)
                if spec[2] == "relu":
                    mods.append(nn.ReLU())
            elif spec[0] == "conv":
                conv = nn.Conv2d(shape[-1], spec[1], spec[2])
                kernel, bias = ws.pop(0), ws.pop(0)
                _copy(conv.weight, kernel.transpose(3, 2, 0, 1))
                _copy(conv.bias, bias)
                mods.append(conv)
                if spec[3] == "relu":
                    mods.append(nn.ReLU())
            elif spec[0] == "pool":
                mods.append(nn.MaxPool2d(spec[1]))
            elif spec[0] == "flatten":
                if len(shape) == 3:
                    flat_from = shape
                mods.append(nn.Flatten())
            shape = after
        self.model = nn.Sequential(*mods).to(self.dev)
        params = self.model.parameters()
        wl = self.workload
        if wl.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=wl.lr, eps=1e-7)
        else:
            self.opt = torch.optim.SGD(params, lr=wl.lr, momentum=0.9 if wl.optimizer == "momentum" else 0.0)
        self.forward = torch.compile(self.model, mode=self.mode) if self.compiled else self.model
        self._graphs = self.compiled and self.mode == "reduce-overhead"
        self.loss_fn = torch.nn.functional.cross_entropy

    def step(self):
        x, y = self.batches[self._i % len(self.batches)]
        self._i += 1
        if self._graphs:
            self.torch.compiler.cudagraph_mark_step_begin()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.forward(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def loss_value(self, loss):
        return float(loss.detach().item())


def _copy(param, array):
    import torch

    with torch.no_grad():
        param.copy_(torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.float32)))


def jax_device(device):
    """The jax device for 'cpu' or 'gpu', or raise RuntimeError saying why there is none."""
    import jax

    if device == "cpu":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError as exc:
        raise RuntimeError(f"jax sees no GPU ({str(exc).splitlines()[0][:80]})") from None


class JaxTrainer:
    framework = "jax"

    def __init__(self, workload, device):
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
        self.jax, self.workload, self.device, self.dev = jax, workload, device, jax_device(device)
        self.note = "jit of the whole step, buffers donated"
        self.batches, self._i = [], 0

    def load(self, batches):
        put = self.jax.device_put
        self.batches = [(put(x, self.dev), put(y.astype("int32"), self.dev)) for x, y in batches]

    def build(self, weights):
        import jax
        import jax.numpy as jnp

        put = jax.device_put
        self.params = [put(w.astype("float32"), self.dev) for w in weights]
        wl = self.workload
        slots = 2 if wl.optimizer == "adam" else (1 if wl.optimizer == "momentum" else 0)
        self.state = [[put(jnp.zeros(w.shape, "float32"), self.dev) for w in weights] for _ in range(slots)]
        self.t = put(jnp.zeros((), "float32"), self.dev)
        forward = _forward_fn(wl.layers)

        def loss_fn(params, x, y):
            logits = forward(params, x)
            logp = jax.nn.log_softmax(logits, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        lr = wl.lr
        kind = wl.optimizer

        def step(params, state, t, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            t = t + 1
            if kind == "sgd":
                params = [p - lr * g for p, g in zip(params, grads)]
            elif kind == "momentum":  # b ← μb + g (b₀ = 0 gives torch's b₁ = g); p ← p − ηb
                bufs = [0.9 * b + g for b, g in zip(state[0], grads)]
                params = [p - lr * b for p, b in zip(params, bufs)]
                state = [bufs]
            else:  # Adam, bias corrections folded as torch.optim does
                b1, b2, eps = 0.9, 0.999, 1e-7
                ms = [b1 * m + (1 - b1) * g for m, g in zip(state[0], grads)]
                vs = [b2 * v + (1 - b2) * g * g for v, g in zip(state[1], grads)]
                bc2 = jnp.sqrt(1 - b2**t)
                lr_t = lr / (1 - b1**t) * bc2
                eps_t = eps * bc2
                params = [p - lr_t * m / (jnp.sqrt(v) + eps_t) for p, m, v in zip(params, ms, vs)]
                state = [ms, vs]
            return params, state, t, loss

        self._step = jax.jit(step, donate_argnums=(0, 1, 2))

    def step(self):
        x, y = self.batches[self._i % len(self.batches)]
        self._i += 1
        self.params, self.state, self.t, loss = self._step(self.params, self.state, self.t, x, y)
        return loss

    def sync(self):
        self.jax.block_until_ready(getattr(self, "params", self.batches))

    def loss_value(self, loss):
        return float(loss)


def _forward_fn(layers):
    import jax
    import jax.numpy as jnp
    from jax import lax

    def forward(params, x):
        i = 0
        for spec in layers:
            if spec[0] == "dense":
                x = x @ params[i] + params[i + 1]
                i += 2
                if spec[2] == "relu":
                    x = jax.nn.relu(x)
            elif spec[0] == "conv":
                x = lax.conv_general_dilated(x, params[i], (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + params[i + 1]
                i += 2
                if spec[3] == "relu":
                    x = jax.nn.relu(x)
            elif spec[0] == "pool":
                p = spec[1]
                x = lax.reduce_window(x, -jnp.inf, lax.max, (1, p, p, 1), (1, p, p, 1), "VALID")
            elif spec[0] == "flatten":
                x = x.reshape(x.shape[0], -1)
        return x  # logits: the softmax is in the loss

    return forward
