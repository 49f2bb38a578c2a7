"""Losses, each returning ``(loss, dloss/dprediction)`` in one call (Keras names).

Keras' argument order: ``loss(y_true, y_pred)``. A loss object called on arrays
gives the batch mean; each loss also has Keras' function form
(``categorical_crossentropy(y_true, y_pred)``: one value per sample), which
``compile(loss=...)`` accepts as it accepts the name. Cross-entropies fuse with
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

    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "mean", None):
            raise ValueError(f"reduction={reduction!r} is not supported: gpuprop's losses average over the batch "
                             "(reduction='sum_over_batch_size', Keras' default)")
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
        """The batch mean as a 0-d array on the loss's device; host arrays and lists are taken as given."""
        y_true, y_pred = _as_arrays(self, y_true, y_pred)
        return self.loss_and_grad(y_true, y_pred)[0]

    def per_sample(self, y_true, y_pred):
        """One value per sample (the function form's result); y_pred is logits when ``from_logits``."""
        raise NotImplementedError(f"{type(self).__name__} has no per-sample form")

    def loss_and_grad(self, y_true, y_pred):
        """(loss, dL/dy_pred); with ``from_logits`` y_pred is the logits."""
        if self.from_logits:
            return self.loss_and_grad_from_logits(y_true, y_pred)
        return self.loss_and_grad_from_output(y_true, y_pred)

    def loss_and_grad_from_logits(self, y_true, logits):
        raise NotImplementedError(f"{type(self).__name__} has no logits form")

    def weighted_loss_and_grad(self, y_true, y_pred, sample_weight, logits):
        """Keras' weighted 'sum_over_batch_size': L = Σᵢ wᵢ·lᵢ / N; dL/dŷᵢ = wᵢ · (unweighted dL/dŷᵢ).

        ``sample_weight`` is a device array of N weights; ``logits`` says whether
        y_pred is the logits (a fused or from_logits loss). The gradient is the
        unweighted one with row i scaled by wᵢ, so each loss keeps one formula;
        N counts every position of a rank-3 output, as the unweighted form does.
        """
        per = self.per_sample_values(y_true, y_pred, logits)  # before the gradient, which may reuse y_pred
        w = sample_weight.astype(y_pred.dtype, copy=False)
        _, grad = (self.loss_and_grad_from_logits if logits else self.loss_and_grad_from_output)(y_true, y_pred)
        grad *= w.reshape((-1,) + (1,) * (grad.ndim - 1))
        per = per.reshape(per.shape[0], -1)
        return (per * w[:, None]).sum() / per.size, grad

    def per_sample_values(self, y_true, y_pred, logits):
        """Per-sample losses, y_pred being logits when ``logits`` (only cross-entropies have that form)."""
        return self.per_sample(y_true, y_pred)

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

    def per_sample(self, y_true, y_pred):
        diff = y_pred - y_true.reshape(y_pred.shape)
        return (diff * diff).mean(axis=-1)


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

    def per_sample(self, y_true, y_pred):
        diff = y_pred - y_true.reshape(y_pred.shape)
        return 0.5 * (diff * diff).reshape(diff.shape[0], -1).sum(axis=-1)


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

    def per_sample(self, y_true, y_pred):
        return self.per_sample_values(y_true, y_pred, self.from_logits)

    def per_sample_values(self, y_true, y_pred, logits):
        xp = self.ops.xp
        y_true = y_true.astype(y_pred.dtype, copy=False)
        if logits:
            return -(y_true * self.ops.log_softmax(y_pred)).sum(axis=-1)
        eps = config.epsilon()
        return -(y_true * xp.log(xp.clip(y_pred, eps, 1 - eps))).sum(axis=-1)


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

    def per_sample_values(self, y_true, y_pred, logits):
        k = y_pred.shape[-1]
        onehot = self.ops.xp.eye(k, dtype=y_pred.dtype)[_labels(y_true)]
        return super().per_sample_values(onehot.reshape(y_pred.shape), y_pred, logits)


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

    def per_sample(self, y_true, y_pred):
        return self.per_sample_values(y_true, y_pred, self.from_logits)

    def per_sample_values(self, y_true, y_pred, logits):
        xp, y = self.ops.xp, y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        if logits:
            return (xp.maximum(y_pred, 0) - y_pred * y + xp.log1p(xp.exp(-xp.abs(y_pred)))).mean(axis=-1)
        eps = config.epsilon()
        p = xp.clip(y_pred, eps, 1 - eps)
        return -(y * xp.log(p) + (1 - y) * xp.log(1 - p)).mean(axis=-1)


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


