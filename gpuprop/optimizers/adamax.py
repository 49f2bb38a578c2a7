"""Adamax (Adam's infinity-norm variant), as torch.optim.Adamax computes it."""

from .base import Optimizer


class Adamax(Optimizer):
    """m ← β₁m + (1−β₁)g;  u ← max(β₂u, |g| + ε);  p ← p − η/(1−β₁ᵗ) · m/u.

    Keras' defaults: η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-7. Keras' documentation does not
    pin where ε goes (its code divides by u + ε with u ← max(β₂u, |g|)); this is torch's form.
    ``weight_decay`` is L2.
    """

    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp, b1 = self.xp, self.beta_1
        m, u = slots["m"], slots["u"]
        m *= b1
        m += (1 - b1) * g
        xp.maximum(u * self.beta_2, xp.abs(g) + self.epsilon, out=u)
        p -= lr / (1 - b1 ** self.iterations) * m / u

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
