"""Reference implementations of the hot element-wise operations.

Each forward sits beside its backward, with the derivative in its docstring.
These plain ``xp`` versions are the definition; ``backend.kernels.CupyOps``
overrides some of them with fused CUDA kernels, and a test proves both compute
the same function. Backward functions may overwrite ``dy`` in place: the caller
hands over an array it no longer needs.
"""

from . import normal_cdf


class Ops:
    def __init__(self, xp):
        self.xp = xp
        self._consts = {}
        self._batch_ones = None
        self._numpy = getattr(xp, "__name__", "") == "numpy"
        if self._numpy:
            # ufunc.reduce is what ndarray.sum/max call, minus a Python wrapper worth ~0.5 µs a call:
            # 5 % of softmax regression's step (bench/tricks.py). The plain form is _sum_method/_max_method,
            # which CuPy uses; tests/test_tricks.py ties the two.
            self.sum, self.amax = xp.add.reduce, xp.maximum.reduce
        else:
            self.sum, self.amax = _sum_method, _max_method

    def sum_batch(self, dy, out):
        """out = Σ_n dy[n, :] for a 2-D dy (a bias gradient).

        On NumPy this is ``ones · dy``, one BLAS matrix-vector product: NumPy's
        reduction over the leading axis costs twice as much (2 µs against 0.8 at
        32 × 10, 9 against 5 at 128 × 512). A GPU reduces in one kernel either way.
        """
        ones = self._batch_ones
        if ones is None or ones.shape[0] != dy.shape[0] or ones.dtype is not dy.dtype or out.dtype is not dy.dtype:
            if not self._numpy or out.dtype != dy.dtype:
                return self.sum(dy, axis=0, out=out)
            ones = self._batch_ones = self.xp.ones(dy.shape[0], dtype=dy.dtype)
        return self.xp.dot(ones, dy, out=out)

    def _row_constants(self, n, k, dtype):
        """Cached per (n, k, dtype): where each row starts in a flattened (n, k) array, a ones
        vector of length k, and n and 1/n as dtype scalars.

        Row sums are taken as ``p @ ones`` (one BLAS matrix-vector call; NumPy's reduction over
        10 columns costs twice as much), and NumPy spends ~0.7 µs more on a Python float than
        on a dtype scalar: at batch 32 both are a visible part of the step.
        """
        key = (n, k, dtype)
        c = self._consts.get(key)
        if c is None:
            xp, scalar = self.xp, dtype.type
            c = self._consts[key] = (xp.arange(0, n * k, k), xp.ones(k, dtype=dtype), scalar(n), scalar(1.0 / n))
        return c

    # --- activations: y = f(x) and dx = dy · f'(x) --------------------------
    def relu(self, x, out=None):
        """y = max(x, 0)."""
        return self.xp.maximum(x, 0, out=out)

    def relu_backward(self, dy, y):
        """dx = dy · [y > 0]."""
        dy *= y > 0
        return dy

    def leaky_relu(self, x, negative_slope=0.2):
        """y = x if x > 0 else a·x."""
        return self.xp.where(x > 0, x, x * negative_slope)

    def leaky_relu_backward(self, dy, x, negative_slope=0.2):
        """dx = dy · (1 if x > 0 else a)."""
        return self.xp.where(x > 0, dy, dy * negative_slope)

    def sigmoid(self, x, out=None):
        """y = 1 / (1 + e⁻ˣ), computed as (1 + tanh(x/2)) / 2, which never overflows."""
        y = self.xp.multiply(x, 0.5, out=out)
        self.xp.tanh(y, out=y)
        y += 1
        y *= 0.5
        return y

    def sigmoid_backward(self, dy, y):
        """dx = dy · y · (1 − y)."""
        dy *= y * (1 - y)
        return dy

    def tanh(self, x, out=None):
        """y = tanh x."""
        return self.xp.tanh(x, out=out)

    def tanh_backward(self, dy, y):
        """dx = dy · (1 − y²)."""
        dy *= 1 - y * y
        return dy

    def gelu(self, x):
        """y = x·Φ(x) = ½x(1 + erf(x/√2)), Keras' exact GELU; Φ from ``normal_cdf`` (accurate to the dtype)."""
        if x.dtype.itemsize < 4:  # float16: computed in float32 and rounded back, as CuPy's half math does
            return self.gelu(x.astype("float32")).astype(x.dtype)
        y = normal_cdf.cdf(self.xp, x)
        y *= x
        return y

    def gelu_with_slope(self, x):
        """(y, s): gelu(x) and its slope s = dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π), for training.

        Both come from the same e^(−x²/2) and Φ(x), the costly part; keeping s
        instead of x makes the backward one product instead of a second evaluation.
        """
        if x.dtype.itemsize < 4:
            return tuple(a.astype(x.dtype) for a in self.gelu_with_slope(x.astype("float32")))
        e = normal_cdf.gauss(self.xp, x)
        cdf = normal_cdf.cdf(self.xp, x, e)
        e *= x
        e *= normal_cdf.INV_SQRT_2PI
        e += cdf
        cdf *= x
        return cdf, e

    def gelu_backward(self, dy, s):
        """dx = dy · s, s = Φ(x) + x·φ(x) as ``gelu_with_slope`` returned it."""
        dy *= s
        return dy

    def softmax(self, x):
        """y_i = e^(x_i − max x) / Σ_j e^(x_j − max x) over the last axis."""
        e = x - x.max(axis=-1, keepdims=True)
        self.xp.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def softmax_backward(self, dy, y):
        """dx = y · (dy − Σ_j dy_j y_j)."""
        s = (dy * y).sum(axis=-1, keepdims=True)
        dy -= s
        dy *= y
        return dy

    # --- losses fused with their output activation --------------------------
    def log_softmax(self, logits):
        """log p = z − log Σ e^z with z = logits − max: finite for logits of any size."""
        z = logits - logits.max(axis=-1, keepdims=True)
        z -= self.xp.log(self.xp.exp(z).sum(axis=-1, keepdims=True))
        return z

    def softmax_cross_entropy(self, logits, target):
        """loss = −(1/N) Σ y·log softmax(z); dz = (p − y)/N.

        ``target`` is one-hot (N, K) or integer labels (N,). With z shifted by
        its row maximum, log p_i = z_i − log s where s = Σ e^z ≥ 1, so nothing
        overflows or takes log 0. The loss is a 0-d device array, so reading it
        is the caller's choice of sync.
        """
        xp = self.xp
        shape = logits.shape
        if logits.ndim > 2:  # (N, T, K): every position is a sample, as Keras averages over N·T
            logits = logits.reshape(-1, shape[-1])
            target = target.reshape(-1, shape[-1]) if target.ndim > 1 else target
        n, k = logits.shape
        offsets, ones, n_, inv_n = self._row_constants(n, k, logits.dtype)
        z = logits - self.amax(logits, axis=1)[:, None]
        if target.ndim == 1:
            picked = offsets + target  # flat positions of (row, label): one gather, no 2-D fancy indexing
            z_label = z.ravel().take(picked)
        else:
            z_label = (target * z).sum()
        p = xp.exp(z, out=z)
        s = p @ ones
        if target.ndim == 1:
            loss = self.sum(xp.log(s) - z_label, axis=0) * inv_n
            s *= n_  # p/(N·s) is p/N in one pass
            p /= s[:, None]
            p.ravel()[picked] -= inv_n
        else:
            loss = (xp.log(s).sum() - z_label) * inv_n
            p /= s[:, None]
            p -= target
            p *= inv_n
        return loss, (p if p.shape == shape else p.reshape(shape))

    def sigmoid_binary_cross_entropy(self, logits, target):
        """loss = mean(softplus(z) − y·z); dz = (σ(z) − y)/n, n = number of elements."""
        xp = self.xp
        n = logits.size
        # softplus(z) = max(z, 0) + log1p(e^−|z|) never overflows
        loss = (xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))).sum() / n
        grad = self.sigmoid(logits)
        grad -= target
        grad /= n
        return loss, grad


def _sum_method(a, axis=None, dtype=None, out=None, keepdims=False):
    return a.sum(axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def _max_method(a, axis=None, out=None, keepdims=False):
    return a.max(axis=axis, out=out, keepdims=keepdims)
