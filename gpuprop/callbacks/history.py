"""``History``: what ``fit`` returns, and what ``model.history`` holds after it."""

from .base import Callback


class History(Callback):
    """``history`` maps each log name ('loss', 'accuracy', 'val_*') to per-epoch values, as Keras.

    ``epoch`` lists the epoch indices trained; ``stats`` (gpuprop's addition)
    holds each epoch's wall time, samples/s and steps.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self.stats = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self
