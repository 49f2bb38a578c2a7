"""``ModelCheckpoint``: save the model (or its weights) during ``fit``."""

import os

from .monitor import MonitorCallback


class ModelCheckpoint(MonitorCallback):
    """Keras' ModelCheckpoint.

    ``filepath`` may hold ``str.format`` fields filled from the epoch
    (1-based) and the logs: ``'ck-{epoch:02d}-{val_loss:.2f}.keras'``. The
    file is whatever ``model.save`` (or ``model.save_weights`` with
    ``save_weights_only``) writes, atomically. ``save_best_only`` saves only
    when ``monitor`` improves on the best so far (or ``initial_value_threshold``).
    ``save_freq``: 'epoch', or an integer number of batches.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches, "
                             f"got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        _check_name(self.filepath, save_weights_only)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._since_save = 0
        self._epoch = 0
        if save_freq == "epoch":  # then no batch hook at all: nothing to do per step
            self.on_train_batch_end = None

    def on_train_begin(self, logs=None):
        if self.save_weights_only and not callable(getattr(self.model, "save_weights", None)):
            raise TypeError("ModelCheckpoint(save_weights_only=True) needs model.save_weights, which this model lacks: "
                            "use save_weights_only=False (model.save)")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._since_save += 1
        if self._since_save >= self.save_freq:
            self._since_save = 0
            self._save(self._epoch, batch, dict(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _path(self, epoch, batch, logs):
        fields = dict(logs, epoch=epoch + 1)
        if batch is not None:
            fields.setdefault("batch", batch + 1)
        try:
            return self.filepath.format(**fields)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint cannot fill {{{exc.args[0]}}} in {self.filepath!r}: "
                           f"the logs hold {', '.join(logs)}") from None

    def _save(self, epoch, batch, logs):
        path = self._path(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                self.get_monitor_value(logs)  # warns, then saves as Keras does
            elif self._is_improvement(current, self.best):
                if self.verbose > 0:
                    best = "None" if self.best is None else f"{self.best:.5f}"
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                          f"saving model to {path}")
                self.best = current
            else:
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"ModelCheckpoint: {path} is a directory: give a file path")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {path}")


def _check_name(filepath, weights_only):
    """The name picks the format (models.saving.file_format): refuse one that picks none now, not after an epoch."""
    from ..errors import CheckpointError
    from ..models.saving import file_format

    kind = file_format(filepath)
    if kind == "weights.h5" and not weights_only:
        raise CheckpointError(f"ModelCheckpoint: {filepath} names a weights file: pass save_weights_only=True, "
                              "or name a whole-model file (.keras, .h5, .npz)")
    if kind == "keras" and weights_only:
        raise CheckpointError(f"ModelCheckpoint: {filepath} names a whole-model archive: pass "
                              "save_weights_only=False, or name a weights file (.weights.h5, .h5)")
