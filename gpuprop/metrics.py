"""Metrics computed on the device, accumulated without reading them back each step.

The contract every metric follows (``compile(metrics=[...])`` turns each
entry into one of these): ``name`` is Keras' log name; ``targets(xp, y)``
turns a dataset's y into what the metric compares against (computed once
per dataset, then gathered per batch); ``batch_sum(xp, targets, out,
logits)`` returns a 0-d device array: the metric summed over the batch's
samples. The loop adds these sums on the device and divides by the samples
seen only when logs are read (``Accumulator``).
"""


class Metric:
    """Base class. ``bind`` tells the metric which loss the model trains with."""

    name = None
    direction = "up"  # what EarlyStopping's mode='auto' reads: 'up' or 'down' is better

    def bind(self, loss_name):
        self.loss_name = loss_name
        return self

    def target_key(self):
        """Metrics with equal keys share one targets array per dataset."""
        return (type(self).__name__, self.loss_name)

    def targets(self, xp, y):
        return y

    def batch_sum(self, xp, targets, out, logits):
        raise NotImplementedError


class Accuracy(Metric):
    """Fraction of samples classified right: argmax for softmax outputs, a 0.5 threshold for binary ones."""

    def __init__(self, name="accuracy"):
        self.name = name

    def targets(self, xp, y):
        """Class indices for softmax losses, 0/1 values for binary."""
        if self.loss_name == "binary_crossentropy":
            return y.reshape(y.shape[0], -1)
        if y.ndim > 1 and y.shape[-1] > 1:
            return y.argmax(axis=-1)
        return y if y.ndim == 1 else y.reshape(-1)  # integer labels are their own targets: no second gather

    def batch_sum(self, xp, labels, out, logits):
        # Softmax outputs and logits share their argmax; the binary threshold is 0 on logits, 0.5 on probabilities.
        if self.loss_name == "binary_crossentropy":
            pred = out > (0 if logits else 0.5)
            return (pred == (labels > 0.5)).sum() / labels.shape[1]
        if out.ndim > 1 and out.shape[-1] > 1:
            return (out.argmax(axis=-1) == labels).sum()
        return (xp.rint(out.reshape(-1)) == labels).sum()


# Keras' names for each metric (what compile accepts) -> a factory giving the metric with its log name.
REGISTRY = {"accuracy": lambda: Accuracy("accuracy"), "acc": lambda: Accuracy("accuracy")}


def get(identifier, loss_name):
    """A metric object bound to ``loss_name`` from a name, a function form or a ``Metric`` instance."""
    if isinstance(identifier, Metric):
        return identifier.bind(loss_name)
    if callable(identifier) and hasattr(identifier, "metric_class"):  # metrics.categorical_accuracy and friends
        return identifier.metric_class(name=identifier.__name__).bind(loss_name)
    factory = REGISTRY.get(str(identifier).lower())
    if factory is None:
        raise ValueError(f"unknown metric {identifier!r}: use one of {', '.join(sorted(REGISTRY))}")
    return factory().bind(loss_name)


class Accumulator:
    """Sums of loss·samples and of each metric, on the device; ``result`` reads them (one host sync)."""

    def __init__(self, xp, metrics, logits):
        self.xp, self.metrics, self.logits = xp, metrics, logits
        self.loss_sum = xp.zeros((), dtype="float64")
        self.sums = [xp.zeros((), dtype="float64") for _ in metrics]
        self.seen = 0

    def add(self, loss, out, targets, n):
        """Add one batch of ``n`` samples; ``targets`` holds one array per metric."""
        self.loss_sum += loss * n
        for i, (m, t) in enumerate(zip(self.metrics, targets)):
            self.sums[i] += m.batch_sum(self.xp, t, out, self.logits)
        self.seen += n

    def snapshot(self):
        """The sums as plain numbers (a mid-epoch checkpoint keeps them so a resume can finish the epoch's line)."""
        return {"seen": self.seen, "loss_sum": float(self.loss_sum),
                "metric_sums": {m.name: float(s) for m, s in zip(self.metrics, self.sums)}}

    def restore(self, saved):
        """Continue from ``snapshot()``'s sums (older checkpoints kept accuracy's as 'correct')."""
        self.seen = int(saved["seen"])
        self.loss_sum += saved["loss_sum"]
        named = saved.get("metric_sums") or {"accuracy": saved.get("correct", 0.0)}
        for i, m in enumerate(self.metrics):
            self.sums[i] += named.get(m.name, 0.0)

    def result(self):
        """Mean loss and metrics over the samples seen, log names sorted as Keras prints them."""
        seen = max(self.seen, 1)
        logs = {"loss": float(self.loss_sum) / seen}
        logs.update({m.name: float(s) / seen for m, s in zip(self.metrics, self.sums)})
        return dict(sorted(logs.items()))


# kept for callers of the first API
def label_targets(xp, y, loss_name):
    return Accuracy().bind(loss_name).targets(xp, y)


def correct_count(xp, out, labels, loss_name, logits):
    return Accuracy().bind(loss_name).batch_sum(xp, labels, out, logits)


# Keras' other metrics (keras_metrics.py), by name and as classes and function forms on this module, as in Keras.
from .keras_metrics import (REGISTRY as _MORE, CategoricalAccuracy, MeanAbsoluteError,  # noqa: E402
                            MeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                            TopKCategoricalAccuracy, categorical_accuracy, mae, mean_absolute_error,
                            mean_squared_error, mse, sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                            top_k_categorical_accuracy)

REGISTRY.update({key: (lambda cls=cls, key=key: cls(name=key)) for key, cls in _MORE.items()})
KNOWN = set(REGISTRY)
