"""Global numeric policy, named as in Keras (``keras.config.set_floatx``).

Only the float dtype and epsilon live here; the device is *not* global: it is a
``Backend`` object chosen once and kept on each model, so one process can train
on the CPU and the GPU side by side.
"""

_FLOATX = "float32"
_EPSILON = 1e-7
_VALID = ("float16", "float32", "float64")


def floatx():
    """The default float dtype name for parameters and activations."""
    return _FLOATX


def set_floatx(value):
    """Set the default float dtype: ``'float32'`` (default) or ``'float64'`` for gradient checks."""
    global _FLOATX
    if value not in _VALID:
        raise ValueError(f"unknown floatx {value!r}: use one of {', '.join(_VALID)}")
    _FLOATX = value


def epsilon():
    """Fuzz factor used where a division could hit zero (Keras' ``epsilon()``)."""
    return _EPSILON


def set_epsilon(value):
    global _EPSILON
    _EPSILON = float(value)
