"""Per-sample loss weights for ``fit``/``evaluate``: Keras' ``sample_weight`` and ``class_weight``.

Both become one device array of N weights, made once per dataset; each
step gathers its batch's rows like x and y, and the loss scales each
sample's loss and gradient row by its weight (``losses.Loss.weighted_loss_and_grad``).
A model with several outputs takes one array for all of them, or one per
output (``output_weights``); weighted metrics use the same arrays.
"""

from . import config


def device_weights(model, y, sample_weight=None, class_weight=None):
    """The dataset's weights as a float device array of shape (N,), or None when neither is given."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("pass class_weight or sample_weight, not both (as Keras): "
                         "fold the class weights into sample_weight")
    if sample_weight is not None:
        return _from_sample_weight(model, sample_weight, int(y.shape[0]))
    if class_weight is not None:
        return _from_class_weight(model, y, class_weight)
    return None


def output_weights(model, ys, n, sample_weight=None, class_weight=None):
    """Weights for a graph model with targets ``ys`` (one per output) and ``n`` samples: None, one (N,)
    device array for every output, or a list with one array (or None: unweighted) per output.

    ``sample_weight`` is one array, a list in output order or a dict by output name (outputs left out
    are unweighted); ``class_weight`` needs a model with one output, as in Keras.
    """
    names = model.output_names
    if sample_weight is not None and class_weight is not None:
        return device_weights(model, ys[0], sample_weight, class_weight)  # refused there, with Keras' reason
    if class_weight is not None and len(names) > 1:
        raise ValueError(f"class_weight works for a model with one output; this one has {len(names)} "
                         f"({', '.join(names)}): pass sample_weight with one array per output instead")
    if class_weight is not None or sample_weight is None:
        return device_weights(model, ys[0], sample_weight, class_weight)
    if not isinstance(sample_weight, (list, tuple, dict)):
        return _from_sample_weight(model, sample_weight, n)  # one array for every output, as Keras
    if isinstance(sample_weight, dict):
        unknown = [str(k) for k in sample_weight if k not in names]
        if unknown:
            raise ValueError(f"sample_weight names unknown output(s) {', '.join(unknown)}: "
                             f"the outputs are {', '.join(names)}")
        per = [sample_weight.get(k) for k in names]
    else:
        if len(sample_weight) != len(names):
            raise ValueError(f"sample_weight has {len(sample_weight)} entries but the model has {len(names)} "
                             f"outputs ({', '.join(names)}): give one array (or None) per output, a dict by "
                             "output name, or one array for every output")
        per = list(sample_weight)
    per = [None if a is None else _from_sample_weight(model, a, n, f"sample_weight for output {k!r}")
           for k, a in zip(names, per)]
    if all(a is None for a in per):
        return None
    return per[0] if len(per) == 1 else per


def _from_sample_weight(model, sample_weight, n, what="sample_weight"):
    w = model.backend.asarray(sample_weight)
    if w.ndim > 1 and all(d == 1 for d in w.shape[1:]):
        w = w.reshape(-1)  # (N, 1) as Keras accepts it
    if w.ndim != 1 or int(w.shape[0]) != n:
        raise ValueError(f"{what} has shape {tuple(w.shape)} but the data has {n} samples: "
                         f"pass one weight per sample, shape ({n},)")
    return w.astype(config.floatx())


def _from_class_weight(model, y, class_weight):
    """Keras' rule: the class of a sample is its integer label, the argmax of a one-hot row, or the
    rounded value of a single column; a class missing from the dict weighs 1."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    xp = model.xp
    try:
        table = {int(k): float(v) for k, v in class_weight.items()}
    except (TypeError, ValueError):
        raise ValueError("class_weight keys must be class indices (int) and values numbers, "
                         f"e.g. {{0: 1.0, 1: 5.0}}; got {class_weight!r}") from None
    if any(k < 0 for k in table):
        raise ValueError(f"class_weight has a negative class index {min(table)}: classes are 0, 1, 2, ...")
    if y.ndim > 1 and int(y.shape[-1]) != 1:
        labels = y.reshape(int(y.shape[0]), -1).argmax(axis=-1)
    else:
        labels = xp.rint(y.reshape(-1)).astype("int64") if y.dtype.kind == "f" else y.reshape(-1).astype("int64")
    size = max(table) + 1 if table else 1
    host = [table.get(k, 1.0) for k in range(size)]
    lut = model.backend.asarray(host).astype(config.floatx())
    inside = (labels >= 0) & (labels < size)
    return xp.where(inside, lut[xp.clip(labels, 0, size - 1)], xp.ones((), dtype=lut.dtype)).astype(config.floatx())
