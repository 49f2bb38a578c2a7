"""Optimizers follow torch.optim's trajectories step for step (float64, 1e-9; float32 against float32, 1e-5).

Gradients are drawn on the host with NumPy and fed to both sides, so any
difference is in the update rule itself. On a GPU backend Adam/AdamW run the
fused CUDA kernel (``CupyOps.adam_update``), so these trajectories prove it too.
"""

import json

import numpy as np
import pytest

from gpuprop import optimizers
from gpuprop.optimizers import SGD, Adam, AdamW, RMSprop, schedules

RTOL, ATOL = 1e-9, 1e-12
SHAPES = [(3, 4), (4,), (2, 3, 2)]
STEPS = 20


def _problem(seed=0, steps=STEPS, scale=None):
    """Initial parameters and a fixed sequence of gradients (optionally rescaled per step)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    if scale is not None:
        grads = [[g * scale[t] for g in gs] for t, gs in enumerate(grads)]
    return init, grads


def _ours(opt, backend, init, grads):
    """Run ``opt`` over the gradient sequence; the host parameters after every step."""
    params = [backend.asarray(p.copy()) for p in init]
    opt.build(params, backend)
    path = []
    for gs in grads:
        opt.apply_gradients(params, [backend.asarray(g.copy()) for g in gs])
        path.append([backend.to_host(p).copy() for p in params])
    return path


def _torch_path(torch, make, init, grads, before_step=None, after_step=None):
    params = [torch.tensor(p.copy(), requires_grad=True) for p in init]
    opt = make(params)
    path = []
    for t, gs in enumerate(grads):
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g.copy())
        if before_step:
            before_step(opt, params, t)
        opt.step()
        if after_step:
            after_step(t)
        path.append([p.detach().numpy().copy() for p in params])
    return path


def _assert_same_path(ours, theirs):
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=RTOL, atol=ATOL, err_msg=f"step {t + 1}")


# (our optimizer, torch.optim factory)
PAIRS = {
    "sgd": (lambda: SGD(0.1), lambda o, ps: o.SGD(ps, lr=0.1)),
    "sgd_momentum": (lambda: SGD(0.05, momentum=0.9), lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9)),
    "sgd_nesterov": (lambda: SGD(0.05, momentum=0.9, nesterov=True),
                     lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_l2": (lambda: SGD(0.1, weight_decay=0.03), lambda o, ps: o.SGD(ps, lr=0.1, weight_decay=0.03)),
    "sgd_momentum_l2": (lambda: SGD(0.05, momentum=0.8, weight_decay=0.03),
                        lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.8, weight_decay=0.03)),
    "rmsprop": (lambda: RMSprop(0.01, rho=0.8, epsilon=1e-8),
                lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.8, eps=1e-8)),
    "rmsprop_momentum": (lambda: RMSprop(0.01, rho=0.9, momentum=0.7, epsilon=1e-8),
                         lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.7, eps=1e-8)),
    "rmsprop_centered": (lambda: RMSprop(0.01, rho=0.9, centered=True, epsilon=1e-6),
                         lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, centered=True, eps=1e-6)),
    "rmsprop_centered_momentum_l2": (
        lambda: RMSprop(0.01, rho=0.9, momentum=0.5, centered=True, epsilon=1e-8, weight_decay=0.02),
        lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.5, centered=True, eps=1e-8, weight_decay=0.02)),
    "rmsprop_l2": (lambda: RMSprop(0.01, epsilon=1e-8, weight_decay=0.05),
                   lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.05)),
    "adam": (lambda: Adam(0.01, epsilon=1e-8), lambda o, ps: o.Adam(ps, lr=0.01, eps=1e-8)),
    "adam_betas": (lambda: Adam(0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
                   lambda o, ps: o.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    "adam_l2": (lambda: Adam(0.01, epsilon=1e-8, weight_decay=0.05),
                lambda o, ps: o.Adam(ps, lr=0.01, eps=1e-8, weight_decay=0.05)),
    "adamw": (lambda: AdamW(0.01, weight_decay=0.05, epsilon=1e-8),
              lambda o, ps: o.AdamW(ps, lr=0.01, eps=1e-8, weight_decay=0.05)),
    "adamw_keras_default_decay": (lambda: AdamW(0.01, epsilon=1e-7),
                                  lambda o, ps: o.AdamW(ps, lr=0.01, eps=1e-7, weight_decay=0.004)),
}


@pytest.mark.parametrize("kind", list(PAIRS))
def test_trajectory_matches_torch(backend, float64, kind):
    torch = pytest.importorskip("torch")
    ours_factory, torch_factory = PAIRS[kind]
    init, grads = _problem(seed=1)
    ours = _ours(ours_factory(), backend, init, grads)
    theirs = _torch_path(torch, lambda ps: torch_factory(torch.optim, ps), init, grads)
    _assert_same_path(ours, theirs)


# float32, as training runs: 100 steps of ours against torch.optim in float32 (both sides round every
# operation to float32; the float64 test above pins the formula, this one the precision it is computed in).
F32_STEPS, F32_RTOL = 100, 1e-5


@pytest.mark.parametrize("kind", list(PAIRS))
def test_float32_trajectory_matches_torch_float32(backend, kind):
    torch = pytest.importorskip("torch")
    ours_factory, torch_factory = PAIRS[kind]
    init, grads = _problem(seed=4, steps=F32_STEPS)
    init = [p.astype(np.float32) for p in init]
    grads = [[g.astype(np.float32) for g in gs] for gs in grads]
    ours = _ours(ours_factory(), backend, init, grads)
    theirs = _torch_path(torch, lambda ps: torch_factory(torch.optim, ps), init, grads)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            assert pa.dtype == pb.dtype == np.float32
            # relative to each tensor's scale: an element that passes near 0 is not held to 1e-5 of itself
            np.testing.assert_allclose(pa, pb, rtol=F32_RTOL, atol=F32_RTOL * np.abs(pb).max(),
                                       err_msg=f"step {t + 1}")


# Gradient norms both above and below the clip threshold, so clipping switches on and off.
_SCALES = np.geomspace(0.05, 4.0, STEPS)[np.random.default_rng(5).permutation(STEPS)]


def test_global_clipnorm_matches_clip_grad_norm(backend, float64):
    torch = pytest.importorskip("torch")
    init, grads = _problem(seed=2, scale=_SCALES)
    norms = [np.sqrt(sum((g * g).sum() for g in gs)) for gs in grads]
    assert min(norms) < 2.0 < max(norms)
    ours = _ours(SGD(0.1, momentum=0.9, global_clipnorm=2.0), backend, init, grads)
    theirs = _torch_path(torch, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), init, grads,
                         before_step=lambda o, ps, t: torch.nn.utils.clip_grad_norm_(ps, 2.0))
    _assert_same_path(ours, theirs)


def test_clipnorm_clips_each_tensor(backend, float64):
    torch = pytest.importorskip("torch")
    init, grads = _problem(seed=3, scale=_SCALES)

    def clip_each(opt, params, t):
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], 1.5)

    ours = _ours(Adam(0.01, epsilon=1e-8, clipnorm=1.5), backend, init, grads)
    theirs = _torch_path(torch, lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-8), init, grads,
                         before_step=clip_each)
    _assert_same_path(ours, theirs)


def test_cosine_decay_matches_cosine_annealing(backend, float64):
    torch = pytest.importorskip("torch")
    init, grads = _problem(seed=4)
    # Keras' alpha is the floor as a fraction of lr₀; torch's eta_min is that floor itself.
    opt = SGD(schedules.CosineDecay(0.2, decay_steps=STEPS, alpha=0.1), momentum=0.9)
    ours = _ours(opt, backend, init, grads)
    sched = []
    theirs = _torch_path(torch, lambda ps: _with_scheduler(torch, sched, ps), init, grads,
                         after_step=lambda t: sched[0].step())
    _assert_same_path(ours, theirs)


def _with_scheduler(torch, holder, params):
    opt = torch.optim.SGD(params, lr=0.2, momentum=0.9)
    holder.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS, eta_min=0.02))
    return opt


def test_step_decay_matches_step_lr(backend, float64):
    torch = pytest.importorskip("torch")
    init, grads = _problem(seed=6)
    ours = _ours(Adam(schedules.StepDecay(0.05, step_size=6, gamma=0.3), epsilon=1e-8), backend, init, grads)
    sched = []

    def make(ps):
        opt = torch.optim.Adam(ps, lr=0.05, eps=1e-8)
        sched.append(torch.optim.lr_scheduler.StepLR(opt, step_size=6, gamma=0.3))
        return opt

    theirs = _torch_path(torch, make, init, grads, after_step=lambda t: sched[0].step())
    _assert_same_path(ours, theirs)


def test_exponential_decay_matches_lr_set_by_hand(backend, float64):
    torch = pytest.importorskip("torch")
    init, grads = _problem(seed=7)
    sched = schedules.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5)
    opt = RMSprop(sched, epsilon=1e-8)
    seen = []
    params = [backend.asarray(p.copy()) for p in init]
    opt.build(params, backend)
    ours = []
    for gs in grads:
        seen.append(opt.current_learning_rate())
        opt.apply_gradients(params, [backend.asarray(g) for g in gs])
        ours.append([backend.to_host(p).copy() for p in params])

    def set_lr(o, ps, t):
        o.param_groups[0]["lr"] = 0.05 * 0.5 ** (t / 4)  # the step index the update uses is t

    theirs = _torch_path(torch, lambda ps: torch.optim.RMSprop(ps, lr=0.05, alpha=0.9, eps=1e-8), init, grads,
                         before_step=set_lr)
    _assert_same_path(ours, theirs)
    np.testing.assert_allclose(seen, [0.05 * 0.5 ** (t / 4) for t in range(STEPS)], rtol=1e-15)


def test_keras_defaults():
    assert optimizers.get("sgd").learning_rate == 0.01
    sgd = SGD()
    assert (sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.0, False, 0.0)
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (1e-3, 0.9, 0.999, 1e-7)
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (1e-3, 0.9, 0.0, 1e-7, False)
    adamw = optimizers.get("adamw")
    assert isinstance(adamw, AdamW) and adamw.weight_decay == 0.004 and adamw.learning_rate == 1e-3
    assert optimizers.get("momentum").momentum == 0.9
    assert optimizers.get("adam", learning_rate=0.5).learning_rate == 0.5


CONFIG_CASES = [
    lambda: SGD(0.03, momentum=0.9, nesterov=True, weight_decay=0.01, global_clipnorm=1.0),
    lambda: RMSprop(0.002, rho=0.8, momentum=0.5, centered=True, epsilon=1e-8, clipnorm=2.0),
    lambda: Adam(schedules.CosineDecay(0.01, 7, alpha=0.2), beta_1=0.85, epsilon=1e-8, weight_decay=0.01),
    lambda: AdamW(schedules.ExponentialDecay(0.01, 3, 0.7, staircase=True), weight_decay=0.02),
    lambda: SGD(schedules.StepDecay(0.1, 4, gamma=0.5), momentum=0.9),
]


@pytest.mark.parametrize("case", range(len(CONFIG_CASES)))
def test_config_round_trip(backend, float64, case):
    opt = CONFIG_CASES[case]()
    cfg = json.loads(json.dumps(opt.get_config()))  # JSON-able, as checkpoints need
    clone = optimizers.from_config(cfg)
    assert type(clone) is type(opt)
    assert clone.get_config() == opt.get_config()
    init, grads = _problem(seed=8, steps=8)
    for a, b in zip(_ours(opt, backend, init, grads), _ours(clone, backend, init, grads)):
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("case", range(len(CONFIG_CASES)))
def test_restored_state_continues_identically(backend, float64, case):
    init, grads = _problem(seed=9, steps=12)
    uninterrupted = _ours(CONFIG_CASES[case](), backend, init, grads)

    first = CONFIG_CASES[case]()
    _ours(first, backend, init, grads[:5])
    saved = [backend.to_host(v).copy() for v in first.variables()]
    assert len(saved) == sum(len(s) for s in first.slots)
    resumed = optimizers.from_config(first.get_config())
    params = [backend.asarray(p) for p in uninterrupted[4]]
    resumed.build(params, backend)
    resumed.set_variables(saved)
    resumed.iterations = first.iterations
    for t, gs in enumerate(grads[5:], start=5):
        resumed.apply_gradients(params, [backend.asarray(g.copy()) for g in gs])
        for pa, pb in zip(params, uninterrupted[t]):
            np.testing.assert_array_equal(backend.to_host(pa), pb)
