"""Keras' callbacks: hooks into ``fit``, ``evaluate`` and ``predict`` (``gpuprop.callbacks`` ~ ``keras.callbacks``)."""

from .base import Callback, CallbackList, LambdaCallback
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .model_checkpoint import ModelCheckpoint
from .terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN"]
