"""Several inputs and outputs through the one training loop (``training.fit`` / ``evaluate``).

The loop every model shares gathers a batch with ``a.take(idx, axis=0)``
or ``a[lo:hi]``, accumulates ``model.metrics`` through the ``Metric``
contract, and hands ``model.train_step`` whatever it gathered. So a graph
model with several inputs or outputs needs no loop of its own:

- ``Arrays`` holds one array per input (or output) and answers ``take`` and
  slicing for all of them at once, which is all the loop asks of ``x`` and ``y``;
- ``OutputLoss`` and ``OutputMetric`` are metrics that read one output: the
  first the loss that output's ``train_step`` just computed, the second a
  compiled metric applied to that output alone. Their names are Keras' log
  names (``department_loss``, ``department_accuracy``), so the logs, the
  progress line, callbacks and ``History`` all see them.

Sample weights ride along the same way: ``GraphData.w`` is one array for
every output or ``Arrays`` with one per output, batched like x and y.
"""

from .. import metrics as metrics_mod
from ..sample_weights import output_weights
from ..training import DeviceDataset, _check_label_range
from . import multi_output


class Arrays:
    """Several arrays with the same first axis, batched together."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def take(self, idx, axis=0, out=None, **kwargs):  # also what numpy.take / cupy.take call on an object
        return Arrays([None if a is None else a.take(idx, axis=axis) for a in self.arrays])

    def __getitem__(self, index):
        return Arrays([None if a is None else a[index] for a in self.arrays])

    @property
    def shape(self):
        return self.arrays[0].shape


class GraphData(DeviceDataset):
    """Inputs and targets (one array per model input and output) on the model's device."""

    def __init__(self, model, x, y, sample_weight=None, class_weight=None):
        from .network import cast_input

        if y is None:
            raise ValueError("y is missing: pass the targets as fit(x, y) or evaluate(x, y)")
        self.xp = model.xp
        xs = [cast_input(model.backend, a) for a in model._inputs_as_list(x)]
        ys = [multi_output.device_target(model.backend, l, t)
              for l, t in zip(model.output_losses, multi_output.targets(model, y))]
        self.n = int(xs[0].shape[0])
        for name, a in [*zip(model.input_names, xs), *zip(model.output_names, ys)]:
            if a is not None and int(a.shape[0]) != self.n:
                raise ValueError(f"{name} has {int(a.shape[0])} samples but the first input has {self.n}: "
                                 "give every input and target the same number of samples")
        for loss, t, shape in zip(model.output_losses, ys, model.output_shapes):
            if loss is not None and loss.name == "sparse_categorical_crossentropy":
                _check_label_range(model.backend, t, shape)  # CuPy would wrap a bad index silently
        # one input or output: its array as is, as the loop gives any model
        self.x = Arrays(xs) if len(xs) > 1 else xs[0]
        self.y = Arrays(ys) if len(ys) > 1 else ys[0]
        with model.backend.scope():
            w = output_weights(model, ys, self.n, sample_weight, class_weight)
        self.w = Arrays(w) if isinstance(w, list) else w  # one array for every output, or one per output
        self._targets = {}

    def split(self, cut):
        """(first ``cut`` samples, the rest): Keras' validation_split takes the last fraction, before shuffling."""
        head, tail = object.__new__(GraphData), object.__new__(GraphData)
        for part, rows, n in ((head, slice(0, cut), cut), (tail, slice(cut, None), self.n - cut)):
            part.xp, part.x, part.y, part.n, part._targets = self.xp, self.x[rows], self.y[rows], n, {}
            part.w = None if self.w is None else self.w[rows]
        return head, tail


class OutputLoss(metrics_mod.Metric):
    """The loss of output ``k`` as a logged metric (``<name>_loss``): what the step just computed, times the batch."""

    direction = "down"

    def __init__(self, model, k):
        self.model, self.k, self.name = model, k, f"{model.output_names[k]}_loss"

    def target_key(self):
        return ("loss", self.k)

    def batch_sum(self, xp, targets, out, logits):
        return self.model._last_losses[self.k] * _rows(out, self.k)


class OutputMetric(metrics_mod.Metric):
    """A compiled metric applied to output ``k`` alone, logged as ``<output name>_<metric name>``."""

    def __init__(self, model, k, metric):
        self.k, self.metric, self.logits = k, metric, model._loss_plan[k][2]
        self.name = f"{model.output_names[k]}_{metric.name}"
        self.direction = metric.direction
        self.weighted = getattr(metric, "weighted", False)  # a metrics.Weighted: the Accumulator asks weighted_sums

    def target_key(self):
        return (self.k, self.metric.target_key())

    def targets(self, xp, y):
        return self.metric.targets(xp, y.arrays[self.k])

    def batch_sum(self, xp, targets, out, logits):
        t = targets.arrays[self.k] if isinstance(targets, Arrays) else targets
        return self.metric.batch_sum(xp, t, out[self.k], self.logits)

    def weighted_sums(self, xp, targets, out, logits, w):
        t = targets.arrays[self.k] if isinstance(targets, Arrays) else targets
        return self.metric.weighted_sums(xp, t, out[self.k], self.logits, multi_output.output_weight(w, self.k))


def _rows(out, k):
    return int(out[k].shape[0])


def log_metrics(model):
    """What the loop accumulates for a model with several outputs: each output's loss, its metrics, then its
    weighted metrics (``<output>_<name>``, or ``<output>_weighted_<name>`` when a plain metric has that name)."""
    per_loss = [OutputLoss(model, k) for k, l in enumerate(model.output_losses) if l is not None]
    per_metric = [OutputMetric(model, k, m) for k, ms in enumerate(model.output_metrics) for m in ms]
    weighted = [(k, f"{model.output_names[k]}_", m) for k, ms in enumerate(model.output_weighted_metrics) for m in ms]
    names = metrics_mod.weighted_names([m.name for m in per_metric], [(prefix, m) for _, prefix, m in weighted])
    per_weighted = [OutputMetric(model, k, metrics_mod.Weighted(m, name[len(prefix):]))  # OutputMetric adds prefix
                    for (k, prefix, m), name in zip(weighted, names)]
    return per_loss + per_metric + per_weighted
