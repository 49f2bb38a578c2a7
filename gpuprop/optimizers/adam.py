"""Adam and AdamW, as torch.optim computes them (ε added after the square root)."""

from .base import Optimizer


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − η/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).

    ``weight_decay`` here is L2 (g ← g + λp), as in torch.optim.Adam.
    ``amsgrad``: v̂ ← max(v̂, v) takes v's place in the step (Reddi et al. 2018, torch's form).
    """

    slot_names = ("m", "v")
    decoupled = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = bool(amsgrad)
        if self.amsgrad:
            self.slot_names = ("m", "v", "vhat")

    def update_step(self, p, g, slots, lr):
        b1, b2, t = self.beta_1, self.beta_2, self.iterations
        decay = 1.0
        if self.weight_decay and self.decoupled:
            decay = 1.0 - lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        # Folding the bias corrections into one step size and one ε is torch's algebra.
        bc2_sqrt = (1 - b2**t) ** 0.5
        lr_t = lr / (1 - b1**t) * bc2_sqrt
        eps_t = self.epsilon * bc2_sqrt
        if self.amsgrad:
            self._amsgrad_step(p, g, slots, lr_t, eps_t, decay)
            return
        fused = getattr(self.backend.ops, "adam_update", None)
        if fused is not None:
            fused(p, g, slots["m"], slots["v"], lr_t, b1, b2, eps_t, decay)
            return
        m, v, tmp = slots["m"], slots["v"], self.scratch(p)
        if decay != 1.0:
            p *= decay
        # β·s + (1−β)·x exactly as written (the fused kernel's arithmetic): the in-place shortcut
        # β·(s − x) + x cancels when s ≈ x and cost v 1e-4 relative accuracy in float32.
        xp = self.xp
        m *= b1
        xp.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        xp.multiply(g, 1 - b2, out=tmp)
        tmp *= g
        v += tmp
        xp.sqrt(v, out=tmp)
        tmp += eps_t
        xp.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp

    def _amsgrad_step(self, p, g, slots, lr_t, eps_t, decay):
        b1, b2, xp = self.beta_1, self.beta_2, self.xp
        m, v, vhat = slots["m"], slots["v"], slots["vhat"]
        if decay != 1.0:
            p *= decay
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        xp.maximum(vhat, v, out=vhat)
        p -= lr_t * m / (xp.sqrt(vhat) + eps_t)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 − ηλ) before the Adam step (Keras default λ = 0.004)."""

    decoupled = True

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
