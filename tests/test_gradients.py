"""Every hand-written backward against float64 central differences (``gpuprop.gradcheck``).

A relative error ‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖) at or below
1e-6 means the derivative is right; a wrong sign, factor or transpose gives
errors near 1. Inputs are kept away from the kinks of relu and leaky_relu,
where the central difference straddles two slopes.
"""

import numpy as np
import pytest

import gpuprop
from gpuprop import config, gradcheck, layers, losses

TOL = 1e-6
ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "gelu", "linear"]
KINKED = {"relu", "leaky_relu"}
# batch 1, an ordinary batch, and rank-3 input (Dense acts on the last axis)
SHAPES = [(1, 5), (4, 3), (3, 2, 4)]


def _away_from_zero(x, margin=1e-3):
    """Push entries with |x| <= margin out to ±(margin + 0.05), so no kink lies within h of them."""
    near = np.abs(x) <= margin
    return np.where(near, np.where(x < 0, -1.0, 1.0) * (margin + 0.05), x)


def _assert_small(errors, expected_keys):
    assert set(errors) == set(expected_keys)
    for name, err in errors.items():
        assert err <= TOL, f"{name}: relative error {err:.2e}"


def _dense(backend, units, in_shape, activation, use_bias, seed):
    """A built float64 Dense with a non-zero bias (zeros would hide a missing bias term in forward)."""
    rng = np.random.default_rng(seed)
    layer = layers.Dense(units, activation=activation, use_bias=use_bias)
    layer.build(in_shape, backend, rng)
    if use_bias:
        layer.params["bias"][...] = backend.asarray(rng.standard_normal(units) * 0.5)
    return layer


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_gradients(backend, float64, activation, use_bias, shape):
    layer = _dense(backend, 3, shape[1:], activation, use_bias, seed=len(shape) + shape[0])
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    if activation in KINKED:
        # The kink is in the pre-activation x·W + b: redraw rows until it is clear of 0.
        w = backend.to_host(layer.params["kernel"])
        b = backend.to_host(layer.params["bias"]) if use_bias else 0.0
        for _ in range(100):
            pre = x @ w + b
            if np.abs(pre).min() > 1e-3:
                break
            x = np.where((np.abs(pre) <= 1e-3).any(axis=-1, keepdims=True), rng.standard_normal(shape), x)
        assert np.abs(x @ w + b).min() > 1e-3
    expected = ["input", "kernel"] + (["bias"] if use_bias else [])
    _assert_small(gradcheck(layer, x, backend=backend), expected)


