"""The device-resident training loop behind ``Sequential.fit`` and ``gpuprop train``.

The dataset moves to the device once. Shuffling (a permutation drawn on the
device) and batch gathering happen there too. Loss and correct counts are
summed into device scalars, so within an epoch the host waits for the device
only when a progress display asks (every few hundred milliseconds), never per
step. Shuffle and dropout streams are derived from (seed, epoch), which is what
makes a resumed run reproduce an uninterrupted one.

Host syncs (device-to-host reads; gpu-sim counts them): none inside a training
step. Per epoch without a live progress bar, 3: the first non-finite step, the
loss sum and the correct count (2 without metrics); a validation pass adds 2
(1 without metrics). Once per dataset, 1: the label range check.
"""

import math
import signal
import threading
import time

from . import metrics
from .errors import DataError, TrainingError
from .progress import EpochProgress


class History:
    """What ``fit`` returns: ``history`` maps 'loss', 'accuracy', 'val_*' to per-epoch lists (Keras)."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.stats = []  # per epoch: wall time, samples/s, steps

    def record(self, epoch, logs, stats):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        self.stats.append(stats)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``fit`` between two steps; the model holds the last completed step."""

    def __init__(self, epoch, step, history):
        super().__init__(f"interrupted in epoch {epoch + 1} after step {step}")
        self.epoch, self.step, self.history = epoch, step, history


class DeviceDataset:
    """x, y and accuracy labels resident on the model's device, in the dtypes the loss wants."""

    def __init__(self, model, x, y, scale=None):
        with model.backend.scope():  # the arrays made here belong on the model's device, not the current one
            self._load(model, x, y, scale)

    def _load(self, model, x, y, scale):
        backend, xp = model.backend, model.xp
        from .config import floatx

        x = backend.asarray(x)
        if scale is not None or x.dtype != floatx():
            x = x.astype(floatx())
        if scale is not None:
            x *= scale
        self.x = x
        self.n = int(x.shape[0])
        loss_name = model.loss.name
        if loss_name == "sparse_categorical_crossentropy":
            self.y = backend.asarray(y).reshape(-1).astype("int64")
        else:
            self.y = backend.asarray(y).astype(floatx())
        if int(self.y.shape[0]) != self.n:
            raise ValueError(f"x has {self.n} samples but y has {int(self.y.shape[0])}")
        if loss_name == "sparse_categorical_crossentropy":
            _check_label_range(backend, self.y, getattr(model, "output_shape", None))
        self.labels = metrics.label_targets(xp, self.y, loss_name)
        # integer labels are their own accuracy targets: gather them once per batch, not twice
        self.labels_are_y = self.labels.shape == self.y.shape and loss_name == "sparse_categorical_crossentropy"


def _check_label_range(backend, y, output_shape):
    """Integer labels must index the model's classes: CuPy wraps an out-of-range index where NumPy raises.

    Once per dataset, one host read of (min, max); never per step.
    """
    if not output_shape or int(y.shape[0]) == 0:
        return
    classes = int(output_shape[-1])
    lo, hi = (int(v) for v in backend.to_host(backend.xp.stack([y.min(), y.max()])))
    bad = lo if lo < 0 else hi if hi >= classes else None
    if bad is not None:
        raise DataError(f"label {bad} is out of range for a model with {classes} classes: sparse labels must be "
                        f"integers 0..{classes - 1}; check the labels or the size of the last layer")


def as_dataset(model, x, y):
    return x if isinstance(x, DeviceDataset) else DeviceDataset(model, x, y)


