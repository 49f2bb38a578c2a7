"""Adagrad, as torch.optim.Adagrad computes it (ε added after the square root)."""

from .base import Optimizer


class Adagrad(Optimizer):
    """s ← s + g²;  p ← p − η·g/(√s + ε), with s starting at ``initial_accumulator_value``.

    Keras' names and defaults (η = 0.001, s₀ = 0.1, ε = 1e-7). Keras' documentation does not
    pin where ε goes (its code takes √(s + ε)); this is torch's √s + ε. ``weight_decay`` is L2.
    """

    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def build(self, params, backend, packed=None):
        super().build(params, backend, packed)
        for slots in self.slots:
            slots["accumulator"][...] = self.initial_accumulator_value
        if packed is not None:  # the padding between views too: harmless (its g is 0), and one fill
            self._flat_slots["accumulator"][...] = self.initial_accumulator_value

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = slots["accumulator"]
        s += g * g
        p -= lr * g / (self.xp.sqrt(s) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
