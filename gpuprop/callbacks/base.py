"""Keras' callback protocol: ``Callback`` with every hook, and the list the loop calls.

The loop calls a ``CallbackList``; it calls each callback's hooks. Batch
hooks are only called for callbacks that override them, and their ``logs``
read the device-side sums only when the callback actually looks at them, so
a callback that never asks for batch logs costs no host sync per step.
"""

import inspect
from collections.abc import Mapping

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")
BATCH_HOOKS = tuple(h for h in HOOKS if "_batch_" in h)


class Callback:
    """Base class: override any ``on_*`` hook; ``self.model`` is the model being trained.

    ``on_batch_begin``/``on_batch_end`` are Keras' older names for the
    training-batch hooks and are called by them by default.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_batch_begin(self, batch, logs=None):
        """Keras' alias of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Keras' alias of ``on_train_batch_end``."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)


def _noop(self, *args, **kwargs):
    """A hook the callback does not use."""


for _hook in HOOKS:
    if not hasattr(Callback, _hook):
        setattr(Callback, _hook, _noop)


class FunctionCallback(Callback):
    """gpuprop's plain-function callback ``fn(epoch, logs, stats)`` (or ``fn(epoch, logs)``), run after each epoch."""

    def __init__(self, fn, arity):
        super().__init__()
        self.fn, self.arity = fn, arity
        self.stats = None  # the loop sets this epoch's wall time and samples/s before on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        if self.arity == 3:
            self.fn(epoch, logs, self.stats)
        else:
            self.fn(epoch, logs)


class LambdaCallback(Callback):
    """A callback from functions, one per hook: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in given.items():
            if name not in HOOKS and name not in ("on_batch_begin", "on_batch_end"):
                raise TypeError(f"LambdaCallback got unknown hook {name!r}: use one of {', '.join(HOOKS)}")
            if fn is not None:
                setattr(self, name, fn)


class LazyLogs(Mapping):
    """Batch logs that read the device sums only when looked at (one host sync then, none otherwise)."""

    def __init__(self, read):
        self._read, self._logs = read, None

    def _get(self):
        if self._logs is None:
            self._logs = self._read()
        return self._logs

    def __getitem__(self, key):
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self):
        return len(self._get())

    def get(self, key, default=None):
        return self._get().get(key, default)


_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _hook_of(cb, hook):
    """The method ``cb`` runs for ``hook``, or None when it does nothing there."""
    if isinstance(cb, Callback):
        alias = _ALIASES.get(hook)
        if hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook):
            return getattr(cb, hook)
        if alias and (alias in vars(cb) or getattr(type(cb), alias) is not getattr(Callback, alias)):
            return getattr(cb, alias)
        return None if hook in BATCH_HOOKS else getattr(cb, hook)
    fn = getattr(cb, hook, None)  # duck-typed: whatever it has, under either name
    return fn if callable(fn) else (getattr(cb, _ALIASES[hook], None) if hook in _ALIASES else None)


def _arity(fn):
    """How many positional arguments ``fn`` takes (2 or 3), or None if it fits neither form."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 3
    for n in (3, 2):
        try:
            sig.bind(*range(n))
            return n
        except TypeError:
            continue
    return None


def as_callback(obj):
    """A ``Callback`` subclass, a Keras-style object with ``on_*`` methods, or a plain function."""
    if isinstance(obj, Callback):
        return obj
    if any(callable(getattr(obj, h, None)) for h in HOOKS + ("on_batch_begin", "on_batch_end")):
        return obj  # a Keras-style callback from elsewhere (e.g. a keras.callbacks.Callback subclass)
    if callable(obj):
        arity = _arity(obj)
        if arity is None:
            raise TypeError(f"callback {getattr(obj, '__name__', obj)!r} must accept (epoch, logs, stats) "
                            "or (epoch, logs)")
        return FunctionCallback(obj, arity)
    raise TypeError(f"callbacks must be gpuprop.callbacks.Callback objects or functions f(epoch, logs, stats); "
                    f"got {type(obj).__name__}")


class CallbackList:
    """Calls every callback's hooks in order; batch hooks only for those that use them."""

    def __init__(self, callbacks, model, params):
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]
        self.callbacks = [as_callback(cb) for cb in callbacks]
        for cb in self.callbacks:
            if callable(getattr(cb, "set_model", None)):
                cb.set_model(model)
            else:
                cb.model = model
            if callable(getattr(cb, "set_params", None)):
                cb.set_params(params)
            else:
                cb.params = params
        # per hook, the methods to run: batch hooks a callback does not use are never called
        self._hooks = {h: [fn for fn in (_hook_of(cb, h) for cb in self.callbacks) if fn is not None]
                       for h in HOOKS}

    def wants(self, hook):
        """True when some callback uses this batch hook (otherwise the loop skips building its logs)."""
        return bool(self._hooks[hook])

    def call(self, hook, *args):
        for fn in self._hooks[hook]:
            fn(*args)

    def set_stats(self, stats):
        for cb in self.callbacks:
            if isinstance(cb, FunctionCallback):
                cb.stats = stats
