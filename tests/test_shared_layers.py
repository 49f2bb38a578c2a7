"""Two models over the same layers (Keras' autoencoder and its encoder, a classifier over a shared trunk): training
either one trains the layers both use. Oracles: the same model trained with no sibling (bit for bit, optimizer
state included) and the sibling's output recomputed in float64 NumPy from the trained weights."""

import numpy as np
import pytest

import gpuprop
from gpuprop import Input, Model, layers
from gpuprop.optimizers import SGD, Adam


def data(n=64, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype("float32")


def autoencoder(backend, with_encoder, tensors=None):
    inp = Input((8,))
    code = layers.Dense(3, activation="relu", name="code")(inp)
    out = layers.Dense(8, name="reconstruction")(code)
    auto = Model(inp, out, device=backend, seed=0)
    encoder = Model(inp, code, device=backend, seed=0) if with_encoder else None
    if tensors is not None:
        tensors.update(inp=inp, code=code)
    return auto, encoder


@pytest.mark.parametrize("opt", [lambda: Adam(0.01), lambda: SGD(0.05, momentum=0.9)])
def test_training_the_autoencoder_trains_its_encoder_exactly_as_alone(backend, opt):
    x = data()
    alone, _ = autoencoder(backend, with_encoder=False)
    alone.compile(opt(), "mse")
    alone.fit(x, x, epochs=3, batch_size=16, shuffle=False, verbose=0)

    auto, encoder = autoencoder(backend, with_encoder=True)
    auto.compile(opt(), "mse")
    before = encoder.predict(x, verbose=0)
    auto.fit(x, x, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(alone.get_weights(), auto.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    kernel, bias = (w.astype("float64") for w in auto.layers[1].get_weights())
    after = encoder.predict(x, verbose=0)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, np.maximum(x @ kernel + bias, 0), rtol=1e-5, atol=1e-6)


def test_optimizer_state_survives_a_sibling_built_mid_training(backend):
    """Adam's moments follow their weights when a new model over the same layers re-homes the weights."""
    x = data()
    alone, _ = autoencoder(backend, with_encoder=False)
    alone.compile(Adam(0.01), "mse")
    alone.fit(x, x, epochs=2, batch_size=16, shuffle=False, verbose=0)

    tensors = {}
    auto, _ = autoencoder(backend, with_encoder=False, tensors=tensors)
    auto.compile(Adam(0.01), "mse")
    auto.fit(x, x, epochs=1, batch_size=16, shuffle=False, verbose=0)
    encoder = Model(tensors["inp"], tensors["code"], device=backend, seed=0)
    auto.fit(x, x, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(alone.get_weights(), auto.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert encoder.predict(x[:4], verbose=0).shape == (4, 3)


def test_two_sequential_models_over_one_trunk_both_train_it(backend):
    trunk = layers.Dense(6, activation="tanh", input_shape=(8,))
    a = gpuprop.Sequential([trunk, layers.Dense(2, activation="softmax")], device=backend, seed=0)
    b = gpuprop.Sequential([trunk, layers.Dense(1)], device=backend, seed=1)
    a.compile(SGD(0.1), "sparse_categorical_crossentropy")
    b.compile(SGD(0.1), "mse")
    x = data()
    y = (x[:, 0] > 0).astype("int64")
    w0 = trunk.get_weights()[0]
    a.fit(x, y, epochs=1, verbose=0)
    w1 = trunk.get_weights()[0]
    b.fit(x, x[:, :1], epochs=1, verbose=0)
    w2 = trunk.get_weights()[0]
    assert not np.allclose(w0, w1) and not np.allclose(w1, w2)
    # both models read the one trunk: a's first layer output is tanh(x W + b) with the latest weights
    kernel, bias = (w.astype("float64") for w in trunk.get_weights())
    out = a.backend.to_host(a.layers[0](a.backend.asarray(x)))
    np.testing.assert_allclose(out, np.tanh(x @ kernel + bias), rtol=1e-5, atol=1e-6)
