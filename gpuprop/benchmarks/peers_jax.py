"""The same workload in JAX: jax.numpy model, ``jax.grad``, a hand-written update, one jitted step.

Parameters are gpuprop's arrays as they are (Dense kernel (in, out); Conv
kernel (kh, kw, in, out) = HWIO with NHWC activations), so no reordering is
needed. The whole step — forward, loss, ``value_and_grad``, and the SGD /
momentum / Adam update written out as torch.optim computes it — is one
``jax.jit`` with parameter and optimizer buffers donated (updated in place).
Matmul precision is 'highest' so a GPU computes float32, not TF32, products.
JAX preallocates most of a GPU's memory unless told otherwise; importing this
module sets ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (unless already set) so it
can share the device with CuPy and torch.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


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
        self.jax = jax
        self.workload = workload
        self.device = device
        self.dev = jax_device(device)
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

    def weights(self):
        import numpy

        return [numpy.asarray(p) for p in self.params]


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


def version():
    try:
        import jax
    except ImportError:
        return None
    return jax.__version__
