"""The part EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share: is this value an improvement?"""

import operator
import warnings

from .base import Callback

# metrics that get better as they grow; everything else ending in a loss name gets better as it shrinks
_HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall")


class MonitorCallback(Callback):
    """Watches ``monitor`` in the epoch logs; ``mode`` 'min', 'max' or 'auto' (from the name, as Keras)."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(float(min_delta))
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "auto":
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            if name == "loss" or name.endswith("loss") or name.endswith("error"):
                self.mode_resolved = "min"
            elif any(name == m or name.endswith("_" + m) for m in _HIGHER_IS_BETTER):
                self.mode_resolved = "max"
            else:
                raise ValueError(f"{type(self).__name__} cannot tell whether {self.monitor!r} should go up or down: "
                                 "pass mode='max' or mode='min'")
        else:
            self.mode_resolved = self.mode
        self.monitor_op = operator.lt if self.mode_resolved == "min" else operator.gt
        self._delta = -self.min_delta if self.mode_resolved == "min" else self.min_delta

    def _is_improvement(self, value, reference):
        """Better than ``reference`` by more than ``min_delta`` (any value beats None)."""
        if self.monitor_op is None:
            self._set_monitor_op()
        if reference is None:
            return True
        return bool(self.monitor_op(value - self._delta, reference))

    def get_monitor_value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__} watches {self.monitor!r}, which is not in the logs "
                          f"(available: {', '.join(logs or {})})", stacklevel=3)
        return value