class _StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._old or signal.default_int_handler)  # a second Ctrl-C is immediate

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def fit(model, x, y=None, batch_size=32, epochs=1, verbose=1, validation_data=None, shuffle=True,
        initial_epoch=0, initial_step=0, callbacks=(), log=None, refresh=0.3):
    """Train ``model`` for epochs ``initial_epoch .. epochs-1``; see ``Sequential.fit``."""
    backend, xp = model.backend, model.xp
    data = as_dataset(model, x, y)
    val = as_dataset(model, *validation_data) if validation_data is not None else None
    history = History()
    steps = math.ceil(data.n / batch_size)
    dropouts = [s for s in model._train_steps if hasattr(s, "rate") and hasattr(s, "rng")]
    with _StopFlag() as stop:
        for epoch in range(initial_epoch, epochs):
            first = initial_step if epoch == initial_epoch else 0
            if first >= steps:  # a checkpoint taken after the epoch's last step: that epoch is done
                model.epoch, model.step_in_epoch = epoch + 1, 0
                continue
            perm = backend.permutation((model.seed, epoch), data.n) if shuffle else None
            for i, layer in enumerate(dropouts):
                layer.rng = backend.rng((model.seed, epoch, i + 1))
            bar = EpochProgress(epoch, epochs, steps, verbose, log, first_step=first)
            loss_sum = xp.zeros((), dtype="float64")
            correct = xp.zeros((), dtype="float64")
            bad_step = xp.full((), -1, dtype="int64") if backend.is_gpu else None
            seen = 0
            partial = _resumed_sums(model, epoch, first)
            if partial:  # a mid-epoch checkpoint carries the epoch's sums so far: the line covers the whole epoch
                loss_sum += partial["loss_sum"]
                correct += partial["correct"]
                seen = partial["seen"]
            backend.synchronize()
            t0 = last_read = time.perf_counter()
            for step in range(first, steps):
                lo = step * batch_size
                hi = min(lo + batch_size, data.n)
                if perm is not None:
                    idx = perm[lo:hi]
                    xb, yb = xp.take(data.x, idx, axis=0), xp.take(data.y, idx, axis=0)
                    lb = yb if data.labels_are_y else xp.take(data.labels, idx, axis=0)
                else:
                    xb, yb, lb = data.x[lo:hi], data.y[lo:hi], data.labels[lo:hi]
                loss, out = model.train_step(xb, yb)
                nb = hi - lo
                loss_sum += loss * nb
                if model.metrics:
                    correct += metrics.correct_count(xp, out, lb, model.loss.name, model._outputs_logits)
                seen += nb
                model.step_in_epoch = step + 1
                if bad_step is None:
                    if not math.isfinite(loss):
                        _raise_nonfinite(epoch, step, model)
                else:
                    bad_step = xp.where((bad_step < 0) & ~xp.isfinite(loss), step, bad_step)
                now = time.perf_counter()
                if bar.live and (now - last_read >= refresh or step == first):  # drawn at once, then every refresh s
                    last_read = now
                    _check_bad(bad_step, epoch, model)
                    bar.update(step + 1, _logs(loss_sum, correct, seen, model))
                if stop.requested:
                    break
            backend.synchronize()
            wall = time.perf_counter() - t0
            _check_bad(bad_step, epoch, model)
            if stop.requested and model.step_in_epoch < steps:
                bar.close(model.step_in_epoch, _logs(loss_sum, correct, max(seen, 1), model), wall, interrupted=True)
                if partial or not first:  # sums from the epoch's first step: a resume can finish them
                    model.metadata["epoch_sums"] = {"epoch": epoch, "step": model.step_in_epoch, "seen": seen,
                                                    "loss_sum": float(loss_sum), "correct": float(correct)}
                raise TrainingInterrupted(epoch, model.step_in_epoch, history)
            logs = _logs(loss_sum, correct, seen, model)
            if val is not None:
                logs.update({"val_" + k: v for k, v in evaluate(model, val, batch_size=max(batch_size, 256)).items()})
            model.epoch, model.step_in_epoch = epoch + 1, 0
            model.metadata.pop("epoch_sums", None)
            done = seen - (partial["seen"] if partial else 0)  # samples trained in this run, for the speed
            stats = {"time": wall, "samples_per_sec": done / wall if wall > 0 else float("inf"), "steps": steps - first}
            history.record(epoch, logs, stats)
            bar.close(steps, logs, wall, note="" if partial or not first else
                      f"(loss and accuracy over steps {first + 1}-{steps} only: resumed mid-epoch)")
            for cb in callbacks:
                cb(epoch, logs, stats)
            if stop.requested:  # Ctrl-C came during the epoch's last step: the epoch is complete
                raise TrainingInterrupted(epoch + 1, 0, history)
    return history


def _resumed_sums(model, epoch, first):
    """The loss/correct/seen sums a mid-epoch checkpoint saved for ``epoch`` up to step ``first``, or None."""
    sums = getattr(model, "metadata", {}).get("epoch_sums") if first else None
    if sums and (sums.get("epoch"), sums.get("step")) == (epoch, first):
        return sums
    return None


def _logs(loss_sum, correct, seen, model):
    logs = {"loss": float(loss_sum) / seen}
    if model.metrics:
        logs["accuracy"] = float(correct) / seen
    return logs


def _check_bad(bad_step, epoch, model):
    if bad_step is not None and int(bad_step) >= 0:
        _raise_nonfinite(epoch, int(bad_step), model)


def _raise_nonfinite(epoch, step, model):
    lr = model.optimizer.current_learning_rate()
    raise TrainingError(
        f"loss became NaN or infinite in epoch {epoch + 1} at step {step + 1}: "
        f"lower the learning rate (now {lr:g}, try {lr / 10:g})"
    )


def evaluate(model, data, batch_size=256):
    """Mean loss (and accuracy) over ``data`` (a DeviceDataset) without training."""
    xp = model.xp
    with model.backend.scope():  # the CLI calls this directly: the sums belong on the model's device
        loss_sum = xp.zeros((), dtype="float64")
        correct = xp.zeros((), dtype="float64")
        for lo in range(0, data.n, batch_size):
            hi = min(lo + batch_size, data.n)
            loss, out = model.test_step(data.x[lo:hi], data.y[lo:hi])
            loss_sum += loss * (hi - lo)
            if model.metrics:
                correct += metrics.correct_count(xp, out, data.labels[lo:hi], model.loss.name, model._outputs_logits)
        return _logs(loss_sum, correct, data.n, model)


def predict(model, x, batch_size=256):
    """Model outputs for ``x`` as one host NumPy array, computed batch by batch on the device."""
    from .models.network import cast_input

    xp = model.xp
    outs = [model.forward(cast_input(model.backend, x[lo:lo + batch_size]), training=False)
            for lo in range(0, int(x.shape[0]), batch_size)]
    out = xp.concatenate(outs) if outs else xp.zeros((0, *model.output_shape))
    return model.backend.to_host(out)
