"""RMSprop, as torch.optim.RMSprop computes it (ε outside the square root)."""

from .base import Optimizer


class RMSprop(Optimizer):
    """v ← ρv + (1−ρ)g²;  (centered: a ← ρa + (1−ρ)g, v̂ = v − a²);  p ← p − η·g/(√v̂ + ε).

    With momentum μ: b ← μb + g/(√v̂ + ε), p ← p − η·b. Keras defaults: η = 0.001, ρ = 0.9.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), centered
        self.slot_names = ("velocity",) + (("average_gradient",) if centered else ()) + (
            ("momentum",) if self.momentum else ())

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        v = slots["velocity"]
        v *= self.rho
        v += (1 - self.rho) * g * g
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            a += (1 - self.rho) * g
            denom = self.xp.sqrt(v - a * a) + self.epsilon
        else:
            denom = self.xp.sqrt(v) + self.epsilon
        if self.momentum:
            b = slots["momentum"]
            b *= self.momentum
            b += g / denom
            p -= lr * b
        else:
            p -= lr * g / denom

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
