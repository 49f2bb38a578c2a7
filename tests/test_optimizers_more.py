"""Adagrad, Adadelta, Adamax, Nadam and Adam/AdamW(amsgrad) follow torch.optim step for step;
Lion follows its paper's rule, written here in float64 NumPy.

100 steps of host-drawn gradients are fed to both sides: float64 trajectories agree to 1e-9,
float32 ones to 1e-5 relative (the float32 run against torch in float64, so its error is ours alone).
Both sides get the same hyper-parameters (Keras' and torch's defaults differ, e.g. Adagrad's s₀ and ε).
"""

import json

import numpy as np
import pytest

from gpuprop import optimizers
from gpuprop.optimizers import Adadelta, Adagrad, Adam, Adamax, AdamW, Lion, Nadam

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 100


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    # Gradients that drift and shrink, so max-based slots (Adamax, amsgrad) take both branches.
    grads = [[rng.standard_normal(s) * (1.5 + np.sin(t / 7)) for s in SHAPES] for t in range(STEPS)]
    return init, grads


def _ours(opt, backend, init, grads, dtype):
    params = [backend.asarray(p.astype(dtype)) for p in init]
    opt.build(params, backend)
    path = []
    for gs in grads:
        opt.apply_gradients(params, [backend.asarray(g.astype(dtype)) for g in gs])
        path.append([backend.to_host(p).astype(np.float64) for p in params])
    return path


def _torch_path(make, init, grads):
    torch = pytest.importorskip("torch")
    # torch keeps scalar state (NAdam's ∏μ, the step) in the default dtype: float64 makes it exact
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = [torch.tensor(p.copy(), requires_grad=True) for p in init]
        opt = make(torch.optim, params)
        path = []
        for gs in grads:
            for p, g in zip(params, gs):
                p.grad = torch.tensor(g.copy())
            opt.step()
            path.append([p.detach().numpy().copy() for p in params])
    finally:
        torch.set_default_dtype(old)
    return path


PAIRS = {
    "adagrad": (lambda: Adagrad(0.1, initial_accumulator_value=0.1, epsilon=1e-7),
                lambda o, ps: o.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=1e-7)),
    "adagrad_l2": (lambda: Adagrad(0.05, initial_accumulator_value=0.0, epsilon=1e-10, weight_decay=0.01),
                   lambda o, ps: o.Adagrad(ps, lr=0.05, eps=1e-10, weight_decay=0.01)),
    "adadelta": (lambda: Adadelta(1.0, rho=0.95, epsilon=1e-7),
                 lambda o, ps: o.Adadelta(ps, lr=1.0, rho=0.95, eps=1e-7)),
    "adadelta_l2": (lambda: Adadelta(0.5, rho=0.9, epsilon=1e-6, weight_decay=0.02),
                    lambda o, ps: o.Adadelta(ps, lr=0.5, rho=0.9, eps=1e-6, weight_decay=0.02)),
    "adamax": (lambda: Adamax(0.01, epsilon=1e-7), lambda o, ps: o.Adamax(ps, lr=0.01, eps=1e-7)),
    "adamax_l2": (lambda: Adamax(0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-8, weight_decay=0.01),
                  lambda o, ps: o.Adamax(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01)),
    "nadam": (lambda: Nadam(0.01, epsilon=1e-7), lambda o, ps: o.NAdam(ps, lr=0.01, eps=1e-7)),
    "nadam_l2": (lambda: Nadam(0.01, beta_1=0.85, beta_2=0.99, epsilon=1e-8, weight_decay=0.01),
                 lambda o, ps: o.NAdam(ps, lr=0.01, betas=(0.85, 0.99), eps=1e-8, weight_decay=0.01)),
    "adam_amsgrad": (lambda: Adam(0.01, epsilon=1e-7, amsgrad=True),
                     lambda o, ps: o.Adam(ps, lr=0.01, eps=1e-7, amsgrad=True)),
    "adamw_amsgrad": (lambda: AdamW(0.01, weight_decay=0.05, epsilon=1e-7, amsgrad=True),
                      lambda o, ps: o.AdamW(ps, lr=0.01, weight_decay=0.05, eps=1e-7, amsgrad=True)),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_float64_trajectory_matches_torch(backend, name):
    ours_make, torch_make = PAIRS[name]
    init, grads = _problem()
    theirs = _torch_path(torch_make, init, grads)
    ours = _ours(ours_make(), backend, init, grads, np.float64)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=1e-9, atol=1e-12, err_msg=f"{name} step {t + 1}")


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_float32_trajectory_matches_torch_float64(backend, name):
    ours_make, torch_make = PAIRS[name]
    init, grads = _problem(seed=1)
    init = [p.astype(np.float32).astype(np.float64) for p in init]
    grads = [[g.astype(np.float32).astype(np.float64) for g in gs] for gs in grads]
    theirs = _torch_path(torch_make, init, grads)
    ours = _ours(ours_make(), backend, init, grads, np.float32)
    scale = max(np.abs(p).max() for p in theirs[-1])
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{name} step {t + 1}")


