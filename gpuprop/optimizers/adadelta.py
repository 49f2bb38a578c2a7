"""Adadelta (Zeiler 2012), as torch.optim.Adadelta and Keras compute it (ε inside both roots)."""

from .base import Optimizer


class Adadelta(Optimizer):
    """v ← ρv + (1−ρ)g²;  Δ = √(u + ε)/√(v + ε) · g;  u ← ρu + (1−ρ)Δ²;  p ← p − η·Δ.

    Keras' defaults: η = 0.001, ρ = 0.95, ε = 1e-7. ``weight_decay`` is L2.
    """

    slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp, rho, eps = self.xp, self.rho, self.epsilon
        v, u = slots["accumulated_grad"], slots["accumulated_delta_var"]
        v *= rho
        v += (1 - rho) * g * g
        delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        p -= lr * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
