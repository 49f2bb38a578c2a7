"""float64 parity with PyTorch autograd: Dense + activation forward/backward, and every loss.

PyTorch computes the same functions by an independent route (autograd), so
agreement to 1e-9 proves forward, dx, dW and db by construction rather than by
our own derivation. gpuprop's Dense kernel is (in, out); torch's weight is its
transpose.
"""

import numpy as np
import pytest

from gpuprop import config, layers, losses

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-9, 1e-12
TORCH_ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda t: F.leaky_relu(t, negative_slope=0.2),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda t: F.softmax(t, dim=-1),
    "gelu": lambda t: F.gelu(t),  # exact x·Φ(x), as Keras' 'gelu'
    "linear": lambda t: t,
}


def _close(ours, theirs):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(5, 4), (1, 4), (2, 3, 4)], ids=["batch5", "batch1", "rank3"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", list(TORCH_ACTIVATIONS))
def test_dense_matches_torch(backend, float64, activation, use_bias, shape):
    rng = np.random.default_rng(21)
    layer = layers.Dense(3, activation=activation, use_bias=use_bias)
    layer.build(shape[1:], backend, rng)
    w = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    layer.params["kernel"][...] = backend.asarray(w)
    if use_bias:
        layer.params["bias"][...] = backend.asarray(b)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal((*shape[:-1], 3))

    y = layer(backend.asarray(x), training=True)
    y_host = backend.to_host(y).copy()  # backward may reuse buffers
    g = backend.asarray(dy.copy())
    if layer.activation is not None:
        g = layer.activation.backward(g)
    dx = backend.to_host(layer.backward(g))

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w.T.copy(), requires_grad=True)  # torch weight: (out, in)
    tb = torch.tensor(b, requires_grad=True) if use_bias else None
    ty = TORCH_ACTIVATIONS[activation](F.linear(tx, tw, tb))
    ty.backward(torch.tensor(dy))

    _close(y_host, ty)
    _close(dx, tx.grad)
    _close(backend.to_host(layer.grads["kernel"]), tw.grad.T)
    if use_bias:
        _close(backend.to_host(layer.grads["bias"]), tb.grad)
    else:
        assert "bias" not in layer.params


def _torch_loss(name, from_logits, y_true, pred):
    """The torch expression of each loss; probabilities clipped to [ε, 1 − ε] as Keras does."""
    eps = config.epsilon()
    if name == "mse":
        return F.mse_loss(pred, y_true)
    if name == "half_mse":
        return 0.5 * ((pred - y_true) ** 2).sum() / pred.shape[0]
    if name == "sparse_categorical_crossentropy":
        if from_logits:
            return F.cross_entropy(pred, y_true)
        return F.nll_loss(torch.log(pred.clamp(eps, 1 - eps)), y_true)
    if name == "categorical_crossentropy":
        logp = F.log_softmax(pred, dim=1) if from_logits else torch.log(pred.clamp(eps, 1 - eps))
        return -(y_true * logp).sum(1).mean()
    if name == "binary_crossentropy":
        if from_logits:
            return F.binary_cross_entropy_with_logits(pred, y_true)
        return F.binary_cross_entropy(pred, y_true)
    raise AssertionError(name)


CASES = [("mse", False), ("half_mse", False), ("categorical_crossentropy", False),
         ("categorical_crossentropy", True), ("sparse_categorical_crossentropy", False),
         ("sparse_categorical_crossentropy", True), ("binary_crossentropy", False),
         ("binary_crossentropy", True)]


@pytest.mark.parametrize("n", [1, 6])
@pytest.mark.parametrize("name,from_logits", CASES, ids=[f"{n}{'_logits' if f else ''}" for n, f in CASES])
def test_loss_matches_torch(backend, float64, name, from_logits, n):
    rng = np.random.default_rng(22)
    k = 5
    logits = rng.standard_normal((n, k)) * 3
    if name in ("mse", "half_mse"):
        y_true, pred = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    elif name == "binary_crossentropy":
        # soft targets too: the formula holds for any y in [0, 1]
        y_true = np.concatenate([rng.integers(0, 2, (n, 2)), rng.uniform(0, 1, (n, 3))], axis=1)
        pred = logits if from_logits else rng.uniform(0.02, 0.98, (n, k))
    else:
        labels = rng.integers(0, k, n)
        y_true = labels if name.startswith("sparse") else np.eye(k)[labels]
        if from_logits:
            pred = logits
        else:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            pred = e / e.sum(axis=1, keepdims=True)
            assert pred.min() > 1e-6  # away from the clip, where both sides agree

    loss = losses.get(name)
    loss.from_logits = from_logits
    value, grad = loss.build(backend).loss_and_grad(backend.asarray(y_true), backend.asarray(pred.copy()))

    tp = torch.tensor(pred, requires_grad=True)
    ty = torch.tensor(y_true)
    tl = _torch_loss(name, from_logits, ty, tp)
    tl.backward()
    _close(np.asarray(float(value)), tl)
    _close(backend.to_host(grad), tp.grad)


@pytest.mark.parametrize("name,from_logits", [("categorical_crossentropy", True), ("categorical_crossentropy", False),
                                              ("sparse_categorical_crossentropy", True),
                                              ("sparse_categorical_crossentropy", False)])
def test_cross_entropy_over_positions_matches_torch(backend, float64, name, from_logits):
    """Rank-3 predictions (N, T, K), as a Dense on rank-3 input gives: softmax over K, mean over N·T (Keras)."""
    rng = np.random.default_rng(23)
    n, t, k = 3, 4, 5
    logits = rng.standard_normal((n, t, k)) * 2
    labels = rng.integers(0, k, (n, t))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    pred = logits if from_logits else e / e.sum(axis=-1, keepdims=True)
    y_true = labels if name.startswith("sparse") else np.eye(k)[labels]

    loss = losses.get(name)
    loss.from_logits = from_logits
    value, grad = loss.build(backend).loss_and_grad(backend.asarray(y_true), backend.asarray(pred.copy()))

    tp = torch.tensor(pred, requires_grad=True)
    flat = tp.reshape(-1, k)
    tl = F.cross_entropy(flat, torch.tensor(labels.reshape(-1))) if from_logits else \
        F.nll_loss(torch.log(flat), torch.tensor(labels.reshape(-1)))
    tl.backward()
    _close(np.asarray(float(value)), tl)
    assert tuple(grad.shape) == (n, t, k)
    _close(backend.to_host(grad), tp.grad)
