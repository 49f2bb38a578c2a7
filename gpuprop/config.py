"""Global numeric policy, named as in Keras (``keras.config.set_floatx``).

Only the float dtype and epsilon live here; the device is *not* global: it is a
``Backend`` object chosen once and kept on each model, so one process can train
on the CPU and the GPU side by side.
"""

_FLOATX = "float32"
_EPSILON = 1e-7
_VALID = ("float32", "float64")


def floatx():
    """The default float dtype name for parameters and activations."""
    return _FLOATX


def set_floatx(value):
    """Set the default float dtype: ``'float32'`` (default) or ``'float64'`` for gradient checks.

    Keras also takes ``'float16'``; gpuprop refuses it with a ValueError (see below).
    """
    global _FLOATX
    refuse_half(value, "floatx")
    if value not in _VALID:
        raise ValueError(f"unknown floatx {value!r}: use one of {', '.join(_VALID)}")
    _FLOATX = value


def epsilon():
    """Fuzz factor used where a division could hit zero (Keras' ``epsilon()``)."""
    return _EPSILON


def set_epsilon(value):
    global _EPSILON
    _EPSILON = float(value)


_HALF = ("float16", "half", "bfloat16", "mixed_float16", "mixed_bfloat16")


def refuse_half(dtype, what="dtype"):
    """Raise a ValueError for a half-precision dtype (Keras takes them; gpuprop refuses them).

    Refused rather than half-working: Adam's ε (1e-7) is 0 in float16 and small
    gradients underflow, so training would need loss scaling and an ε chosen per
    dtype, which gpuprop does not do.
    """
    name = str(getattr(dtype, "name", None) or getattr(dtype, "__name__", dtype)).lower()  # 'float16', np.float16
    if name in _HALF:
        raise ValueError(f"{what} {name!r} is not supported: half-precision training needs loss scaling, "
                         "which gpuprop does not do; use 'float32' (the default) or 'float64'")
