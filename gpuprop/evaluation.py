"""``evaluate`` and ``predict`` on the device: batch by batch, loss and metrics summed into device scalars and read
once at the end (gpu-sim counts those reads: 2 per pass with metrics, 1 without)."""

import math
import time
import warnings

from . import metrics as metrics_mod
from .callbacks import CallbackList
from .callbacks.base import LazyLogs
from .distributed.parallel import shard_rows
from .progress import EpochProgress


def evaluate(model, data, batch_size=256, verbose=0, callbacks=None, log=None, dp=None, steps=None):
    """Mean loss and metrics over ``data`` (a DeviceDataset) without training, as a logs dict.

    The loss is weighted by ``data.w`` when the dataset has weights (Keras: each
    batch's Σ wᵢ·lᵢ / N, averaged over batches by size). ``steps``: only the
    first that many batches. With ``dp`` each rank evaluates its contiguous
    share of the rows and the sums are reduced.
    """
    if steps is not None:
        data = data.head(_steps_rows(steps, batch_size, data.n))
    with model.backend.scope():  # the CLI calls this directly: the sums belong on the model's device
        return _evaluate(model, data, batch_size, verbose, callbacks, log, dp)


def _steps_rows(steps, batch_size, n):
    """The rows the first ``steps`` batches cover; more batches than the data has: all of it, with Keras' warning."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer (or None for all the data), got {steps!r}")
    available = math.ceil(n / batch_size)
    if steps > available:
        warnings.warn(f"the data ran out before steps={steps}: {n} samples make {available} batches of "
                      f"{batch_size}, so all {available} were used (as Keras does); pass steps <= {available}",
                      stacklevel=4)
    return min(n, steps * batch_size)


def _evaluate(model, data, batch_size, verbose, callbacks, log, dp):
    xp = model.xp
    cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks, model, {})
    metric_list = model.metrics
    targets = data.targets(metric_list)
    acc = metrics_mod.Accumulator(xp, metric_list, model._outputs_logits)
    first, last = (0, data.n) if dp is None else shard_rows(data.n, dp.world)
    steps = math.ceil((last - first) / batch_size)
    bar = EpochProgress(None, None, steps, verbose, log)
    batch_begin, batch_end = cbs.wants("on_test_batch_begin"), cbs.wants("on_test_batch_end")
    cbs.call("on_test_begin", None)
    t0 = time.perf_counter()
    for step in range(steps):
        if batch_begin:
            cbs.call("on_test_batch_begin", step, None)
        lo, hi = first + step * batch_size, min(first + (step + 1) * batch_size, last)
        wb = None if data.w is None else data.w[lo:hi]
        loss, out = model.test_step(data.x[lo:hi], data.y[lo:hi]) if wb is None else \
            model.test_step(data.x[lo:hi], data.y[lo:hi], wb)
        acc.add(loss, out, [data.y[lo:hi] if t is None else t[lo:hi] for t in targets], hi - lo, wb)
        if batch_end:
            cbs.call("on_test_batch_end", step, LazyLogs(acc.result))
    if dp is not None:
        dp.reduce_accumulator(acc)
    logs = acc.result()
    bar.close(steps, logs, time.perf_counter() - t0)
    cbs.call("on_test_end", logs)
    return logs


def predict(model, x, batch_size=256, verbose=0, callbacks=None, log=None, steps=None):
    """Model outputs for ``x`` as one host NumPy array, computed batch by batch on the device;
    ``steps``: only the first that many batches."""
    from .models.network import cast_input

    xp = model.xp

    def run(lo, hi):
        return model.forward(cast_input(model.backend, x[lo:hi]), training=False)

    def to_host(outs):
        return model.backend.to_host(xp.concatenate(outs) if outs else xp.zeros((0, *model._output_shape)))

    return predict_loop(model, int(x.shape[0]), batch_size, run, to_host, verbose, callbacks, log, steps)


def predict_loop(model, n, batch_size, run, to_host, verbose=0, callbacks=None, log=None, steps=None):
    """Keras' predict loop over ``n`` rows, every model kind's: ``run(lo, hi)`` gives one batch's output(s) on
    the device, ``to_host(outputs)`` what predict returns; the on_predict_* hooks and the printed line around
    them. ``steps``: only the first that many batches."""
    cbs = CallbackList(callbacks, model, {})
    if steps is not None:
        n = _steps_rows(steps, batch_size, n)
    steps = math.ceil(n / batch_size)
    bar = EpochProgress(None, None, steps, verbose, log)
    want_begin, want_end = cbs.wants("on_predict_batch_begin"), cbs.wants("on_predict_batch_end")
    cbs.call("on_predict_begin", None)
    t0 = time.perf_counter()
    outs = []
    for step in range(steps):
        if want_begin:
            cbs.call("on_predict_batch_begin", step, None)
        outs.append(run(step * batch_size, min((step + 1) * batch_size, n)))
        if want_end:
            cbs.call("on_predict_batch_end", step, {"outputs": outs[-1]})
    host = to_host(outs)
    bar.close(steps, {}, time.perf_counter() - t0)
    cbs.call("on_predict_end", None)
    return host
