"""The model zoo: architectures, parameter counts, seeding, and checkpoint round trips."""

import numpy
import pytest

from gpuprop import layers, load_model, zoo
from gpuprop.errors import GpupropError


def dense_params(n_in, n_out):
    return n_in * n_out + n_out


def layer_summary(model):
    return [(type(layer).__name__, layer.output_shape, getattr(getattr(layer, "activation", None), "kind", None))
            for layer in model.layers]


def test_softmax_is_logistic_regression(backend):
    model = zoo.softmax(device=backend, seed=0)
    model.build()
    assert layer_summary(model) == [("Flatten", (784,), None), ("Dense", (10,), "softmax")]
    assert model.count_params() == dense_params(784, 10) == 7850


def test_mlp_widths_from_a_string(backend):
    model = zoo.build("mlp", hidden="32, 16", device=backend, seed=0)
    model.build()
    assert layer_summary(model) == [("Flatten", (784,), None), ("Dense", (32,), "relu"), ("Dense", (16,), "relu"),
                                    ("Dense", (10,), "softmax")]
    assert model.count_params() == dense_params(784, 32) + dense_params(32, 16) + dense_params(16, 10)


def test_mlp_default_is_two_layers_of_512(backend):
    model = zoo.build("MLP", device=backend, seed=0)
    model.build()
    assert [layer.output_shape for layer in model.layers] == [(784,), (512,), (512,), (10,)]


@pytest.mark.parametrize("bad", ["0", "32,-1", "a,b", [4, 0]])
def test_bad_hidden_widths(bad):
    with pytest.raises(ValueError):
        zoo.parse_hidden(bad)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="softmax, mlp, cnn, resnet"):
        zoo.build("vgg")


def test_cnn_is_keras_mnist_convnet(backend):
    model = zoo.cnn(device=backend, seed=0)
    model.build()
    assert [type(layer).__name__ for layer in model.layers] == [
        "Reshape", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert [layer.output_shape for layer in model.layers] == [
        (28, 28, 1), (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (1600,), (128,), (10,)]
    conv1, conv2 = 3 * 3 * 1 * 32 + 32, 3 * 3 * 32 * 64 + 64
    assert model.count_params() == conv1 + conv2 + dense_params(1600, 128) + dense_params(128, 10) == 225_034


def test_cnn_without_conv_layers_says_so(monkeypatch):
    monkeypatch.delattr(layers, "Conv2D", raising=False)
    with pytest.raises(GpupropError, match="Conv2D"):
        zoo.cnn(device="cpu")


@pytest.mark.parametrize("name", ["softmax", "mlp", "cnn"])
def test_outputs_are_probabilities(backend, rng, name):
    model = zoo.build(name, hidden="16", device=backend, seed=0)
    probs = model.predict(rng.random((5, 28, 28)))
    assert probs.shape == (5, 10)
    assert numpy.all(probs >= 0) and numpy.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_seed_fixes_the_initial_weights():
    a, b, c = (zoo.build("mlp", hidden="8", device="cpu", seed=s) for s in (1, 1, 2))
    for m in (a, b, c):
        m.build()
    assert all(numpy.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    assert not numpy.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_checkpoint_round_trip(tmp_path, rng):
    model = zoo.build("mlp", hidden="8", device="cpu", seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.build()
    model.save(tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz", device="cpu")
    x = rng.random((4, 28, 28))
    assert again.name == "mlp" and zoo.describe(again) == zoo.describe(model)
    assert numpy.array_equal(model.predict(x), again.predict(x))


def test_describe_names_every_layer():
    model = zoo.build("mlp", hidden="32", device="cpu", seed=0)
    model.build()
    assert zoo.describe(model) == "Flatten → Dense(32, relu) → Dense(10, softmax)"
