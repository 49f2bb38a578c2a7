"""Keras' other compile metrics: categorical, sparse and top-k accuracy, MAE and MSE.

Each follows ``metrics.Metric``'s contract (``name`` is Keras' log name,
``batch_sum`` the metric summed over a batch as a 0-d device array) and is
also a Keras-style object on arrays: ``m(y_true, y_pred)`` or
``update_state`` then ``result()``. ``per_sample_values`` (one value per
sample) is what ``batch_sum`` sums and what a weighted metric weights. The function forms
(``sparse_categorical_accuracy(y_true, y_pred)``) give one value per sample.
With a softmax/sigmoid output fused into its cross-entropy the loop hands
metrics the logits: argmax and top-k read them as they are (the order is the
same), MAE and MSE apply the output activation first.
"""

from .backend import get_backend
from .metrics import Metric


def _on_backend(y_true, y_pred):
    backend = get_backend("gpu" if type(y_pred).__module__.startswith("cupy") else "cpu")
    y_pred = backend.asarray(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype("float64")
    return backend.xp, backend.asarray(y_true), y_pred


class ArrayMetric(Metric):
    """A metric that also runs on its own on arrays, accumulating a mean over every sample seen."""

    def __init__(self, name=None):
        if name is not None:
            self.name = name
        self.loss_name = None
        self.reset_state()

    def reset_state(self):
        self._total, self._count = 0.0, 0

    def per_sample(self, xp, targets, out):
        """One value per sample from the metric's targets and the model's output (probabilities)."""
        raise NotImplementedError

    def per_sample_values(self, xp, targets, out, logits):
        return self.per_sample(xp, targets, out)

    def update_state(self, y_true, y_pred):
        xp, y_true, y_pred = _on_backend(y_true, y_pred)
        values = self.per_sample(xp, self.targets(xp, y_true), y_pred)
        self._total += float(values.sum())
        self._count += int(values.shape[0])

    def result(self):
        return self._total / self._count if self._count else 0.0

    def __call__(self, y_true, y_pred):
        self.update_state(y_true, y_pred)
        return self.result()


class SparseCategoricalAccuracy(ArrayMetric):
    """[argmax ŷ = y] with integer labels y."""

    name = "sparse_categorical_accuracy"

    def targets(self, xp, y):
        return y.reshape(-1)

    def per_sample(self, xp, labels, out):
        return (out.reshape(labels.shape[0], -1).argmax(axis=-1) == labels).astype("float64")


class CategoricalAccuracy(SparseCategoricalAccuracy):
    """[argmax ŷ = argmax y] with one-hot y."""

    name = "categorical_accuracy"

    def targets(self, xp, y):
        return y.argmax(axis=-1)


class TopKCategoricalAccuracy(CategoricalAccuracy):
    """[fewer than k scores exceed the true class's score]: the true class is among the k best (ties count)."""

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        self.k = int(k)
        super().__init__(name)

    def per_sample(self, xp, labels, out):
        out = out.reshape(labels.shape[0], -1)
        mine = xp.take_along_axis(out, labels.astype("int64")[:, None], axis=-1)
        return ((out > mine).sum(axis=-1) < self.k).astype("float64")


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    name = "sparse_top_k_categorical_accuracy"

    def targets(self, xp, y):
        return y.reshape(-1)


class MeanAbsoluteError(ArrayMetric):
    """mean |ŷ − y| over each sample's values."""

    name = "mean_absolute_error"
    direction = "down"

    def _diff(self, xp, y, out):
        if y.size != out.size:
            raise ValueError(f"{self.name} compares outputs with targets of the same shape; got targets of "
                             f"{y.size // max(y.shape[0], 1)} values per sample for outputs of "
                             f"{out.size // max(out.shape[0], 1)} (integer labels? use an accuracy metric)")
        return (out - y.reshape(out.shape)).reshape(out.shape[0], -1)

    def per_sample(self, xp, y, out):
        return xp.abs(self._diff(xp, y, out)).mean(axis=-1)

    def per_sample_values(self, xp, targets, out, logits):
        if logits:  # the loop passes logits when the output activation is fused into the loss
            out = _probabilities(xp, out, self.loss_name)
        return self.per_sample(xp, targets, out)


class MeanSquaredError(MeanAbsoluteError):
    """mean (ŷ − y)² over each sample's values."""

    name = "mean_squared_error"

    def per_sample(self, xp, y, out):
        d = self._diff(xp, y, out)
        return (d * d).mean(axis=-1)


def _probabilities(xp, logits, loss_name):
    if loss_name == "binary_crossentropy":
        return 1 / (1 + xp.exp(-logits))
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _function(cls, name, **fixed):
    def fn(y_true, y_pred, **kwargs):
        metric = cls(**{**fixed, **kwargs})
        xp, y_true, y_pred = _on_backend(y_true, y_pred)
        return metric.per_sample(xp, metric.targets(xp, y_true), y_pred)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Per-sample {cls.__name__} of (y_true, y_pred), as ``keras.metrics.{name}``."
    fn.metric_class = cls
    return fn


sparse_categorical_accuracy = _function(SparseCategoricalAccuracy, "sparse_categorical_accuracy")
categorical_accuracy = _function(CategoricalAccuracy, "categorical_accuracy")
top_k_categorical_accuracy = _function(TopKCategoricalAccuracy, "top_k_categorical_accuracy")
sparse_top_k_categorical_accuracy = _function(SparseTopKCategoricalAccuracy, "sparse_top_k_categorical_accuracy")
mean_absolute_error = mae = _function(MeanAbsoluteError, "mean_absolute_error")
mean_squared_error = mse = _function(MeanSquaredError, "mean_squared_error")

# compile(metrics=[name]) -> the metric, logged under that name as Keras does ('mae' logs 'mae')
REGISTRY = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}
