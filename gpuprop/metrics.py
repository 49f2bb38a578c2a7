"""Metrics computed on the device, accumulated without reading them back each step.

The contract every metric follows (``compile(metrics=[...])`` turns each
entry into one of these): ``name`` is Keras' log name; ``targets(xp, y)``
turns a dataset's y into what the metric compares against (computed once
per dataset, then gathered per batch); ``batch_sum(xp, targets, out,
logits)`` returns a 0-d device array: the metric summed over the batch's
samples. The loop adds these sums on the device and divides by the samples
seen only when logs are read (``Accumulator``).

A metric that has a per-sample form (``per_sample_values``) can also be a
weighted metric (Keras' ``compile(weighted_metrics=...)``): ``Weighted`` wraps
it, multiplies its per-sample values by the batch's sample weights and keeps
its own denominator Σ wᵢ, so each metric's formula stays in one place.
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

    def per_sample_values(self, xp, targets, out, logits):
        """One value per sample (what a weighted metric multiplies by the sample weights)."""
        raise NotImplementedError(f"metric {self.name!r} has no per-sample form: it cannot be a weighted metric")

    def batch_sum(self, xp, targets, out, logits):
        return self.per_sample_values(xp, targets, out, logits).sum()


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

    def per_sample_values(self, xp, labels, out, logits):
        """1 where the sample is classified right, else 0 (binary: the fraction of its columns right)."""
        # Softmax outputs and logits share their argmax; the binary threshold is 0 on logits, 0.5 on probabilities.
        if self.loss_name == "binary_crossentropy":
            pred = out > (0 if logits else 0.5)
            return (pred == (labels > 0.5)).sum(axis=1) / labels.shape[1]
        if out.ndim > 1 and out.shape[-1] > 1:
            return out.argmax(axis=-1) == labels
        return xp.rint(out.reshape(-1)) == labels


class Weighted(Metric):
    """``metric`` weighted by the sample (or class) weights: Σ wᵢ·mᵢ / Σ wᵢ over the epoch (Keras'
    ``weighted_metrics``); without weights it equals the plain metric. ``name`` is the log name."""

    weighted = True

    def __init__(self, metric, name=None):
        self.metric, self.name, self.direction = metric, name or metric.name, metric.direction

    def bind(self, loss_name):
        self.metric.bind(loss_name)
        self.loss_name = loss_name
        return self

    def target_key(self):
        return self.metric.target_key()

    def targets(self, xp, y):
        return self.metric.targets(xp, y)

    def batch_sum(self, xp, targets, out, logits):
        return self.metric.batch_sum(xp, targets, out, logits)

    def weighted_sums(self, xp, targets, out, logits, w):
        """(Σ wᵢ·mᵢ, Σ wᵢ) over the batch as device scalars; (plain sum, rows) when ``w`` is None."""
        if w is None:
            return self.metric.batch_sum(xp, targets, out, logits), int(out.shape[0])
        v = self.metric.per_sample_values(xp, targets, out, logits)
        v = v.reshape(v.shape[0], -1).mean(axis=1) if v.ndim > 1 else v  # rank-3 outputs: the sample's mean
        w = w.astype("float64")
        return (v * w).sum(), w.sum()


def compiled(metrics):
    """(plain metrics, the metrics inside the weighted ones): what ``compile(metrics=, weighted_metrics=)`` got."""
    return ([m for m in metrics if not getattr(m, "weighted", False)],
            [m.metric for m in metrics if getattr(m, "weighted", False)])


def weighted_list(weighted_metrics, loss_name, plain_names):
    """``compile(weighted_metrics=[...])`` as ``Weighted`` metrics under Keras' log names."""
    if weighted_metrics is None:
        return []
    if not isinstance(weighted_metrics, (list, tuple)):
        raise ValueError(f"weighted_metrics must be a list, e.g. weighted_metrics=['accuracy']; "
                         f"got {type(weighted_metrics).__name__}")
    return wrap_weighted([get(m, loss_name) for m in weighted_metrics], plain_names)


