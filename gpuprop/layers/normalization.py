"""Batch normalization with Keras' arguments, defaults and weight order."""

from .base import Layer


class BatchNormalization(Layer):
    """y = γ·x̂ + β, x̂ = (x − μ)/σ, σ = √(var + ε), statistics per channel (``axis``).

    Training uses the batch's μ and biased variance over every other axis (so it
    works after Dense (N, C) and after Conv2D (N, H, W, C)) and updates
    moving = moving·momentum + batch·(1 − momentum) for both mean and variance;
    like Keras (``ops.moments``) the moving variance uses the biased batch
    variance, where PyTorch's running_var uses the unbiased one. Inference uses
    the moving averages.

    Backward (training, m elements per channel): dγ = Σ dy·x̂, dβ = Σ dy,
    dx = (γ/σ)/m · (m·dy − Σ dy − x̂·Σ dy·x̂).
    Weights: gamma, beta (trainable), moving_mean, moving_variance (state).

    A frozen layer (``trainable=False``) runs in inference mode even in
    training, as Keras does: y = a·x + b with a = γ/√(moving_var + ε), so
    dx = a·dy, dγ = Σ dy·x̂, dβ = Σ dy (not applied: the layer is frozen).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            if len(axis) != 1:
                raise ValueError(f"BatchNormalization normalizes over one axis, got axis={axis!r}")
            axis = axis[0]
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self._kept = None

    def build_params(self, input_shape, rng):
        rank = len(input_shape) + 1  # with the batch axis
        axis = self.axis if self.axis >= 0 else rank + self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"BatchNormalization axis {self.axis} is out of range for samples of shape {input_shape}")
        self._axis = axis
        self._reduce = tuple(a for a in range(rank) if a != axis)
        self._bshape = tuple(input_shape[axis - 1] if a == axis else 1 for a in range(rank))
        c = (input_shape[axis - 1],)
        if self.scale:
            self.add_weight("gamma", c, self.gamma_initializer, rng)
        if self.center:
            self.add_weight("beta", c, self.beta_initializer, rng)
        self.add_weight("moving_mean", c, self.moving_mean_initializer, rng, trainable=False)
        self.add_weight("moving_variance", c, self.moving_variance_initializer, rng, trainable=False)

    def forward(self, x, training=False):
        xp = self.xp
        gamma = self.params.get("gamma")
        beta = self.params.get("beta")
        if not training or not self.trainable:
            inv_std = 1.0 / xp.sqrt(self.state["moving_variance"] + self.epsilon)
            a = inv_std if gamma is None else gamma * inv_std
            b = -self.state["moving_mean"] * a
            if beta is not None:
                b += beta
            # a frozen layer inside a training step keeps what its (inference-form) backward needs
            self._kept = ("inference", x, inv_std, a) if training else None
            return x * a.reshape(self._bshape) + b.reshape(self._bshape)
        if self._axis == x.ndim - 1:  # channels last: a (m, C) view, per-channel vectors broadcast as is
            x2 = x.reshape(-1, x.shape[-1])
            mean = x2.mean(axis=0)
            xhat = x2 - mean
            var = xp.einsum("ij,ij->j", xhat, xhat) / x2.shape[0]
            bshape = (-1,)
        else:
            mean = x.mean(axis=self._reduce, keepdims=True)
            xhat = x - mean
            var = (xhat * xhat).mean(axis=self._reduce).reshape(-1)
            mean = mean.reshape(-1)
            bshape = self._bshape
        inv_std = 1.0 / xp.sqrt(var + self.epsilon)
        xhat *= inv_std.reshape(bshape)
        mom = self.momentum
        for name, stat in (("moving_mean", mean), ("moving_variance", var)):
            moving = self.state[name]
            moving *= mom
            moving += (1.0 - mom) * stat
        y = xhat * gamma.reshape(bshape) if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta.reshape(bshape)
        self._kept = (xhat, inv_std)
        return y.reshape(x.shape)

    def backward(self, dy):
        xp = self.xp
        if self._kept is None:
            raise RuntimeError(f"{self.name or 'BatchNormalization'}: backward needs a forward(training=True) "
                               "just before it (an inference forward keeps nothing to differentiate)")
        if isinstance(self._kept[0], str):
            return self._backward_inference(dy)
        xhat, inv_std = self._kept
        self._kept = None
        gamma = self.params.get("gamma")
        shape = dy.shape
        if xhat.ndim == 2:
            dy = dy.reshape(xhat.shape)
            dbeta = dy.sum(axis=0)
            dgamma = xp.einsum("ij,ij->j", dy, xhat)
            bshape = (-1,)
        else:
            dbeta = dy.sum(axis=self._reduce)
            dgamma = (dy * xhat).sum(axis=self._reduce)
            bshape = self._bshape
        if gamma is not None:
            self.grads["gamma"][...] = dgamma
        if self.center:
            self.grads["beta"][...] = dbeta
        if not self.need_input_grad:
            return None
        m = dy.size // dbeta.size
        scale = inv_std if gamma is None else gamma * inv_std
        # dx = (γ/σ)·(dy − Σdy/m − x̂·Σ(dy·x̂)/m), computed in the space of dy (which we may overwrite)
        dy -= (dbeta / m).reshape(bshape)
        xhat *= (dgamma / m).reshape(bshape)
        dy -= xhat
        dy *= scale.reshape(bshape)
        return dy.reshape(shape)

    def _backward_inference(self, dy):
        """Backward of y = a·x + b with the moving statistics (a frozen layer in training)."""
        _, x, inv_std, a = self._kept
        self._kept = None
        axes = tuple(i for i in range(dy.ndim) if i != self._axis)
        if "gamma" in self.params:
            xhat = (x - self.state["moving_mean"].reshape(self._bshape)) * inv_std.reshape(self._bshape)
            self.grads["gamma"][...] = (dy * xhat).sum(axis=axes)
        if self.center:
            self.grads["beta"][...] = dy.sum(axis=axes)
        return dy * a.reshape(self._bshape) if self.need_input_grad else None

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
                   scale=self.scale)
        for key in ("beta_initializer", "gamma_initializer", "moving_mean_initializer",
                    "moving_variance_initializer"):
            value = getattr(self, key)
            cfg[key] = str(getattr(value, "__name__", value))
        return cfg
