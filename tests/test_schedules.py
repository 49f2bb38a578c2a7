"""Learning-rate schedules against their textbook formulas, and the optimizer's step count driving them."""

import math

import numpy as np
import pytest

from gpuprop.optimizers import SGD, Adam, schedules

STEPS = [0, 1, 2, 3, 4, 5, 7, 10, 11, 12, 25, 99, 100, 101, 250]


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay(staircase):
    sched = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.6, staircase=staircase)
    for step in STEPS:
        exponent = step // 10 if staircase else step / 10
        assert sched(step) == pytest.approx(0.1 * 0.6**exponent, rel=1e-14)
    # the staircase holds its value across a whole period, the smooth form does not
    assert (sched(10) == sched(19)) is staircase
    assert sched(10) == pytest.approx(0.06, rel=1e-14)


def test_step_decay():
    sched = schedules.StepDecay(0.5, step_size=4, gamma=0.25)
    want = {0: 0.5, 3: 0.5, 4: 0.125, 7: 0.125, 8: 0.03125, 12: 0.5 * 0.25**3, 101: 0.5 * 0.25**25}
    for step, lr in want.items():
        assert sched(step) == pytest.approx(lr, rel=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_decay(alpha):
    lr0, T = 0.2, 100
    sched = schedules.CosineDecay(lr0, decay_steps=T, alpha=alpha)
    for step in STEPS:
        t = min(step, T)
        want = lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / T)) + alpha)
        assert sched(step) == pytest.approx(want, rel=1e-14, abs=1e-16)
    assert sched(0) == pytest.approx(lr0)
    assert sched(T // 2) == pytest.approx(lr0 * (0.5 * (1 - alpha) + alpha))
    # after decay_steps it stays at the floor α·lr₀ (unlike torch's periodic CosineAnnealingLR)
    assert sched(T) == sched(T + 1) == sched(10 * T) == pytest.approx(alpha * lr0, abs=1e-16)


@pytest.mark.parametrize("sched", [
    schedules.ExponentialDecay(0.1, 3, 0.5, staircase=True),
    schedules.StepDecay(0.1, 2, gamma=0.5),
    schedules.CosineDecay(0.1, 6, alpha=0.05),
], ids=["exponential", "step", "cosine"])
def test_schedule_config_round_trip(sched):
    clone = schedules.deserialize(sched.get_config())
    assert type(clone) is type(sched)
    assert [clone(s) for s in range(12)] == [sched(s) for s in range(12)]


def test_current_learning_rate_follows_iterations(backend):
    sched = schedules.StepDecay(0.1, step_size=2, gamma=0.5)
    opt = Adam(sched)
    params = [backend.asarray(np.ones(3, dtype=np.float32))]
    opt.build(params, backend)
    for k in range(7):
        assert opt.iterations == k
        # the step about to be taken is number k (0-based), as a Keras schedule counts
        assert opt.current_learning_rate() == pytest.approx(0.1 * 0.5 ** (k // 2), rel=1e-14)
        opt.apply_gradients(params, [backend.asarray(np.ones(3, dtype=np.float32))])
    assert opt.current_learning_rate(step=0) == pytest.approx(0.1)
    assert opt.current_learning_rate(step=5) == pytest.approx(0.025)
    opt.iterations = 100  # restored from a checkpoint
    assert opt.current_learning_rate() == pytest.approx(0.1 * 0.5**50)


def test_constant_learning_rate_ignores_iterations(backend):
    opt = SGD(0.3)
    opt.build([backend.asarray(np.zeros(2))], backend)
    opt.iterations = 1000
    assert opt.current_learning_rate() == 0.3


def test_schedule_drives_the_update(backend):
    """SGD's step is exactly −lr(step)·g with the scheduled lr of that step."""
    sched = schedules.CosineDecay(0.4, decay_steps=5, alpha=0.25)
    opt = SGD(sched)
    p = backend.asarray(np.zeros(4))
    opt.build([p], backend)
    g = np.array([1.0, -2.0, 0.5, 3.0])
    before = np.zeros(4)
    for k in range(8):
        opt.apply_gradients([p], [backend.asarray(g)])
        after = backend.to_host(p).copy()
        np.testing.assert_allclose(before - after, sched(k) * g, rtol=1e-12)
        before = after