def wrap_weighted(found, plain_names):
    """Metric objects as ``Weighted`` ones named as Keras names them next to ``plain_names``."""
    names = weighted_names(plain_names, [("", m) for m in found])
    return [Weighted(m, name) for m, name in zip(found, names)]


def weighted_names(plain_names, weighted):
    """Keras' log names for weighted metrics: the metric's own name, or ``weighted_<name>`` when a plain
    metric (or an earlier weighted one) already logs under it. ``weighted`` holds (prefix, metric) pairs."""
    used, names = set(plain_names), []
    for prefix, m in weighted:
        name = prefix + m.name
        if name in used:
            name = base = prefix + "weighted_" + m.name
            i = 1
            while name in used:
                name, i = f"{base}_{i}", i + 1
        used.add(name)
        names.append(name)
    return names


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
    """Sums of loss·samples and of each metric, on the device; ``result`` reads them (one host sync each).

    ``sums`` holds one sum per metric, then one denominator Σ wᵢ per weighted
    metric (so whatever sums ``sums`` over ranks sums those too); a plain
    metric's denominator is the samples seen. ``result`` reads the loss and
    each sum, and a weighted metric's denominator too: per epoch, not per step.
    """

    def __init__(self, xp, metrics, logits):
        self.xp, self.metrics, self.logits = xp, metrics, logits
        self.loss_sum = xp.zeros((), dtype="float64")
        self._den = {}  # metric index -> index of its denominator in sums
        for i, m in enumerate(metrics):
            if getattr(m, "weighted", False):
                self._den[i] = len(metrics) + len(self._den)
        self.sums = [xp.zeros((), dtype="float64") for _ in range(len(metrics) + len(self._den))]
        self.seen = 0

    def add(self, loss, out, targets, n, weights=None):
        """Add one batch of ``n`` samples; ``targets`` holds one array per metric, ``weights`` the batch's
        sample weights (a device array, one per output, or None) for the weighted metrics."""
        self.loss_sum += loss * n
        for i, (m, t) in enumerate(zip(self.metrics, targets)):
            if i in self._den:
                num, den = m.weighted_sums(self.xp, t, out, self.logits, weights)
                self.sums[i] += num
                self.sums[self._den[i]] += den
            else:
                self.sums[i] += m.batch_sum(self.xp, t, out, self.logits)
        self.seen += n

    def snapshot(self):
        """The sums as plain numbers (a mid-epoch checkpoint keeps them so a resume can finish the epoch's line)."""
        return {"seen": self.seen, "loss_sum": float(self.loss_sum),
                "metric_sums": {m.name: float(s) for m, s in zip(self.metrics, self.sums)},
                "metric_weights": {self.metrics[i].name: float(self.sums[d]) for i, d in self._den.items()}}

    def restore(self, saved):
        """Continue from ``snapshot()``'s sums (older checkpoints kept accuracy's as 'correct')."""
        self.seen = int(saved["seen"])
        self.loss_sum += saved["loss_sum"]
        named = saved.get("metric_sums") or {"accuracy": saved.get("correct", 0.0)}
        dens = saved.get("metric_weights") or {}
        for i, m in enumerate(self.metrics):
            self.sums[i] += named.get(m.name, 0.0)
            if i in self._den:
                self.sums[self._den[i]] += dens.get(m.name, float(self.seen))

    def result(self):
        """Mean loss and metrics over the samples seen (weighted metrics: over Σ wᵢ; 0 when that is 0, as
        Keras), log names sorted as Keras prints them."""
        seen = max(self.seen, 1)
        logs = {"loss": float(self.loss_sum) / seen}
        for i, m in enumerate(self.metrics):
            if i in self._den:
                num, den = float(self.sums[i]), float(self.sums[self._den[i]])
                logs[m.name] = num / den if den else 0.0
            else:
                logs[m.name] = float(self.sums[i]) / seen
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