from .distance_losses import CategoricalHinge, Hinge, Huber, KLDivergence, MeanAbsoluteError  # noqa: E402

_ALIASES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "half_mse": HalfMeanSquaredError,
    "half_mean_squared_error": HalfMeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "kld": KLDivergence,
    "kl_divergence": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "hinge": Hinge,
    "categorical_hinge": CategoricalHinge,
}
_NAMES = sorted(_ALIASES)
_ALIASES.update({cls.__name__.lower(): cls for cls in set(_ALIASES.values())})  # 'MeanSquaredError' too, as Keras


def _function_form(cls, name, options=()):
    """Keras' function form of ``cls``: ``fn(y_true, y_pred, **options)`` → one value per sample."""

    def fn(y_true, y_pred, **kwargs):
        unknown = sorted(set(kwargs) - set(options))
        if unknown:
            raise TypeError(f"{name}() got unexpected argument(s) {', '.join(unknown)}")
        unsupported = (kwargs.pop("label_smoothing", 0), kwargs.pop("axis", -1) != -1,
                       kwargs.pop("ignore_class", None) is not None)
        if any(unsupported):
            raise ValueError(f"{name}(): gpuprop supports label_smoothing=0, axis=-1 and ignore_class=None only")
        loss = cls(**kwargs)
        y_true, y_pred = _as_arrays(loss, y_true, y_pred)
        return loss.per_sample(y_true, y_pred)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Per-sample {cls.__name__} of (y_true, y_pred), as ``keras.losses.{name}``; see {cls.__name__}."
    fn.loss_class = cls
    return fn


_CE = ("from_logits", "label_smoothing", "axis")
mean_squared_error = mse = _function_form(MeanSquaredError, "mean_squared_error")
mean_absolute_error = mae = _function_form(MeanAbsoluteError, "mean_absolute_error")
categorical_crossentropy = _function_form(CategoricalCrossentropy, "categorical_crossentropy", _CE)
sparse_categorical_crossentropy = _function_form(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy",
                                                 ("from_logits", "ignore_class", "axis"))
binary_crossentropy = _function_form(BinaryCrossentropy, "binary_crossentropy", _CE)
huber = _function_form(Huber, "huber", ("delta",))
kl_divergence = kld = _function_form(KLDivergence, "kl_divergence")
hinge = _function_form(Hinge, "hinge")
categorical_hinge = _function_form(CategoricalHinge, "categorical_hinge")


def _as_arrays(loss, y_true, y_pred):
    """Arrays on the loss's backend (the GPU when given CuPy arrays): y_pred in a float dtype, y_true as given."""
    if loss.backend is None:
        loss.backend = get_backend("gpu" if type(y_pred).__module__.startswith("cupy") else "cpu")
    backend = loss.backend
    y_pred = backend.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(config.floatx())
    y_true = backend.asarray(y_true)
    if y_true.dtype.kind == "f" and y_true.dtype != y_pred.dtype:
        y_true = y_true.astype(y_pred.dtype)
    return y_true, y_pred


def get(identifier):
    """A loss object from its Keras name (``'mse'``, ``'categorical_crossentropy'``, ...), class,
    function form (``losses.categorical_crossentropy``) or instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and hasattr(identifier, "loss_class"):
        return identifier.loss_class()
    if callable(identifier):
        raise ValueError(f"loss {getattr(identifier, '__name__', identifier)!r} is a function gpuprop cannot "
                         "differentiate: use a gpuprop loss (a name, class or gpuprop.losses function) "
                         "or subclass gpuprop.losses.Loss with its gradient")
    key = str(identifier).lower().replace("-", "_")
    if key not in _ALIASES:
        raise ValueError(f"unknown loss {identifier!r}: use one of {', '.join(_NAMES)}")
    return _ALIASES[key]()


def from_config(name, config_dict):
    """The loss ``name`` with the settings its ``get_config()`` returned (a checkpoint's compile block)."""
    loss = get(name)
    return type(loss)(**(config_dict or {}))
