"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), the paper's update."""

from .base import Optimizer


class Lion(Optimizer):
    """c = β₁m + (1−β₁)g;  p ← p − η·(sign(c) + λp);  m ← β₂m + (1−β₂)g.

    Keras' defaults: η = 0.001, β₁ = 0.9, β₂ = 0.99. The weight decay λ is decoupled, as in the paper.
    """

    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def update_step(self, p, g, slots, lr):
        m = slots["momentum"]
        step = self.xp.sign(self.beta_1 * m + (1 - self.beta_1) * g)
        if self.weight_decay:
            step += self.weight_decay * p
        p -= lr * step
        m *= self.beta_2
        m += (1 - self.beta_2) * g

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
