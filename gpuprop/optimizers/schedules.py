"""Learning-rate schedules: functions of the optimizer's step count (Keras names)."""

import math


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {"class_name": type(self).__name__, "config": dict(vars(self))}


class ExponentialDecay(LearningRateSchedule):
    """lr = lr₀ · rate^(step / decay_steps), the exponent floored when ``staircase``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)


class StepDecay(LearningRateSchedule):
    """lr = lr₀ · γ^⌊step / step_size⌋ (torch's StepLR, counted in optimizer steps)."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, step):
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class CosineDecay(LearningRateSchedule):
    """lr = lr₀ · ((1 − α) · ½(1 + cos(π · min(step, T)/T)) + α), T = decay_steps."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)

    def __call__(self, step):
        t = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * t))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


_ALL = {c.__name__: c for c in (ExponentialDecay, StepDecay, CosineDecay)}


def deserialize(cfg):
    return _ALL[cfg["class_name"]](**cfg["config"])
