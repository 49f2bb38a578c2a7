"""Nadam (Dozat 2016; Adam with Nesterov momentum), as torch.optim.NAdam computes it.

Keras 3 takes μₜ = β₁(1 − ½·0.96^t), without ψ: from the same state the two libraries part by ~1e-3
in a few steps at η = 0.01 (the state itself, m, v and t, means the same in both)."""

from .base import Optimizer

_DECAY = 0.004  # the momentum schedule's ψ: torch's default momentum_decay


class Nadam(Optimizer):
    """μₜ = β₁(1 − ½·0.96^(ψt));  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
    p ← p − η·[(1−μₜ)/(1−∏ᵢ≤ₜμᵢ)·g + μₜ₊₁/(1−∏ᵢ≤ₜ₊₁μᵢ)·m] / (√(v/(1−β₂ᵗ)) + ε).

    Keras' defaults: η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-7. ``weight_decay`` is L2.
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._product = (0, 1.0)  # (t, ∏ᵢ≤ₜ μᵢ): a host scalar, rebuilt from t after a checkpoint load

    def _mu(self, t):
        return self.beta_1 * (1 - 0.5 * 0.96 ** (_DECAY * t))

    def _mu_product(self, t):
        known, prod = self._product
        if known > t:
            known, prod = 0, 1.0
        for i in range(known + 1, t + 1):
            prod *= self._mu(i)
        self._product = (t, prod)
        return prod

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        xp, b1, b2, t = self.xp, self.beta_1, self.beta_2, self.iterations
        mu, mu_next = self._mu(t), self._mu(t + 1)
        prod = self._mu_product(t)
        m, v = slots["m"], slots["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        denom = xp.sqrt(v / (1 - b2 ** t)) + self.epsilon
        p -= lr * ((1 - mu) / (1 - prod) * g + mu_next / (1 - prod * mu_next) * m) / denom

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
