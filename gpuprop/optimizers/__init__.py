"""Optimizers with Keras names and defaults, computing torch.optim's updates."""

from . import schedules
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .base import Optimizer
from .lion import Lion
from .nadam import Nadam
from .rmsprop import RMSprop
from .sgd import SGD

_CLASSES = (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion)
_ALIASES = {c.__name__.lower(): c for c in _CLASSES}


def get(identifier, learning_rate=None):
    """An optimizer from a Keras name (``'sgd'``, ``'adam'``, ...) or an instance, as is."""
    if isinstance(identifier, Optimizer):
        return identifier
    key = str(identifier).lower()
    if key == "momentum":  # the CLI's name for SGD with the usual 0.9
        opt = SGD(momentum=0.9)
    elif key in _ALIASES:
        opt = _ALIASES[key]()
    else:
        raise ValueError(f"unknown optimizer {identifier!r}: use one of {', '.join(sorted(_ALIASES))}, momentum")
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    return opt


def from_config(cfg):
    cfg = dict(cfg)
    kind = cfg.pop("class_name")
    lr = cfg.get("learning_rate")
    if isinstance(lr, dict):
        cfg["learning_rate"] = schedules.deserialize(lr)
    cls = {c.__name__: c for c in _CLASSES}[kind]
    return cls(**cfg)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
           "schedules", "get", "from_config"]
