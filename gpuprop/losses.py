"""Losses, each returning ``(loss, dloss/dprediction)`` in one call (Keras names).

Keras' argument order: ``loss(y_true, y_pred)``. Cross-entropies fuse with
their output activation: when the model ends in softmax (or sigmoid) the loss
receives the logits and the gradient is simply ``(p − y)/N``, which is both
cheaper and free of the 0·log 0 and e^1e4 traps of going through p.
"""

from . import config
from .backend import get_backend


class Loss:
    """Base class. ``fuses_with`` names the output activation whose logits it can take."""

    name = "loss"
    fuses_with = None

    def __init__(self, from_logits=False, name=None):
        self.from_logits = from_logits
        if name:
            self.name = name
        self.backend = None

    def build(self, backend):
        self.backend = get_backend(backend)
        return self

    @property
    def ops(self):
        if self.backend is None:
            self.backend = get_backend("cpu")
        return self.backend.ops

    def __call__(self, y_true, y_pred):
        return self.loss_and_grad(y_true, y_pred)[0]

    def loss_and_grad(self, y_true, y_pred):
        """(loss, dL/dy_pred); with ``from_logits`` y_pred is the logits."""
        if self.from_logits:
            return self.loss_and_grad_from_logits(y_true, y_pred)
        return self.loss_and_grad_from_output(y_true, y_pred)

    def loss_and_grad_from_logits(self, y_true, logits):
        raise NotImplementedError(f"{type(self).__name__} has no logits form")

    def loss_and_grad_from_output(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """Keras' mean form: L = (1/n) Σ (ŷ − y)² over all n elements; dŷ = 2(ŷ − y)/n."""

    name = "mean_squared_error"

    def loss_and_grad_from_output(self, y_true, y_pred):
        diff = y_pred - y_true.reshape(y_pred.shape)
        n = diff.size
        loss = (diff * diff).sum() / n
        diff *= 2.0 / n
        return loss, diff

    loss_and_grad_from_logits = loss_and_grad_from_output


class HalfMeanSquaredError(Loss):
    """The textbook form: L = 1/(2N) Σ_samples ‖ŷ − y‖²; dŷ = (ŷ − y)/N, N the batch size."""

    name = "half_mean_squared_error"

    def loss_and_grad_from_output(self, y_true, y_pred):
        diff = y_pred - y_true.reshape(y_pred.shape)
        n = diff.shape[0]
        loss = (diff * diff).sum() / (2 * n)
        diff *= 1.0 / n
        return loss, diff

    loss_and_grad_from_logits = loss_and_grad_from_output


class CategoricalCrossentropy(Loss):
    """L = −(1/N) Σ y·log p with one-hot y. From logits z: p = softmax(z), dz = (p − y)/N."""

    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def loss_and_grad_from_logits(self, y_true, logits):
        return self.ops.softmax_cross_entropy(logits, y_true.astype(logits.dtype, copy=False))

    def loss_and_grad_from_output(self, y_true, y_pred):
        # dp = −y / (N·p), with p clipped as Keras does so log 0 never happens
        # n counts samples × positions: a rank-3 (N, T, K) output averages over N·T, as Keras does
        xp, eps, n = self.ops.xp, config.epsilon(), y_pred.size // y_pred.shape[-1]
        p = xp.clip(y_pred, eps, 1 - eps)
        loss = -(y_true * xp.log(p)).sum() / n
        return loss, _through_clip(-(y_true / p) / n, y_pred, eps)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """As CategoricalCrossentropy with integer labels: dz = (p − onehot(y))/N."""

    name = "sparse_categorical_crossentropy"

    def loss_and_grad_from_logits(self, y_true, logits):
        return self.ops.softmax_cross_entropy(logits, _labels(y_true))

    def loss_and_grad_from_output(self, y_true, y_pred):
        xp = self.ops.xp
        labels = _labels(y_true)
        onehot = xp.zeros((labels.shape[0], y_pred.shape[-1]), dtype=y_pred.dtype)
        onehot[xp.arange(labels.shape[0]), labels] = 1
        return super().loss_and_grad_from_output(onehot.reshape(y_pred.shape), y_pred)


class BinaryCrossentropy(Loss):
    """L = −mean(y log p + (1 − y) log(1 − p)). From logits z: p = σ(z), dz = (p − y)/n."""

    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def loss_and_grad_from_logits(self, y_true, logits):
        return self.ops.sigmoid_binary_cross_entropy(logits, y_true.reshape(logits.shape).astype(logits.dtype))

    def loss_and_grad_from_output(self, y_true, y_pred):
        xp, eps, n = self.ops.xp, config.epsilon(), y_pred.size
        y = y_true.reshape(y_pred.shape)
        p = xp.clip(y_pred, eps, 1 - eps)
        loss = -(y * xp.log(p) + (1 - y) * xp.log(1 - p)).sum() / n
        return loss, _through_clip((p - y) / (p * (1 - p)) / n, y_pred, eps)


def _labels(y_true):
    """Integer class labels as a flat array. Signed and narrow unsigned labels index as they are
    (a conversion per step costs softmax regression ~1 µs); floats and uint64, which int64
    offsets would promote to float, become int64."""
    labels = y_true if y_true.ndim == 1 else y_true.reshape(-1)
    dt = labels.dtype
    return labels if dt.kind == "i" or (dt.kind == "u" and dt.itemsize < 8) else labels.astype("int64")


def _through_clip(grad, y_pred, eps):
    """Where the clip was active the loss is flat in y_pred, so the gradient there is 0."""
    grad *= (y_pred > eps) & (y_pred < 1 - eps)
    return grad


_ALIASES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "half_mse": HalfMeanSquaredError,
    "half_mean_squared_error": HalfMeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}


def get(identifier):
    """A loss object from its Keras name (``'mse'``, ``'categorical_crossentropy'``, ...) or instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    key = str(identifier).lower().replace("-", "_")
    if key not in _ALIASES:
        raise ValueError(f"unknown loss {identifier!r}: use one of {', '.join(sorted(_ALIASES))}")
    return _ALIASES[key]()