def _lion_paper(init, grads, lr, b1, b2, wd):
    """Chen et al. 2023, Program 1: c = β₁m + (1−β₁)g; θ ← θ − η(sign(c) + λθ); m ← β₂m + (1−β₂)g."""
    theta = [p.copy() for p in init]
    m = [np.zeros_like(p) for p in init]
    path = []
    for gs in grads:
        for i, g in enumerate(gs):
            c = b1 * m[i] + (1 - b1) * g
            theta[i] = theta[i] - lr * (np.sign(c) + wd * theta[i])
            m[i] = b2 * m[i] + (1 - b2) * g
        path.append([p.copy() for p in theta])
    return path


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_lion_follows_the_paper(backend, wd, dtype, tol):
    init, grads = _problem(seed=2)
    init = [p.astype(dtype).astype(np.float64) for p in init]
    grads = [[g.astype(dtype).astype(np.float64) for g in gs] for gs in grads]
    theirs = _lion_paper(init, grads, 0.003, 0.9, 0.99, wd)
    ours = _ours(Lion(0.003, weight_decay=wd or None), backend, init, grads, dtype)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=tol, atol=tol, err_msg=f"lion step {t + 1}")


def test_keras_names_and_defaults():
    """The defaults Keras 3 documents for each optimizer."""
    assert (Adagrad().learning_rate, Adagrad().initial_accumulator_value, Adagrad().epsilon) == (0.001, 0.1, 1e-7)
    assert (Adadelta().learning_rate, Adadelta().rho, Adadelta().epsilon) == (0.001, 0.95, 1e-7)
    assert (Adamax().beta_1, Adamax().beta_2, Adamax().epsilon) == (0.9, 0.999, 1e-7)
    assert (Nadam().learning_rate, Nadam().beta_1, Nadam().beta_2, Nadam().epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert (Lion().learning_rate, Lion().beta_1, Lion().beta_2) == (0.001, 0.9, 0.99)
    assert Adam().amsgrad is False
    for name, cls in [("adagrad", Adagrad), ("adadelta", Adadelta), ("adamax", Adamax), ("nadam", Nadam),
                      ("lion", Lion)]:
        assert type(optimizers.get(name)) is cls
        assert type(optimizers.get(name.capitalize())) is cls


@pytest.mark.parametrize("make", [lambda: Adagrad(0.05), lambda: Adadelta(1.0), lambda: Adamax(0.01),
                                  lambda: Nadam(0.01), lambda: Lion(0.001, weight_decay=0.01),
                                  lambda: Adam(0.01, amsgrad=True)])
def test_config_and_state_resume_the_same_trajectory(backend, make):
    """A run split at step 40 (config through JSON, slots and step count copied) ends where an unsplit run ends."""
    init, grads = _problem(seed=3)
    whole = _ours(make(), backend, init, grads, np.float64)[-1]
    first = make()
    params = [backend.asarray(p.copy()) for p in init]
    first.build(params, backend)
    for gs in grads[:40]:
        first.apply_gradients(params, [backend.asarray(g) for g in gs])
    second = optimizers.from_config(json.loads(json.dumps(first.get_config())))
    second.build(params, backend)
    second.set_variables([backend.to_host(a) for a in first.variables()])
    second.iterations = first.iterations
    for gs in grads[40:]:
        second.apply_gradients(params, [backend.asarray(g) for g in gs])
    for a, b in zip(params, whole):
        np.testing.assert_allclose(backend.to_host(a), b, rtol=1e-12, atol=1e-14)
