"""Fully connected layer, Keras layout: kernel (in, out), bias (out,)."""

from .base import Layer


class Dense(Layer):
    """y = x·W + b.

    Backward: dW = xᵀ·dy, db = Σ_batch dy, dx = dy·Wᵀ. Keeps only x. Inputs of
    rank > 2 are treated as Keras does: W acts on the last axis.
    """

    output_is_private = True  # y = x·W + b is fresh and only x is kept

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"Dense units must be positive, got {units}")
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._x = None

    def build_params(self, input_shape, rng):
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer, rng)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, rng)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, x, training=False):
        if training:
            self._x = x
        y = x @ self.params["kernel"]
        if self.use_bias:
            y += self.params["bias"]
        return y

    def backward(self, dy):
        x, w = self._x, self.params["kernel"]
        if x.ndim > 2:
            x = x.reshape(-1, x.shape[-1])
            dy2 = dy.reshape(-1, dy.shape[-1])
        else:
            dy2 = dy
        self.xp.matmul(x.T, dy2, out=self.grads["kernel"])
        if self.use_bias:
            self.backend.ops.sum_batch(dy2, out=self.grads["bias"])
        self._x = None
        return dy @ w.T if self.need_input_grad else None

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, use_bias=self.use_bias,
                   kernel_initializer=str(getattr(self.kernel_initializer, "__name__", self.kernel_initializer)),
                   bias_initializer=str(getattr(self.bias_initializer, "__name__", self.bias_initializer)))
        return cfg
