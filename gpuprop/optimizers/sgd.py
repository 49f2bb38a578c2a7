"""Stochastic gradient descent with momentum and Nesterov, as torch.optim.SGD computes it."""

from .base import Optimizer


class SGD(Optimizer):
    """g ← g + λp;  b ← μb + g;  g ← g + μb (Nesterov) or b;  p ← p − η·g.

    With momentum 0 this is plain p ← p − η·g. Keras' default η = 0.01.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        if nesterov and self.momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.slot_names = ("momentum",) if self.momentum else ()

    def update_step(self, p, g, slots, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            b = slots["momentum"]
            if self.iterations == 1:  # torch starts the buffer at the first gradient
                b[...] = g
            else:
                b *= self.momentum
                b += g
            if self.nesterov:
                g = g + self.momentum * b
            else:
                g = b
        p -= lr * g  # a Python float times float32 stays float32 (NumPy 2 and CuPy)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
