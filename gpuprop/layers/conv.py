"""2-D convolution (channels_last), as im2col plus one matrix product.

Keras layout: kernel (kh, kw, in, out), bias (out,). 'same' padding is TF's:
total pad = max((⌈H/s⌉ − 1)·s + k − H, 0), the odd pixel going bottom/right.
"""

import math

from .base import Layer


def normalize_tuple(value, name):
    """An int or a pair as a pair of positive ints (Keras accepts both)."""
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair


def normalize_padding(padding):
    key = str(padding).lower()
    if key not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return key


def output_size(size, k, s, padding):
    """Output length along one axis: ⌈size/s⌉ for 'same', ⌊(size − k)/s⌋ + 1 for 'valid'."""
    return math.ceil(size / s) if padding == "same" else (size - k) // s + 1


def same_pads(size, k, s):
    """(before, after) zero padding of TF's 'same' along one axis; the extra pixel goes after."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def geometry(x_shape, kernel, strides, padding):
    """(n, h, w, c, pad_top, pad_left, padded_h, padded_w, out_h, out_w) for NHWC ``x_shape``."""
    n, h, w, c = x_shape
    (kh, kw), (sh, sw) = kernel, strides
    (pt, pb), (pl, pr) = (same_pads(h, kh, sh), same_pads(w, kw, sw)) if padding == "same" else ((0, 0), (0, 0))
    hp, wp = h + pt + pb, w + pl + pr
    return n, h, w, c, pt, pl, hp, wp, (hp - kh) // sh + 1, (wp - kw) // sw + 1


def padded(scratch, xp, x, g, key, fill):
    """x inside a border of ``fill`` kept between steps (only the interior is rewritten), or x itself."""
    n, h, w, c, pt, pl, hp, wp, _, _ = g
    if (hp, wp) == (h, w):
        return x
    buf = scratch.get(xp, key, (n, hp, wp, c), x.dtype, fill=fill)
    buf[:, pt:pt + h, pl:pl + w, :] = x
    return buf


def window_slice(start, count, step):
    """The slice picking ``count`` elements from ``start`` every ``step``: one window position."""
    return slice(start, start + step * (count - 1) + 1, step)


# OpenBLAS computes products of fewer multiply-adds than this on one thread (65536 · 4).
_SMALL_GEMM = 1 << 18


class Scratch:
    """Per-layer arrays reused from step to step instead of allocated anew.

    Freeing and reallocating arrays of megabytes each step lets glibc hand the
    memory back to the kernel and fault it in again, page by page: measured,
    that alone made some training steps half again as slow. So internal
    temporaries live here, and so do training-mode outputs and backward's dx:
    those are consumed within the step (the next layer keeps them at most until
    its backward) and are rewritten only by this layer's next training call.
    Inference outputs are always fresh arrays, because ``predict`` keeps them.
    """

    def __init__(self):
        self._bufs = {}

    def get(self, xp, key, shape, dtype, fill=None):
        """Buffer ``key`` of ``shape``; ``fill`` is written once, when it is (re)allocated."""
        buf = self._bufs.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = xp.empty(shape, dtype=dtype) if fill is None else xp.full(shape, fill, dtype=dtype)
            self._bufs[key] = buf
        return buf

    def output(self, xp, shape, dtype, training):
        """A forward output: reused in training, fresh at inference."""
        return self.get(xp, "y", shape, dtype) if training else xp.empty(shape, dtype=dtype)


class Conv2D(Layer):
    """y = x ⋆ W + b (cross-correlation over NHWC, as Keras).

    As matrices: Y = cols·W + b with cols the (N·Ho·Wo, kh·kw·C) patches of x.
    Backward: dW = colsᵀ·dY, db = Σ dY, dcols = dY·Wᵀ, and dx is dcols added back
    onto the pixels each patch came from (col2im). A 'relu' activation is fused
    in place: y ← y·[y > 0], and backward first masks dY the same way.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", data_format=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.filters = int(filters)
        if self.filters <= 0:
            raise ValueError(f"Conv2D filters must be positive, got {filters}")
        if data_format not in (None, "channels_last"):
            raise ValueError("gpuprop's Conv2D is channels_last (NHWC) only")
        self.kernel_size = normalize_tuple(kernel_size, "kernel_size")
        self.strides = normalize_tuple(strides, "strides")
        self.padding = normalize_padding(padding)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        # ReLU in place on our own output saves the activation step a full copy and a pass.
        self._relu = self.activation is not None and self.activation.kind == "relu"
        if self._relu:
            self.activation = None
        self._scratch = Scratch()
        self._kept = None

    def build_params(self, input_shape, rng):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D expects (height, width, channels) samples, got shape {input_shape}")
        kh, kw = self.kernel_size
        self.add_weight("kernel", (kh, kw, input_shape[-1], self.filters), self.kernel_initializer, rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, rng)

    def compute_output_shape(self, input_shape):
        h, w = input_shape[0], input_shape[1]
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        ho, wo = output_size(h, kh, sh, self.padding), output_size(w, kw, sw, self.padding)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"Conv2D kernel {self.kernel_size} does not fit input {tuple(input_shape)} with 'valid' padding")
        return (ho, wo, self.filters)

    # --- the math -------------------------------------------------------------------------------
    def forward(self, x, training=False):
        return self.conv(x, training, self._relu)

    def conv(self, x, training=False, relu=False):
        """The convolution, with the fused ReLU only when ``relu`` (``fused.ConvReluPool`` defers it)."""
        xp = self.xp
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        g = geometry(x.shape, self.kernel_size, self.strides, self.padding)
        n, _, _, c, _, _, _, _, ho, wo = g
        m, k, nb = n * ho * wo, kh * kw * c, int(self.use_bias)
        xpad = padded(self._scratch, xp, x, g, "xpad", 0)
        # A column of ones makes the bias one more row of the kernel: the GEMM adds it, and
        # colsᵀ·dY yields db as its last row, saving two passes over the output.
        # With one input channel, cols is stored transposed (K, M): each row is then one
        # shifted image, copied with long contiguous runs instead of one float at a time.
        tall = c == 1
        shape = (k + nb, m) if tall else (m, k + nb)
        cols = self._scratch.get(xp, ("cols", training), shape, x.dtype, fill=1 if nb else None)
        if tall:
            rows = cols[:k].reshape(kh, kw, n, ho, wo)
            for i in range(kh):
                for j in range(kw):
                    rows[i, j] = xpad[:, window_slice(i, ho, sh), window_slice(j, wo, sw), 0]
        else:
            cols[:, :k].reshape(n, ho, wo, kh, kw, c)[...] = self.backend.windows(xpad, kh, kw, sh, sw)
        wmat = self._kernel_matrix(k, nb)
        y = self._scratch.output(xp, (m, self.filters), x.dtype, training)
        xp.matmul(cols.T if tall else cols, wmat, out=y)
        mask = None
        if relu:
            mask = self._scratch.get(xp, ("mask", training), y.shape, bool)
            xp.greater(y, 0, out=mask)
            y *= mask
        if training:
            self._kept = (cols, tall, mask, g)
        return y.reshape(n, ho, wo, self.filters)

    def _kernel_matrix(self, k, nb):
        kernel = self.params["kernel"].reshape(k, self.filters)
        if not nb:
            return kernel
        wmat = self._scratch.get(self.xp, "wmat", (k + 1, self.filters), kernel.dtype)
        wmat[:k] = kernel
        wmat[k] = self.params["bias"]
        return wmat

    def _weight_grad(self, cols_t, dy, n):
        """colsᵀ·dY, (K, M)·(M, F): a reduction over all N·Ho·Wo rows into a small matrix.

        OpenBLAS threads such a product by syncing its threads once per block of the
        long axis, hundreds of times; when other processes share the cores, each sync
        can wait a whole scheduler slice (a 10×32 result took 2 s, not 2 ms). When one
        image's share is small, per-image products (which OpenBLAS runs on one thread)
        summed afterwards cost about the same on an idle machine and never stall.
        """
        xp = self.xp
        k1, m = cols_t.shape
        per_image = k1 * self.filters * (m // n)
        if self.backend.is_gpu or n == 1 or per_image > _SMALL_GEMM:
            return xp.matmul(cols_t, dy)
        parts = xp.matmul(cols_t.reshape(k1, n, m // n).transpose(1, 0, 2), dy.reshape(n, m // n, self.filters))
        return parts.sum(axis=0)

    def backward(self, dy):
        xp = self.xp
        cols, tall, mask, g = self._kept
        self._kept = None
        n, h, w, c, pt, pl, hp, wp, ho, wo = g
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        k, nb = kh * kw * c, int(self.use_bias)
        dy = dy.reshape(n * ho * wo, self.filters)
        if mask is not None:
            dy *= mask
        gk = self.grads["kernel"].reshape(k, self.filters)
        dw = self._weight_grad(cols if tall else cols.T, dy, n)
        gk[...] = dw[:k]
        if nb:
            self.grads["bias"][...] = dw[k]
        if not self.need_input_grad:
            return None
        kernel = self.params["kernel"]
        # dcols tap-major, (kh·kw, M, C): each tap's block is then contiguous and col2im adds
        # long runs, where slicing taps out of dY·Wᵀ (M, K) would add C floats at a time.
        dtaps = self._scratch.get(xp, "dtaps", (kh * kw, n * ho * wo, c), dy.dtype)
        if c == 1:
            xp.matmul(kernel.reshape(k, self.filters), dy.T, out=dtaps.reshape(k, n * ho * wo))
        else:
            xp.matmul(dy, kernel.reshape(kh * kw, c, self.filters).transpose(0, 2, 1), out=dtaps)
        dtaps = dtaps.reshape(kh, kw, n, ho, wo, c)
        dxp = self._scratch.get(xp, "dx", (n, hp, wp, c), dy.dtype)
        dxp.fill(0)
        for i in range(kh):  # col2im: each tap adds its gradient back where it read its input
            for j in range(kw):
                dxp[:, window_slice(i, ho, sh), window_slice(j, wo, sw), :] += dtaps[i, j]
        if (hp, wp) == (h, w):
            return dxp
        return dxp[:, pt:pt + h, pl:pl + w, :]

    def get_config(self):
        cfg = super().get_config()
        if self._relu:
            cfg["activation"] = "relu"
        cfg.update(filters=self.filters, kernel_size=list(self.kernel_size), strides=list(self.strides),
                   padding=self.padding, use_bias=self.use_bias,
                   kernel_initializer=str(getattr(self.kernel_initializer, "__name__", self.kernel_initializer)),
                   bias_initializer=str(getattr(self.bias_initializer, "__name__", self.bias_initializer)))
        return cfg
