"""BatchNormalization: gradients, PyTorch parity, Keras moving statistics, checkpoints."""

import json

import numpy
import pytest

import gpuprop
from gpuprop.gradcheck import check_layer
from gpuprop.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Flatten,
                            MaxPooling2D)


def build(layer, backend, shape, dtype="float64"):
    layer.dtype = dtype
    layer.build(shape, backend, numpy.random.default_rng(0))
    layer.need_input_grad = True
    return layer


def randomize(layer, backend, seed):
    """Non-trivial γ, β so that their gradients and the output are not special cases."""
    rng = numpy.random.default_rng(seed)
    for name, arr in layer.params.items():
        arr[...] = backend.asarray(rng.uniform(0.5, 1.5, arr.shape) if name == "gamma" else rng.standard_normal(arr.shape))


def close(a, b, tol=1e-9):
    a, b = numpy.asarray(a), numpy.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(numpy.abs(b).max()))
    assert float(numpy.abs(a - b).max()) <= tol * scale


SHAPES = [(6,), (5, 4, 3), (7, 5, 1)]


def test_keras_defaults_and_weight_order(backend):
    layer = build(BatchNormalization(), backend, (4, 4, 3), dtype="float32")
    assert (layer.momentum, layer.epsilon, layer.axis, layer.center, layer.scale) == (0.99, 1e-3, -1, True, True)
    assert list(layer.params) == ["gamma", "beta"] and list(layer.state) == ["moving_mean", "moving_variance"]
    assert layer.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    gamma, beta, mean, var = layer.get_weights()
    numpy.testing.assert_array_equal(gamma, numpy.ones(3))
    numpy.testing.assert_array_equal(beta, numpy.zeros(3))
    numpy.testing.assert_array_equal(mean, numpy.zeros(3))
    numpy.testing.assert_array_equal(var, numpy.ones(3))
    assert set(layer.grads) == {"gamma", "beta"}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_batchnorm_gradcheck(backend, float64, shape, center, scale):
    layer = build(BatchNormalization(center=center, scale=scale), backend, shape)
    randomize(layer, backend, 1)
    x = numpy.random.default_rng(2).standard_normal((4, *shape)) * 2 + 0.5
    errors = check_layer(layer, x, backend=backend)
    assert set(errors) == {"input"} | set(layer.params)
    assert max(errors.values()) <= 1e-6, errors


def test_batchnorm_gradcheck_channels_first_axis(backend, float64):
    layer = build(BatchNormalization(axis=1), backend, (3, 4, 5))
    randomize(layer, backend, 3)
    assert tuple(layer.params["gamma"].shape) == (3,)
    errors = check_layer(layer, numpy.random.default_rng(4).standard_normal((2, 3, 4, 5)), backend=backend)
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_training_matches_torch(backend, float64, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = build(BatchNormalization(momentum=0.9), backend, shape)
    randomize(layer, backend, 5)
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((8, *shape)) * 3 + 1
    dy = rng.standard_normal(x.shape)
    y = layer.forward(backend.asarray(x), training=True)
    dx = layer.backward(backend.asarray(dy.copy()))

    to_nc = (lambda a: a) if len(shape) == 1 else (lambda a: a.permute(0, 3, 1, 2))
    xt = torch.tensor(x, requires_grad=True)
    g = torch.tensor(backend.to_host(layer.params["gamma"]), requires_grad=True)
    b = torch.tensor(backend.to_host(layer.params["beta"]), requires_grad=True)
    c = shape[-1]
    running_mean, running_var = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    yt = F.batch_norm(to_nc(xt), running_mean, running_var, g, b, training=True, momentum=1 - 0.9, eps=1e-3)
    yt.backward(to_nc(torch.tensor(dy)))
    back = (lambda a: a) if len(shape) == 1 else (lambda a: a.permute(0, 2, 3, 1))
    close(backend.to_host(y), back(yt.detach()).numpy())
    close(backend.to_host(dx), xt.grad.numpy())
    close(backend.to_host(layer.grads["gamma"]), g.grad.numpy())
    close(backend.to_host(layer.grads["beta"]), b.grad.numpy())
    # torch momentum = 1 − Keras momentum; its running_var is unbiased, Keras' moving_variance biased
    close(backend.to_host(layer.state["moving_mean"]), running_mean.numpy())
    flat = x.reshape(-1, c)
    close(backend.to_host(layer.state["moving_variance"]), 0.9 * 1.0 + 0.1 * flat.var(axis=0))


def test_moving_statistics_follow_keras_recurrence(backend, float64):
    layer = build(BatchNormalization(), backend, (3, 3, 2))
    rng = numpy.random.default_rng(7)
    mean, var = numpy.zeros(2), numpy.ones(2)
    for step in range(5):
        x = rng.standard_normal((4, 3, 3, 2)) * (step + 1) + step
        layer.forward(backend.asarray(x), training=True)
        flat = x.reshape(-1, 2)
        mean = mean * 0.99 + flat.mean(axis=0) * 0.01
        var = var * 0.99 + flat.var(axis=0) * 0.01  # biased (ddof=0), as keras.ops.moments
    close(backend.to_host(layer.state["moving_mean"]), mean, 1e-12)
    close(backend.to_host(layer.state["moving_variance"]), var, 1e-12)
    layer.forward(backend.asarray(x), training=False)  # inference leaves them alone
    close(backend.to_host(layer.state["moving_mean"]), mean, 1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_uses_moving_statistics(backend, float64, shape):
    layer = build(BatchNormalization(epsilon=0.01), backend, shape)
    rng = numpy.random.default_rng(8)
    c = shape[-1]
    gamma, beta, mm, mv = rng.uniform(0.5, 2, c), rng.standard_normal(c), rng.standard_normal(c), rng.uniform(0.5, 2, c)
    layer.set_weights([gamma, beta, mm, mv])
    x = rng.standard_normal((5, *shape))
    y = backend.to_host(layer.forward(backend.asarray(x), training=False))
    close(y, gamma * (x - mm) / numpy.sqrt(mv + 0.01) + beta, 1e-12)


def test_config_round_trip():
    layer = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False, gamma_initializer="zeros")
    cfg = json.loads(json.dumps(layer.get_config()))
    again = BatchNormalization.from_config(cfg)
    assert again.get_config() == cfg and again.axis == 1 and not again.center


def test_bad_axis_is_rejected(backend):
    with pytest.raises(ValueError, match="axis"):
        build(BatchNormalization(axis=3), backend, (4, 2))


def test_cnn_with_batchnorm_save_load_round_trip(backend, tmp_path):
    def make():
        return gpuprop.Sequential([
            Conv2D(4, 3, padding="same", use_bias=False, input_shape=(8, 8, 2)), BatchNormalization(),
            Activation("relu"), MaxPooling2D(2), Conv2D(6, (2, 3), strides=2, padding="same", activation="relu"),
            AveragePooling2D(2, padding="same"), Flatten(), Dense(8), BatchNormalization(momentum=0.5),
            Dense(3, activation="softmax")], device=backend, seed=3)

    rng = numpy.random.default_rng(9)
    x = rng.standard_normal((40, 8, 8, 2)).astype("float32")
    y = rng.integers(0, 3, 40)
    model = make()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    # the moving statistics moved away from their initial values and will travel in the checkpoint
    bn = model.layers[1]
    assert not numpy.allclose(backend.to_host(bn.state["moving_mean"]), 0)
    path = tmp_path / "cnn.npz"
    model.save(path)
    loaded = gpuprop.load_model(path, device=backend)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    numpy.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6, atol=1e-7)
    # training resumes identically from the checkpoint
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=3, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
