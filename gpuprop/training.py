"""The device-resident training loop behind ``fit`` and ``gpuprop train`` (``evaluate``/``predict``: evaluation.py).

The dataset moves to the device once. Shuffling (a permutation drawn on the
device) and batch gathering happen there too. Loss and metrics are summed
into device scalars, so within an epoch the host waits for the device only
when a progress display or a callback that reads batch logs asks, never per
step otherwise. The shuffle and dropout streams are derived from (seed,
epochs done) and follow the step, which is what makes a run resumed
mid-epoch reproduce the uninterrupted one exactly.

Host syncs (device-to-host reads; gpu-sim counts them): none inside a training
step. Per epoch without a live progress bar, 3: the first non-finite step, the
loss sum and the correct count (2 without metrics); a validation pass adds 2
(1 without metrics). Once per dataset, 1: the label range check. A batch
callback adds reads only when it reads its logs. Sample or class weights add
none: they are made on the device once per dataset and gathered per batch.
"""

import contextlib
import math
import signal
import threading
import time
import warnings

from . import metrics as metrics_mod
from .callbacks import CallbackList, History
from .callbacks.base import LazyLogs
from .data_passes import RAN_OUT, DataPasses
from .device_data import DeviceDataset, _check_label_range, as_dataset  # noqa: F401 - the loop's data, re-exported
from .distributed.parallel import data_parallel
from .errors import TrainingError
from .evaluation import _steps_rows, evaluate, predict  # noqa: F401 - fit validates with evaluate; re-exported
from .progress import EpochProgress


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``fit`` between two steps; the model holds the last completed step."""

    def __init__(self, epoch, step, history):
        super().__init__(f"interrupted in epoch {epoch + 1} after step {step}")
        self.epoch, self.step, self.history = epoch, step, history

class _StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step."""

    def __init__(self, keep=False):
        self.requested = False
        self._old = None
        self._keep = keep  # data-parallel: every Ctrl-C only asks, so all ranks stop after the same step

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        if not self._keep:  # one process: a second Ctrl-C is immediate
            signal.signal(signal.SIGINT, self._old or signal.default_int_handler)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def fit(model, x, y=None, batch_size=32, epochs=1, verbose="auto", validation_data=None, validation_freq=1,
        shuffle=True, initial_epoch=0, steps_per_epoch=None, callbacks=None, log=None, refresh=0.3,
        validation_batch_size=None, sample_weight=None, class_weight=None, validation_steps=None):
    """Train epochs ``initial_epoch .. epochs-1`` (Keras); the first one finishes a partial epoch if any.

    ``model.epoch`` / ``model.step_in_epoch`` count epochs and steps done over
    the model's whole life (they seed the shuffle and dropout streams and are
    saved in checkpoints); the epoch numbers shown and passed to callbacks
    are this call's, as in Keras. ``sample_weight`` / ``class_weight`` weight each
    sample's loss and the ``weighted_metrics`` (``metrics=`` stay unweighted, as Keras);
    ``validation_data`` may carry weights as (x, y, sample_weight);
    ``validation_steps`` validates on the first that many batches.
    ``steps_per_epoch`` follows Keras' one iterator per ``fit`` call (``DataPasses``).
    """
    if steps_per_epoch is not None and (isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        raise ValueError(f"steps_per_epoch must be a positive integer (or None for whole passes over the data), "
                         f"got {steps_per_epoch!r}")
    data = as_dataset(model, x, y, sample_weight, class_weight)
    val = as_dataset(model, *validation_data) if validation_data is not None else None
    dp = data_parallel(model, batch_size, data.n, verbose, log)  # None in a world of one
    verbose = 0 if dp and dp.rank else verbose  # only rank 0 prints
    batches = dp.steps(data.n, batch_size) if dp else math.ceil(data.n / batch_size)
    steps = steps_per_epoch or batches  # what an epoch asks for; it gets fewer when the data pass runs out
    passes = DataPasses(model, batches)
    if model.step_in_epoch >= passes.steps_now(steps):  # a checkpoint taken after an epoch's last step: it is done
        passes.end_epoch(model.step_in_epoch)
    history = History()  # last, as in Keras: it records the logs after other callbacks added to them
    user = list(callbacks) if isinstance(callbacks, (list, tuple)) else [] if callbacks is None else [callbacks]
    cbs = CallbackList([*user, history], model, {"verbose": verbose, "epochs": epochs, "steps": steps})
    model.stop_training = False
    logs = None
    with _StopFlag(keep=dp is not None) as stop, dp or contextlib.nullcontext():
        cbs.call("on_train_begin", None)
        for epoch in range(initial_epoch, epochs):
            cbs.call("on_epoch_begin", epoch, None)
            # Keras prints 'Epoch k/N' only when N > 1, after the callbacks' on_epoch_begin (its progress
            # bar is the last callback), and the epoch's line after their on_epoch_end
            first = model.step_in_epoch
            epoch_steps = passes.steps_now(steps)  # below ``steps`` when this epoch meets the end of a pass
            bar = EpochProgress(epoch if epochs > 1 else None, epochs, steps, verbose, log, first_step=first)
            acc = metrics_mod.Accumulator(model.xp, model.metrics, model._outputs_logits)
            partial = _resumed_sums(model, first)
            if partial and not (dp and dp.rank):  # a mid-epoch checkpoint carries the epoch's sums so far: the
                acc.restore(partial)              # line covers the whole epoch (under MPI rank 0 holds them)
            wall = train_epoch(model, data, batch_size, epoch_steps, shuffle, cbs, bar, stop, refresh, acc, dp,
                               passes)
            if dp is not None:  # every rank's sums: the epoch's global loss, metrics and sample count
                dp.reduce_accumulator(acc)
            logs = acc.result()
            if stop.requested and model.step_in_epoch < epoch_steps:
                bar.close(model.step_in_epoch, logs, wall, interrupted=True)
                if partial or not first:  # sums from the epoch's first step: a resume can finish them
                    model.metadata["epoch_sums"] = {"epoch": model.epoch, "step": model.step_in_epoch,
                                                    **acc.snapshot()}
                raise TrainingInterrupted(model.epoch, model.step_in_epoch, history)
            if val is not None and _validate_now(epoch, validation_freq):
                val_logs = evaluate(model, val, batch_size=validation_batch_size or max(batch_size, 256), callbacks=cbs,
                                    dp=dp, steps=validation_steps)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            done = model.step_in_epoch  # below ``epoch_steps`` when a callback stopped training mid-epoch
            if done == epoch_steps < steps:
                warnings.warn(RAN_OUT.format(steps=steps, batches=batches, n=data.n, batch_size=batch_size))
            passes.end_epoch(done)
            model.metadata.pop("epoch_sums", None)
            ran = acc.seen - (partial["seen"] if partial else 0)  # samples trained in this run, for the speed
            stats = {"time": wall, "samples_per_sec": ran / wall if wall > 0 else float("inf"), "steps": done - first}
            history.stats.append(stats)
            cbs.set_stats(stats)
            cbs.call("on_epoch_end", epoch, logs)
            bar.close(done, logs, wall, note="" if partial or not first else
                      f"(loss and accuracy over steps {first + 1}-{steps} only: resumed mid-epoch)")
            if dp is not None:
                stop.requested = dp.any(stop.requested)
            if stop.requested:  # Ctrl-C came during the epoch's last step: the epoch is complete
                raise TrainingInterrupted(model.epoch, 0, history)
            if model.stop_training:
                break
        cbs.call("on_train_end", logs)
        if dp is not None:
            dp.verify("after training")
    passes.finish()  # the next fit starts a new pass over its data, as each Keras fit starts a new iterator
    model.history = history
    return history


def train_epoch(model, data, batch_size, steps, shuffle, cbs, bar, stop, refresh, acc, dp=None, passes=None):
    """Steps ``model.step_in_epoch .. steps-1`` of epoch ``model.epoch``, summed into ``acc``; returns wall seconds.

    Step s trains on batch ``passes.offset + s`` of the current data pass
    (a pass: one shuffle of the data). With ``dp`` (several MPI ranks) this
    rank trains on its slice of each global batch and ``acc`` sums its
    slice only (``fit`` reduces them).
    """
    backend, xp = model.backend, model.xp
    first = model.step_in_epoch
    offset, shuffle_key = (passes.offset, passes.shuffle_epoch) if passes is not None else (0, model.epoch)
    perm = backend.permutation((model.seed, shuffle_key), data.n) if shuffle else None
    seed_dropout(model, model.epoch, first, batch_size // dp.size if dp else batch_size, (dp.rank,) if dp else ())
    targets = data.targets(model.metrics)
    weights = data.w
    batch_begin, batch_end = cbs.wants("on_train_batch_begin"), cbs.wants("on_train_batch_end")
    bad_step = xp.full((), -1, dtype="int64") if backend.is_gpu else None
    backend.synchronize()
    t0 = last_read = time.perf_counter()
    for step in range(first, steps):
        if batch_begin:
            cbs.call("on_train_batch_begin", step, None)
        lo, hi = (offset + step) * batch_size, min((offset + step + 1) * batch_size, data.n)
        if dp is not None:
            lo, hi = dp.shard(lo, hi)
        if perm is not None:
            idx = perm[lo:hi]
            # the arrays' own take: a graph model's several inputs (models.graph_training.Arrays) batch alike
            xb, yb = data.x.take(idx, axis=0), data.y.take(idx, axis=0)
            tb = [yb if t is None else t.take(idx, axis=0) for t in targets]
            wb = None if weights is None else weights.take(idx)
        else:
            xb, yb = data.x[lo:hi], data.y[lo:hi]
            tb = [yb if t is None else t[lo:hi] for t in targets]
            wb = None if weights is None else weights[lo:hi]
        loss, out = model.train_step(xb, yb) if wb is None else model.train_step(xb, yb, wb)
        acc.add(loss, out, tb, hi - lo, wb)
        model.step_in_epoch = step + 1
        if bad_step is None:
            if not math.isfinite(loss) and not _stops_on_nan(cbs):
                _raise_nonfinite(model.epoch, step, model)
        else:
            bad_step = xp.where((bad_step < 0) & ~xp.isfinite(loss), step, bad_step)
        if batch_end:
            cbs.call("on_train_batch_end", step, LazyLogs(acc.result))
        now = time.perf_counter()
        if bar.live and (now - last_read >= refresh or step == first):  # drawn at once, then every refresh s
            last_read = now
            _check_bad(bad_step, model.epoch, model)
            bar.update(step + 1, acc.result())  # under MPI: this rank's share
        if dp is not None:  # every rank stops after the same step
            stop.requested, model.stop_training = dp.agree(stop.requested, model.stop_training)
        if stop.requested or model.stop_training:
            break
    backend.synchronize()
    if not model.stop_training:
        _check_bad(bad_step, model.epoch, model)
    return time.perf_counter() - t0


def _resumed_sums(model, first):
    """The sums a mid-epoch checkpoint saved for this epoch up to step ``first``, or None."""
    sums = getattr(model, "metadata", {}).get("epoch_sums") if first else None
    if sums and (sums.get("epoch"), sums.get("step")) == (model.epoch, first):
        return sums
    return None


def seed_dropout(model, epoch, step, batch_size, stream=()):
    """Seed each dropout layer's stream from (seed, epoch, layer, *stream), then replay the masks of steps done.

    ``stream`` is (rank,) under MPI: a distinct, reproducible stream per rank.

    Mid-epoch (a resumed run) the masks of the first ``step`` batches are
    drawn and dropped, so step ``step`` draws exactly what it would have
    drawn in the uninterrupted run.
    """
    backend = model.backend
    dropouts = [s for s in model._train_steps if hasattr(s, "rate") and hasattr(s, "rng")]
    for i, layer in enumerate(dropouts):
        layer.rng = backend.rng((model.seed, epoch, i + 1, *stream))
        if step and layer.rate > 0:
            layer.skip_batches(step, batch_size)


def _stops_on_nan(cbs):
    return any(type(cb).__name__ == "TerminateOnNaN" for cb in cbs.callbacks)


def _validate_now(epoch, freq):
    """Keras' validation_freq: every ``freq`` epochs, or at the (1-based) epochs listed."""
    if isinstance(freq, int):
        return (epoch + 1) % freq == 0
    return epoch + 1 in freq


def _check_bad(bad_step, epoch, model):
    if bad_step is not None and int(bad_step) >= 0:
        _raise_nonfinite(epoch, int(bad_step), model)


def _raise_nonfinite(epoch, step, model):
    lr = model.optimizer.current_learning_rate()
    raise TrainingError(
        f"loss became NaN or infinite in epoch {epoch + 1} at step {step + 1}: "
        f"lower the learning rate (now {lr:g}, try {lr / 10:g})"
    )
