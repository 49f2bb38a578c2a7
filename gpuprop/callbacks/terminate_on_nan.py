"""``TerminateOnNaN``: stop training at the first NaN or infinite batch loss."""

import math

from .base import Callback


class TerminateOnNaN(Callback):
    """Keras' TerminateOnNaN: reads the loss after every batch (one host read per step on a GPU)."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf found in the loss at batch {batch}: training stopped")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
