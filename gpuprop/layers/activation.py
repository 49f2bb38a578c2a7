"""Element-wise activations as a layer, and the names ``activation=`` accepts."""

from .base import Layer

# name -> (forward op, backward op, what backward needs: 'y' output, 'x' input, or 'slope' dy/dx, which the
# forward op's ``<name>_with_slope`` twin computes with y in training, sharing their costly part)
_TABLE = {
    "relu": ("relu", "relu_backward", "y"),
    "leaky_relu": ("leaky_relu", "leaky_relu_backward", "x"),
    "sigmoid": ("sigmoid", "sigmoid_backward", "y"),
    "tanh": ("tanh", "tanh_backward", "y"),
    "softmax": ("softmax", "softmax_backward", "y"),
    "gelu": ("gelu", "gelu_backward", "slope"),
}
_IDENTITY = {"linear", "identity", "none"}


def names():
    return sorted(_TABLE) + ["linear"]


class Activation(Layer):
    """Applies a named activation; its backward uses only the retained x or y.

    The derivative of each is in the docstring of the ``gpuprop.ops.Ops`` method
    of the same name, e.g. ``relu_backward``: dx = dy · [y > 0].
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        if isinstance(activation, Activation):
            activation = activation.kind
        elif callable(activation):  # gpuprop.activations.relu and friends, as Keras takes its functions
            activation = getattr(activation, "__name__", activation)
        key = "linear" if activation is None else str(activation).lower()
        if key not in _TABLE and key not in _IDENTITY:
            raise ValueError(f"unknown activation {activation!r}: use one of {', '.join(names())}")
        self.kind = "linear" if key in _IDENTITY else key
        self.identity = self.kind == "linear"
        # Set by a layer whose own output nobody else holds (Dense): then functions that
        # keep only y may overwrite x, saving an allocation and a pass per step.
        self.inplace = False
        self._kept = None

    def build_params(self, input_shape, rng):
        if not self.identity:
            fwd, bwd, self._needs = _TABLE[self.kind]
            self._fwd = getattr(self.backend.ops, fwd)
            self._overwrite = self.inplace and self._needs == "y" and self.kind != "softmax"
            self._bwd = getattr(self.backend.ops, bwd)
            self._fwd_slope = getattr(self.backend.ops, fwd + "_with_slope", None)

    def forward(self, x, training=False):
        if self.identity:
            return x
        if training and self._needs == "slope":
            y, self._kept = self._fwd_slope(x)
            return y
        y = self._fwd(x, out=x) if self._overwrite else self._fwd(x)
        if training:
            self._kept = y if self._needs == "y" else x
        return y

    def backward(self, dy):
        if self.identity:
            return dy
        return self._bwd(dy, self._kept)

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = self.kind
        return cfg


class ReLU(Activation):
    """y = max(x, 0) as a layer (Keras' ReLU with its default arguments)."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        if max_value is not None or negative_slope or threshold:
            raise ValueError("gpuprop's ReLU layer has no max_value, negative_slope or threshold: "
                             "use LeakyReLU(negative_slope) for a slope, or drop the argument")
        super().__init__("relu", **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class Softmax(Activation):
    """y_i = e^x_i / Σ_j e^x_j over the last axis, as a layer (Keras' Softmax, axis=-1)."""

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise ValueError(f"gpuprop's Softmax layer normalizes the last axis only (axis=-1), got axis={axis}")
        super().__init__("softmax", **kwargs)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class LeakyReLU(Layer):
    """y = x if x > 0 else a·x (Keras' default a = 0.3).  Backward: dx = dy · (1 if x > 0 else a).  Keeps x."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)
        self._x = None

    def forward(self, x, training=False):
        if training:
            self._x = x
        return self.backend.ops.leaky_relu(x, self.negative_slope)

    def backward(self, dy):
        x, self._x = self._x, None
        return self.backend.ops.leaky_relu_backward(dy, x, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}
