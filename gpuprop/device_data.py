"""A dataset resident on the model's device: x, y, each metric's targets and the per-sample loss weights, moved
there once and batched there by the training loop (``training.fit``) and ``evaluation.evaluate``."""

from .errors import DataError
from .sample_weights import device_weights


class DeviceDataset:
    """x, y, each metric's targets and the per-sample loss weights (``w``, None when unweighted) resident on
    the model's device, in the dtypes the loss wants."""

    w = None  # datasets built without weights (graph data, slices) are unweighted

    def __init__(self, model, x, y, scale=None, sample_weight=None, class_weight=None):
        with model.backend.scope():  # the arrays made here belong on the model's device, not the current one
            self._load(model, x, y, scale)
            self.w = device_weights(model, self.y, sample_weight, class_weight)

    def head(self, rows):
        """The first ``rows`` samples (Keras' ``steps=``: the first batches), sharing this dataset's arrays."""
        if rows >= self.n:
            return self
        part = object.__new__(type(self))
        part.x, part.y, part.n, part.xp = self.x[:rows], self.y[:rows], rows, self.xp
        part.w = None if self.w is None else self.w[:rows]
        part._targets = {k: None if t is None else t[:rows] for k, t in self._targets.items()}
        return part

    def _load(self, model, x, y, scale):
        backend = model.backend
        from .config import floatx

        if y is None:
            raise ValueError("y is missing: pass the targets as fit(x, y) or evaluate(x, y)")
        x = backend.asarray(x)
        if scale is not None or x.dtype != floatx():
            x = x.astype(floatx())
        if scale is not None:
            x *= scale
        self.x = x
        self.n = int(x.shape[0])
        self.xp = model.xp
        if model.loss.name == "sparse_categorical_crossentropy":
            self.y = backend.asarray(y).reshape(-1).astype("int64")
        else:
            self.y = backend.asarray(y).astype(floatx())
        if int(self.y.shape[0]) != self.n:
            raise ValueError(f"x has {self.n} samples but y has {int(self.y.shape[0])}")
        if model.loss.name == "sparse_categorical_crossentropy":
            _check_label_range(backend, self.y, getattr(model, "_output_shape", None))
        self._targets = {}

    def targets(self, metrics):
        """One targets array per metric, computed once per dataset (integer labels are y itself)."""
        out = []
        for m in metrics:
            key = m.target_key()
            if key not in self._targets:
                t = m.targets(self.xp, self.y)
                self._targets[key] = None if t is self.y else t  # None: the batch's y itself
            out.append(self._targets[key])
        return out


def _check_label_range(backend, y, output_shape):
    """Integer labels must index the model's classes: CuPy wraps an out-of-range index where NumPy raises.

    Once per dataset, one host read of (min, max); never per step.
    """
    if not output_shape or int(y.shape[0]) == 0:
        return
    classes = int(output_shape[-1])
    lo, hi = (int(v) for v in backend.to_host(backend.xp.stack([y.min(), y.max()])))
    bad = lo if lo < 0 else hi if hi >= classes else None
    if bad is not None:
        raise DataError(f"label {bad} is out of range for a model with {classes} classes: sparse labels must be "
                        f"integers 0..{classes - 1}; check the labels or the size of the last layer")


def as_dataset(model, x, y, sample_weight=None, class_weight=None):
    if isinstance(x, DeviceDataset):
        if sample_weight is not None or class_weight is not None:
            raise ValueError("a DeviceDataset carries its own weights: pass sample_weight/class_weight "
                             "to DeviceDataset(...) instead")
        return x
    return DeviceDataset(model, x, y, sample_weight=sample_weight, class_weight=class_weight)
