"""Global pooling over the spatial axes of NHWC images: one value per channel."""

from .base import Layer


class _GlobalPooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"gpuprop's {type(self).__name__} is channels_last (NHWC) only")
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} expects (height, width, channels) samples, got {input_shape}")
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def _as_nhwc(self, dy):
        return dy if self.keepdims else dy[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """y[n, c] = (1/HW) Σ_hw x[n, h, w, c].  Backward: dx[n, h, w, c] = dy[n, c] / HW.  Keeps the input shape."""

    def forward(self, x, training=False):
        if training:
            self._shape = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy):
        n, h, w, c = self._shape
        dx = self.xp.empty(self._shape, dtype=dy.dtype)
        dx[...] = self._as_nhwc(dy) * (1.0 / (h * w))
        return dx


class GlobalMaxPooling2D(_GlobalPooling2D):
    """y[n, c] = max_hw x[n, h, w, c].  Backward: dx = dy at the first (row-major) maximum, 0 elsewhere.

    Keeps the flat position of each maximum.
    """

    def forward(self, x, training=False):
        n, h, w, c = x.shape
        flat = x.reshape(n, h * w, c)
        if training:
            self._shape = x.shape
            self._argmax = flat.argmax(axis=1)  # (n, c); argmax returns the first maximum
        y = flat.max(axis=1)
        return y.reshape(n, 1, 1, c) if self.keepdims else y

    def backward(self, dy):
        n, h, w, c = self._shape
        dx = self.xp.zeros((n, h * w, c), dtype=dy.dtype)
        rows, chans = self.xp.arange(n)[:, None], self.xp.arange(c)[None, :]
        dx[rows, self._argmax, chans] = dy.reshape(n, c)
        self._argmax = None
        return dx.reshape(n, h, w, c)
