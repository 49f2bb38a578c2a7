"""``fit`` and ``evaluate`` for graph models with several inputs or outputs.

A model with one input and one output trains through ``training.fit``, the
loop every model shares. With several, the arrays come as lists or dicts and
the logs carry one loss per output and one value per (output, metric), under
Keras' names: ``loss`` (Σ_k w_k L_k), ``<output>_loss``, ``<output>_accuracy``,
and ``val_`` before each for validation data. This loop is the shared one
reduced to that bookkeeping: sums stay on the device and are read once per
epoch (and when a live progress bar asks).
"""

import math
import time

from .. import metrics, training
from ..progress import EpochProgress
from . import multi_output


class GraphData:
    """A multi-input, multi-output dataset on the model's device: inputs, targets and accuracy labels."""

    def __init__(self, model, x, y):
        backend = model.backend
        xs = model._inputs_as_list(x)
        from .network import cast_input

        self.x = [cast_input(backend, a) for a in xs]
        self.y = [multi_output.device_target(backend, l, t)
                  for l, t in zip(model.output_losses, multi_output.targets(model, y))]
        self.n = int(self.x[0].shape[0])
        for name, a in [*zip(model.input_names, self.x), *zip(model.output_names, self.y)]:
            if a is not None and int(a.shape[0]) != self.n:
                raise ValueError(f"{name} has {int(a.shape[0])} samples but the first input has {self.n}: "
                                 "give every input and target the same number of samples")
        self.labels = [metrics.label_targets(model.xp, t, l.name) if t is not None and ms else None
                       for t, l, ms in zip(self.y, model.output_losses, model.output_metrics)]

    def batch(self, xp, idx=None, lo=0, hi=None):
        pick = (lambda a: None if a is None else xp.take(a, idx, axis=0)) if idx is not None else \
            (lambda a: None if a is None else a[lo:hi])
        return [pick(a) for a in self.x], [pick(a) for a in self.y], [pick(a) for a in self.labels]


def _batch_sums(model, xp, loss, outs, labels):
    """[total, L_1..L_k, correct counts per (output, metric)] for one batch, as one device vector."""
    per = model._last_losses
    outs = outs if isinstance(outs, list) else [outs]
    parts = [loss] + [p if p is not None else 0.0 for p in per]
    for out, lb, l, ms, (_, _, logits) in zip(outs, labels, model.output_losses, model.output_metrics,
                                              model._loss_plan):
        for _ in ms:
            parts.append(metrics.correct_count(xp, out, lb, l.name, logits) / out.shape[0])
    return xp.stack([xp.asarray(p, dtype="float64") for p in parts])


def _logs(model, sums, seen):
    values = [float(v) / seen for v in model.backend.to_host(sums)]
    logs = {"loss": values[0]}
    k = len(model.output_names)
    for name, loss, v in zip(model.output_names, model.output_losses, values[1:1 + k]):
        if loss is not None:
            logs[f"{name}_loss"] = v
    rest = iter(values[1 + k:])
    for name, ms in zip(model.output_names, model.output_metrics):
        for m in ms:
            logs[f"{name}_{m}"] = next(rest)
    return logs


def fit(model, x, y, batch_size=32, epochs=1, verbose="auto", callbacks=(), validation_split=0.0,
        validation_data=None, shuffle=True, initial_epoch=0, log=None):
    backend, xp = model.backend, model.xp
    data = GraphData(model, x, y)
    if validation_split and validation_data is None:  # Keras: the last fraction, before shuffling
        cut = int(data.n * (1.0 - validation_split))
        val = _split(data, cut)
    else:
        val = GraphData(model, *validation_data) if validation_data is not None else None
    history = training.History()
    steps = math.ceil(data.n / batch_size)
    dropouts = [s for s in model._train_steps if hasattr(s, "rate") and hasattr(s, "rng")]
    for epoch in range(initial_epoch, epochs):
        perm = backend.permutation((model.seed, epoch), data.n) if shuffle else None
        for i, layer in enumerate(dropouts):
            layer.rng = backend.rng((model.seed, epoch, i + 1))
        bar = EpochProgress(epoch, epochs, steps, verbose, log)
        sums, seen = None, 0
        backend.synchronize()
        t0 = last_read = time.perf_counter()
        for step in range(steps):
            lo, hi = step * batch_size, min((step + 1) * batch_size, data.n)
            xb, yb, lb = data.batch(xp, perm[lo:hi]) if perm is not None else data.batch(xp, None, lo, hi)
            loss, outs = model.train_step(xb, yb)
            batch = _batch_sums(model, xp, loss, outs, lb) * (hi - lo)
            sums = batch if sums is None else sums + batch
            seen += hi - lo
            model.step_in_epoch = step + 1
            now = time.perf_counter()
            if bar.live and now - last_read >= 0.3:
                last_read = now
                bar.update(step + 1, _logs(model, sums, seen))
        backend.synchronize()
        wall = time.perf_counter() - t0
        logs = _logs(model, sums, seen)
        if not math.isfinite(logs["loss"]):
            training._raise_nonfinite(epoch, steps - 1, model)
        if val is not None:
            logs.update({"val_" + k: v for k, v in evaluate(model, val, max(batch_size, 256)).items()})
        model.epoch, model.step_in_epoch = epoch + 1, 0
        stats = {"time": wall, "samples_per_sec": seen / wall if wall > 0 else float("inf"), "steps": steps}
        history.record(epoch, logs, stats)
        bar.close(steps, logs, wall)
        for cb in callbacks or ():
            cb(epoch, logs, stats)
    return history


def _split(data, cut):
    """Keep the first ``cut`` samples in ``data``; return the rest as a validation GraphData."""
    val = object.__new__(GraphData)
    val.x = [a[cut:] for a in data.x]
    val.y = [None if a is None else a[cut:] for a in data.y]
    val.labels = [None if a is None else a[cut:] for a in data.labels]
    val.n = data.n - cut
    data.x = [a[:cut] for a in data.x]
    data.y = [None if a is None else a[:cut] for a in data.y]
    data.labels = [None if a is None else a[:cut] for a in data.labels]
    data.n = cut
    return val


def evaluate(model, data, batch_size=256):
    """Logs (Keras' names) over a GraphData, without training."""
    sums = None
    for lo in range(0, data.n, batch_size):
        hi = min(lo + batch_size, data.n)
        xb, yb, lb = data.batch(model.xp, None, lo, hi)
        loss, outs = model.test_step(xb, yb)
        batch = _batch_sums(model, model.xp, loss, outs, lb) * (hi - lo)
        sums = batch if sums is None else sums + batch
    return _logs(model, sums, data.n)
