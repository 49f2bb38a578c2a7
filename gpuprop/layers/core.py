"""Shape and regularisation layers without weights: Flatten, Reshape, Dropout."""

import math

from .base import Layer


class Flatten(Layer):
    """y = x reshaped to (N, ∏ per-sample dims); dx = dy reshaped back.

    Lenient where Keras is strict: data already flattened to the same element
    count (``(N, 784)`` into ``Flatten(input_shape=(28, 28))``) passes through.
    """

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape) if self.need_input_grad else None


class Reshape(Layer):
    """y = x reshaped to (N, *target_shape); dx = dy reshaped back."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def compute_output_shape(self, input_shape):
        # One -1 may stand for the remaining size, as in Keras; later layers need the real number.
        target, size = list(self.target_shape), math.prod(input_shape)
        if -1 in target:
            target[target.index(-1)] = size // max(1, -math.prod(target))
        if math.prod(target) != size:
            raise ValueError(f"cannot reshape {tuple(input_shape)} ({size} values) to {self.target_shape}")
        return tuple(target)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape((x.shape[0], *self.target_shape))

    def backward(self, dy):
        return dy.reshape(self._shape) if self.need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Inverted dropout, active only in training: y = x · m / (1 − rate), m ~ Bernoulli(1 − rate).

    Backward: dx = dy · m / (1 − rate). At inference y = x, so no rescaling is needed.
    The mask comes from the layer's device generator (``self.rng``), which the
    training loop seeds per epoch and advances with the step
    (``skip_batches``), so a run resumed mid-epoch draws what the
    uninterrupted one drew.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = None
        self._mask = None

    def build_params(self, input_shape, rng):
        if self.rng is None:
            self.rng = self.backend.rng(self.seed if self.seed is not None else int(rng.integers(2**31)))

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        keep = 1.0 - self.rate
        mask = self.rng.random(x.shape, dtype=x.dtype) < keep
        self._mask = mask.astype(x.dtype)
        self._mask *= 1.0 / keep
        return x * self._mask

    def skip_batches(self, n, batch_size):
        """Draw and drop the masks of ``n`` full training batches (as ``forward`` draws them)."""
        shape = (batch_size, *self.input_shape)
        for _ in range(n):
            self.rng.random(shape, dtype=self.dtype)

    def backward(self, dy):
        if self._mask is None:
            return dy
        dy *= self._mask
        return dy

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
