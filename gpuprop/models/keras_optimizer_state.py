"""Each optimizer's slots in Keras 3's layout, one small entry per optimizer.

Keras 3 (optimizers/base_optimizer.py) lists ``optimizer.variables`` as: iteration, learning_rate
(absent under a schedule), then what the optimizer's ``build()`` adds. One
``add_optimizer_variables(vars, [a, b])`` call interleaves a and b per model variable; separate calls
follow each other (RMSprop: every velocity, then every momentum, then every average gradient);
Nadam adds one scalar at the end. ``save_own_variables`` writes that list as ``optimizer/vars/0, 1...``.

gpuprop keeps some quantities in torch's form where Keras keeps another with the same information;
each entry says how to convert. A converted slot is written in float64: Keras casts it to its float32
variable on load, and gpuprop reading its own file gets its float32 slot back exactly.

* SGD's and RMSprop's momentum: torch's buffer b steps p ← p − η·b; Keras' m is the step itself
  (p ← p + m for SGD, p ← p − m for RMSprop), so m = −η·b (SGD) and m = η·b (RMSprop).
* Adamax's u: torch takes max(β₂u, |g| + ε) and divides by u; Keras takes max(β₂u, |g|) and divides
  by u + ε, so u_keras = u − ε.
* Nadam's u_product: Keras' running ∏ μᵢ with its μᵢ = β₁(1 − ½·0.96^i), a function of the step count
  alone, written from ``iterations`` and not read back (gpuprop derives its own from the same count).
"""

import math

import numpy

from ..optimizers import SGD, Adadelta, Adagrad, Adam, Adamax, Lion, Nadam, RMSprop
from ..optimizers.schedules import LearningRateSchedule


def _scaled(sign):
    """Keras' momentum = sign·η·b, η the rate of the step about to be taken (exact for a fixed rate)."""
    def to_keras(opt, a):
        return a * (sign * opt.current_learning_rate())

    def from_keras(opt, a):
        lr = opt.current_learning_rate()
        return None if lr == 0 else a / (sign * lr)
    return to_keras, from_keras


def _momentum_caveat(opt):
    if getattr(opt, "momentum", 0) and isinstance(opt.learning_rate, LearningRateSchedule):
        return ("its momentum was converted with this step's learning rate, while under a schedule Keras' "
                "momentum folds in each past step's rate")
    return None


class Entry:
    """``groups(opt)``: gpuprop slot names as Keras' build() adds them, each tuple interleaved per weight;
    ``convert``: slot → (to_keras, from_keras) over float64 arrays; ``scalars(opt)``: Keras' extra
    scalars after the slots; ``caveat(opt)``: why the mapping is inexact for this setting, or None."""

    def __init__(self, groups, convert=None, scalars=None, caveat=None):
        self.groups, self.convert = groups, convert or {}
        self.scalars = scalars or (lambda opt: [])
        self.caveat = caveat or (lambda opt: None)


def _nadam_u_product(opt):
    t, b1 = opt.iterations, opt.beta_1
    return [numpy.array(math.prod(b1 * (1 - 0.5 * 0.96 ** i) for i in range(1, t + 1)), dtype="float32")]


_SGD_MOMENTUM, _RMS_MOMENTUM = _scaled(-1.0), _scaled(1.0)

ENTRIES = {  # found along the class's MRO (entry()): AdamW takes Adam's
    SGD: Entry(lambda o: [("momentum",)] if o.momentum else [], {"momentum": _SGD_MOMENTUM},
               caveat=_momentum_caveat),
    RMSprop: Entry(lambda o: [("velocity",)] + ([("momentum",)] if o.momentum else [])
                   + ([("average_gradient",)] if o.centered else []),
                   {"momentum": _RMS_MOMENTUM}, caveat=_momentum_caveat),
    Adam: Entry(lambda o: [("m", "v")] + ([("vhat",)] if o.amsgrad else [])),
    Adagrad: Entry(lambda o: [("accumulator",)]),
    Adadelta: Entry(lambda o: [("accumulated_grad", "accumulated_delta_var")]),
    Adamax: Entry(lambda o: [("m", "u")],
                  {"u": (lambda o, a: numpy.maximum(a - o.epsilon, 0.0), lambda o, a: a + o.epsilon)}),
    Nadam: Entry(lambda o: [("m", "v")], scalars=_nadam_u_product),
    Lion: Entry(lambda o: [("momentum",)]),
}


def entry(opt):
    """The optimizer's entry, or None where Keras has no layout for it (a subclass of our own)."""
    for cls in type(opt).__mro__:
        if cls in ENTRIES:
            return ENTRIES[cls]
    return None


def _keras_order(opt, e):
    """(weight index, slot name) pairs in Keras' order of optimizer variables."""
    n = len(opt.slots or [])
    return [(i, name) for group in e.groups(opt) for i in range(n) for name in group]


def head(opt):
    """Keras' variables before the slots: the step count, and the learning rate unless it is a schedule."""
    values = [numpy.array(opt.iterations, dtype="int64")]
    if not isinstance(opt.learning_rate, LearningRateSchedule):
        values.append(numpy.array(opt.current_learning_rate(), dtype="float32"))
    return values


def to_keras(opt, to_host):
    """Keras' optimizer variables after the head, as host arrays; None where there is no mapping."""
    e = entry(opt)
    if e is None or opt.slots is None:
        return None
    out = []
    for i, name in _keras_order(opt, e):
        a = to_host(opt.slots[i][name])
        conv = e.convert.get(name)
        out.append(a if conv is None else conv[0](opt, a.astype("float64")))
    return out + e.scalars(opt)


def from_keras(opt, arrays):
    """gpuprop's ``opt.variables()`` from Keras' variables after the head, or a reason they do not fit."""
    e = entry(opt)
    if e is None:
        return f"Keras has no layout for {type(opt).__name__}"
    order, mine = _keras_order(opt, e), opt.variables()
    want = len(order) + len(e.scalars(opt))
    if len(arrays) != want:
        return f"the file holds {len(arrays)} optimizer arrays, this {type(opt).__name__} keeps {want}"
    got = {}
    for (i, name), a in zip(order, arrays):
        conv = e.convert.get(name)
        if conv is not None:
            a = conv[1](opt, numpy.asarray(a, dtype="float64"))
            if a is None:
                return f"{name} cannot be converted at learning rate 0"
        got[(i, name)] = numpy.asarray(a)
    out = [got[(i, name)] for i in range(len(opt.slots)) for name in opt.slot_names]
    for a, b in zip(out, mine):
        if a.shape != tuple(b.shape):
            return f"an optimizer array of shape {a.shape} where this model's weight has {tuple(b.shape)}"
    return [a.astype(b.dtype) for a, b in zip(out, mine)]