@pytest.mark.parametrize("shape", [(1, 6), (4, 5), (2, 3, 4)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer_gradients(backend, float64, activation, shape):
    x = np.random.default_rng(3).standard_normal(shape) * 2
    if activation in KINKED:
        x = _away_from_zero(x)
    _assert_small(gradcheck(layers.Activation(activation), x, backend=backend), ["input"])


@pytest.mark.parametrize("layer_cls", [layers.ReLU, layers.Softmax])
def test_named_activation_layers(backend, float64, layer_cls):
    x = _away_from_zero(np.random.default_rng(4).standard_normal((3, 5)))
    _assert_small(gradcheck(layer_cls(), x, backend=backend), ["input"])


def test_flatten_gradient(backend, float64):
    x = np.random.default_rng(5).standard_normal((3, 2, 4, 2))
    layer = layers.Flatten()
    _assert_small(gradcheck(layer, x, backend=backend), ["input"])
    assert layer.compute_output_shape((2, 4, 2)) == (16,)


@pytest.mark.parametrize("target", [(4, 3), (-1, 3), (12,), (2, -1, 2)])
def test_reshape_gradient(backend, float64, target):
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    layer = layers.Reshape(target)
    _assert_small(gradcheck(layer, x, backend=backend), ["input"])
    # -1 resolved, so the next layer builds with the real size (Keras allows one -1)
    want = tuple(12 // -np.prod(target) if d == -1 else d for d in target)
    assert layer.output_shape == want
    assert backend.to_host(layer.forward(backend.asarray(x))).shape == (2, *want)


def test_reshape_rejects_a_wrong_size(backend):
    with pytest.raises(ValueError, match="cannot reshape"):
        layers.Reshape((5, 2)).build((3, 4), backend, np.random.default_rng(0))


def test_dropout_gradient_in_training(backend, float64):
    layer = layers.Dropout(0.4)
    x = np.random.default_rng(8).standard_normal((6, 10))
    _assert_small(gradcheck(layer, x, backend=backend), ["input"])
    # The check must have exercised a real mask: some units dropped, survivors scaled by 1/(1 − rate).
    y = backend.to_host(layer.forward(backend.asarray(x), training=True))
    kept = y != 0
    assert 0 < kept.sum() < x.size
    np.testing.assert_allclose(y[kept], x[kept] / 0.6, rtol=1e-12)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _loss_cases(n, k=4, seed=0):
    """(name, loss, y_true, y_pred, from_logits) for every loss and form, predictions away from the clip."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 2
    labels = rng.integers(0, k, n)
    onehot = np.eye(k)[labels]
    bin_y = rng.integers(0, 2, (n, 3)).astype(np.float64)
    return [
        ("mse", rng.standard_normal((n, 3)), rng.standard_normal((n, 3)), False),
        ("half_mse", rng.standard_normal((n, 3)), rng.standard_normal((n, 3)), False),
        ("categorical_crossentropy", onehot, _softmax(logits), False),
        ("categorical_crossentropy", onehot, logits, True),
        ("sparse_categorical_crossentropy", labels, _softmax(logits), False),
        ("sparse_categorical_crossentropy", labels, logits, True),
        ("binary_crossentropy", bin_y, rng.uniform(0.05, 0.95, (n, 3)), False),
        ("binary_crossentropy", bin_y, rng.standard_normal((n, 3)) * 2, True),
    ]


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("case", range(8), ids=lambda i: ["mse", "half_mse", "cce", "cce_logits", "scce",
                                                            "scce_logits", "bce", "bce_logits"][i])
def test_loss_gradients(backend, float64, case, n):
    name, y_true, y_pred, from_logits = _loss_cases(n)[case]
    errors = gradcheck(losses.get(name), y_true, y_pred, backend=backend, from_logits=from_logits)
    _assert_small(errors, ["y_pred"])


@pytest.mark.parametrize("loss,last,targets", [
    ("sparse_categorical_crossentropy", "softmax", "labels"),  # fused: the loss takes the logits
    ("categorical_crossentropy", "softmax", "onehot"),
    ("binary_crossentropy", "sigmoid", "binary"),
    ("mse", "tanh", "real"),
    ("half_mse", None, "real"),
])
def test_whole_model_gradients(backend, float64, loss, last, targets):
    rng = np.random.default_rng(11)
    model = gpuprop.Sequential([
        layers.Flatten(input_shape=(2, 3)),
        layers.Dense(7, activation="gelu"),
        layers.Dropout(0.25),
        layers.Dense(5, activation="tanh"),
        layers.Dense(4, activation=last),
    ], device=backend, seed=3)
    model.compile(gpuprop.optimizers.SGD(0.1), loss)
    x = rng.standard_normal((6, 2, 3))
    y = {"labels": rng.integers(0, 4, 6), "onehot": np.eye(4)[rng.integers(0, 4, 6)],
         "binary": rng.integers(0, 2, (6, 4)).astype(np.float64), "real": rng.standard_normal((6, 4))}[targets]
    before = model.get_weights()
    errors = gradcheck(model, x, y)
    names = [f"{layer.name}.{p}" for layer in model.layers for p in layer.params]
    _assert_small(errors, names)
    for w0, w1 in zip(before, model.get_weights()):  # a check, not a training step
        np.testing.assert_array_equal(w0, w1)


# --- numerical stability of the fused losses (float32, the training dtype) ----------

def test_softmax_cross_entropy_from_huge_logits_is_finite(backend):
    assert config.floatx() == "float32"
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]], dtype=np.float32)
    labels = np.array([1, 0, 2])
    onehot = np.eye(3)[labels]
    z64 = z.astype(np.float64)
    logp = z64 - z64.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    want_loss = -(onehot * logp).sum() / 3
    want_grad = (np.exp(logp) - onehot) / 3  # (p − y)/N
    for name, target in [("categorical_crossentropy", onehot.astype(np.float32)),
                         ("sparse_categorical_crossentropy", labels)]:
        loss = losses.get(name)
        loss.from_logits = True
        value, grad = loss.build(backend).loss_and_grad(backend.asarray(target), backend.asarray(z))
        value, grad = float(value), backend.to_host(grad)
        assert np.isfinite(value) and np.isfinite(grad).all()
        np.testing.assert_allclose(value, want_loss, rtol=1e-6)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-7)


def test_binary_cross_entropy_from_huge_logits_is_finite(backend):
    z = np.array([[1e4, -1e4], [1e4, -1e4], [0.0, 3.0]], dtype=np.float32)
    y = np.array([[0, 1], [1, 0], [1, 0]], dtype=np.float32)
    loss = losses.BinaryCrossentropy(from_logits=True).build(backend)
    value, grad = loss.loss_and_grad(backend.asarray(y), backend.asarray(z))
    value, grad = float(value), backend.to_host(grad)
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    softplus = np.maximum(z64, 0) + np.log1p(np.exp(-np.abs(z64)))
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(value, (softplus - y64 * z64).mean(), rtol=1e-6)
    sig = np.where(z64 >= 0, 1 / (1 + np.exp(-np.abs(z64))), 1 - 1 / (1 + np.exp(-np.abs(z64))))
    np.testing.assert_allclose(grad, (sig - y64) / y.size, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(5, 3), (1, 4), (4, 2, 3)])
def test_half_mse_is_the_textbook_formula(backend, float64, shape):
    rng = np.random.default_rng(12)
    y_pred, y_true = rng.standard_normal(shape), rng.standard_normal(shape)
    n = shape[0]
    want = sum(np.sum((y_pred[i] - y_true[i]) ** 2) for i in range(n)) / (2 * n)
    loss = losses.get("half_mse").build(backend)
    value, grad = loss.loss_and_grad(backend.asarray(y_true), backend.asarray(y_pred))
    np.testing.assert_allclose(float(value), want, rtol=1e-12)
    np.testing.assert_allclose(backend.to_host(grad), (y_pred - y_true) / n, rtol=1e-12)


class _WrongTanh(layers.Layer):
    """tanh whose backward forgets the (1 − y²) factor: the checker must catch it."""

    def forward(self, x, training=False):
        return self.xp.tanh(x)

    def backward(self, dy):
        return dy


def test_gradcheck_flags_a_wrong_backward(backend, float64):
    x = np.random.default_rng(13).standard_normal((4, 3))
    assert gradcheck(_WrongTanh(), x, backend=backend)["input"] > 1e-2
