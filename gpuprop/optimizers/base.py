"""The optimizer loop: step count, learning rate, schedules and clipping.

Subclasses write only ``update_step``: the textbook update of one parameter
in place, given its gradient, its slots and this step's learning rate. The
formulas follow ``torch.optim`` exactly (so trajectories can be compared);
names, arguments and defaults follow Keras.
"""

from .schedules import LearningRateSchedule


class Optimizer:
    """Base optimizer.

    ``weight_decay`` is L2 folded into the gradient (g ← g + λ·p), as
    torch.optim's SGD/Adam/RMSprop do; AdamW overrides it with decoupled decay.
    ``global_clipnorm`` rescales all gradients so their joint L2 norm is at most
    the value (torch's ``clip_grad_norm_``); ``clipnorm`` does it per tensor.
    """

    slot_names = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, global_clipnorm=None, name=None):
        self.learning_rate = learning_rate
        self.weight_decay = float(weight_decay or 0.0)
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.slots = None
        self.backend = None
        self._packed = None

    def build(self, params, backend, packed=None):
        """Create per-parameter slots (zeros like each parameter) on ``backend``.

        ``packed`` (``models.packing.Packed``): the parameters are views into one
        flat array, so the slots are too, and a step over exactly those
        parameters runs ``update_step`` once over the flat arrays.
        """
        self.backend = backend
        self.xp = backend.xp
        self._packed = packed
        if packed is not None:
            self._flat_slots = {s: self.xp.zeros_like(packed.params) for s in self.slot_names}
            views = {s: packed.split(flat) for s, flat in self._flat_slots.items()}
            self.slots = [{s: views[s][i] for s in self.slot_names} for i in range(len(params))]
        else:
            self.slots = [{s: self.xp.zeros_like(p) for s in self.slot_names} for p in params]
        self._scratch = {}

    def current_learning_rate(self, step=None):
        """The learning rate for ``step`` (default: the step about to be taken), as a float."""
        lr = self.learning_rate
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations if step is None else step))
        return float(lr)

    def apply_gradients(self, params, grads):
        """One step: clip, then ``update_step`` on every parameter in place."""
        packed = self._packed
        flat = packed is not None and self.clipnorm is None and packed.holds(params, grads)
        if not flat and (self.slots is None or len(self.slots) != len(params)):
            raise RuntimeError("optimizer not built for these parameters: call build(params, backend) first")
        lr = self.current_learning_rate()
        self.iterations += 1
        if flat:
            g = packed.grads
            if self.global_clipnorm is not None:
                g = self._clip_global([g])[0]
            self.update_step(packed.params, g, self._flat_slots, lr)
            return
        if self.global_clipnorm is not None:
            grads = self._clip_global(grads)
        elif self.clipnorm is not None:
            grads = [self._clip_one(g) for g in grads]
        for p, g, slots in zip(params, grads, self.slots):
            self.update_step(p, g, slots, lr)

    def _clip_global(self, grads):
        # Stays on the device: the scale is a 0-d array, so no host sync per step.
        xp = self.xp
        total = xp.sqrt(sum((g * g).sum() for g in grads))
        scale = xp.minimum(self.global_clipnorm / (total + 1e-6), 1.0)
        return [g * scale.astype(g.dtype) for g in grads]

    def _clip_one(self, g):
        norm = self.xp.sqrt((g * g).sum())
        return g * self.xp.minimum(self.clipnorm / (norm + 1e-6), 1.0).astype(g.dtype)

    def update_step(self, param, grad, slots, lr):
        raise NotImplementedError

    def scratch(self, param):
        """A work array shaped like ``param``, reused every step (not state: never saved)."""
        tmp = self._scratch.get(id(param))  # build() resets this: parameters are fixed between builds
        if tmp is None:
            tmp = self._scratch[id(param)] = self.xp.empty_like(param)
        return tmp

    # --- checkpointing ------------------------------------------------------------
    def get_config(self):
        lr = self.learning_rate
        cfg = {"class_name": type(self).__name__, "name": self.name, "weight_decay": self.weight_decay or None,
               "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm}
        cfg["learning_rate"] = lr.get_config() if isinstance(lr, LearningRateSchedule) else float(lr)
        return cfg

    def variables(self):
        """Slot arrays in a fixed order, for saving; ``iterations`` is saved beside them."""
        return [slots[s] for slots in (self.slots or []) for s in self.slot_names]

    def set_variables(self, arrays):
        mine = self.variables()
        if len(arrays) != len(mine):
            raise ValueError(f"optimizer state has {len(arrays)} arrays, expected {len(mine)}")
        for dst, src in zip(mine, arrays):
            dst[...] = self.backend.asarray(src, dtype=dst.dtype)
