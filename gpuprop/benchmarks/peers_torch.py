"""The same workload in PyTorch: eager, or ``torch.compile`` (with CUDA graphs on a GPU).

The model is built from the workload spec with torch.nn (NCHW for images),
its weights copied from gpuprop's: a Dense kernel (in, out) is Linear.weight
transposed, a Conv2D kernel (kh, kw, in, out) is Conv2d.weight permuted to
(out, in, kh, kw), and the Dense after a Flatten has its input rows reordered
from gpuprop's (h, w, c) flattening to torch's (c, h, w). Optimizers are
torch.optim's SGD / Adam with gpuprop's hyper-parameters (Adam ε = 1e-7, as
Keras). One step is ``zero_grad; cross_entropy(model(x), y).backward(); step``.

Compiled variant: ``torch.compile(model, mode=...)`` — 'reduce-overhead'
(Inductor + CUDA graphs) on a GPU, 'default' on the CPU; forward and backward
are compiled, the optimizer step stays eager. TF32 is switched off so every
framework computes float32 products.
"""

import numpy

from .workloads import shapes


class TorchTrainer:
    def __init__(self, workload, device, compiled=False, compile_mode=None):
        import torch

        self.torch = torch
        self.workload = workload
        self.device = device
        self.compiled = compiled
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
        self.mode = compile_mode or ("reduce-overhead" if device == "gpu" else "default")
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

    def weights(self):
        """Current weights in gpuprop's order and layout (inverse of ``build``'s copy)."""
        out, shape, flat_from = [], tuple(self.workload.input_shape), None
        mods = iter(m for m in self.model if hasattr(m, "weight"))
        for spec, after in zip(self.workload.layers, shapes(self.workload)):
            if spec[0] in ("dense", "conv"):
                m = next(mods)
                w = m.weight.detach().cpu().numpy()
                if spec[0] == "conv":
                    kernel = w.transpose(2, 3, 1, 0)
                else:
                    kernel = w.T
                    if flat_from is not None:
                        h, wd, c = flat_from
                        kernel = kernel.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(h * wd * c, -1)
                        flat_from = None
                out += [numpy.ascontiguousarray(kernel), m.bias.detach().cpu().numpy()]
            elif spec[0] == "flatten" and len(shape) == 3:
                flat_from = shape
            shape = after
        return out


def _copy(param, array):
    import torch

    with torch.no_grad():
        param.copy_(torch.from_numpy(numpy.ascontiguousarray(array, dtype=numpy.float32)))


def version():
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__
