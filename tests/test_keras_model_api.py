"""What Keras programs ask a model and its layers (get_layer, weights, shapes, symbolic input/output, feature
extraction from a Sequential), against Keras 3 itself and float64 NumPy."""

import numpy as np
import pytest

import gpuprop
from gpuprop import Input, Model, layers
from gpuprop.optimizers import SGD

from .keras_oracle import keras as keras_oracle


def mlp(backend, lib=gpuprop):
    L = lib.layers
    return lib.Sequential([lib.Input((6,)), L.Dense(5, activation="relu", name="hidden"), L.BatchNormalization(),
                           L.Dense(3, activation="softmax", name="probs")],
                          **({"device": backend, "seed": 0} if lib is gpuprop else {}))


def two_heads(backend, lib=gpuprop):
    L = lib.layers
    a, b = lib.Input((4,), name="a"), lib.Input((3,), name="b")
    h = L.Concatenate()([L.Dense(8, activation="relu", name="ha")(a), b])
    outs = [L.Dense(1, name="score")(h), L.Dense(2, activation="softmax", name="kind")(h)]
    return lib.Model([a, b], outs, **({"device": backend, "seed": 0} if lib is gpuprop else {}))


def shapes(arrays):
    return [tuple(a.shape) for a in arrays]


@pytest.mark.parametrize("build", [mlp, two_heads])
def test_shapes_layers_and_weights_are_keras(backend, build):
    keras = keras_oracle()
    ours, theirs = build(backend), build(None, keras)
    assert ours.input_shape == theirs.input_shape
    assert ours.output_shape == theirs.output_shape
    assert ours.layers[-1].name == theirs.layers[-1].name  # named in both (Keras numbers unnamed ones globally)
    assert shapes(ours.weights) == shapes(theirs.weights)
    assert shapes(ours.trainable_weights) == shapes(theirs.trainable_weights)
    assert shapes(ours.non_trainable_weights) == shapes(theirs.non_trainable_weights)
    last = theirs.layers[-1].name
    assert ours.get_layer(last).name == last and ours.get_layer(index=-1).name == last
    assert tuple(ours.get_layer(last).output.shape) == tuple(theirs.get_layer(last).output.shape)
    assert tuple(np.shape(ours.get_layer(last).kernel)) == tuple(theirs.get_layer(last).kernel.shape)
    # freezing a layer moves its weights to non_trainable_weights in both libraries
    ours.layers[-1].trainable = theirs.layers[-1].trainable = False
    assert shapes(ours.trainable_weights) == shapes(theirs.trainable_weights)
    assert shapes(ours.non_trainable_weights) == shapes(theirs.non_trainable_weights)


def test_feature_extraction_from_a_sequential_as_in_keras_guide(backend):
    """``Model(inputs=m.inputs, outputs=[l.output for l in m.layers])``: every layer's output, equal to Keras'."""
    keras = keras_oracle()
    ours, theirs = mlp(backend), mlp(None, keras)
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).standard_normal((7, 6)).astype("float32")
    got = Model(inputs=ours.inputs, outputs=[l.output for l in ours.layers], device=backend).predict(x, verbose=0)
    want = keras.Model(inputs=theirs.inputs, outputs=[l.output for l in theirs.layers]).predict(x, verbose=0)
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_extractor_shares_the_layers_the_sequential_trains(backend, float64):
    model = gpuprop.Sequential([layers.Dense(4, activation="tanh", input_shape=(3,), name="h"), layers.Dense(1)],
                               device=backend, seed=2)
    extractor = Model(model.inputs, model.get_layer("h").output, device=backend)
    model.compile(SGD(0.1), "mse")
    r = np.random.default_rng(1)
    x, y = r.standard_normal((32, 3)), r.standard_normal((32, 1))
    model.fit(x, y, epochs=2, verbose=0)
    kernel, bias = model.get_layer("h").get_weights()
    np.testing.assert_allclose(extractor.predict(x, verbose=0), np.tanh(x @ kernel + bias), rtol=1e-12)


def test_weights_are_live_arrays_as_keras_variables(backend, float64):
    model = gpuprop.Sequential([layers.Dense(2, input_shape=(3,))], device=backend, seed=0)
    x = np.ones((1, 3))
    model.weights[0][...] = 0.0  # Keras: model.weights[0].assign(zeros)
    model.get_layer(index=0).bias[...] = model.backend.asarray(np.array([1.5, -2.0]))
    np.testing.assert_array_equal(model.predict(x, verbose=0), [[1.5, -2.0]])


def test_metrics_names_name_evaluates_list():
    model = two_heads("cpu")
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], metrics=[[], ["accuracy"]])
    r = np.random.default_rng(0)
    xs, ys = [r.standard_normal((8, 4)), r.standard_normal((8, 3))], [r.standard_normal((8, 1)), r.integers(0, 2, 8)]
    assert dict(zip(model.metrics_names, model.evaluate(xs, ys, verbose=0))) == \
        model.evaluate(xs, ys, verbose=0, return_dict=True)
    assert model.metrics_names[0] == "loss" and "kind_accuracy" in model.metrics_names


def test_add_after_build_records_a_new_chain():
    model = gpuprop.Sequential([layers.Dense(4, input_shape=(3,))], device="cpu", seed=0)
    first = model.layers[0]
    model.add(layers.Dense(2, name="head"))
    assert model.output_shape == (None, 2) and tuple(model.output.shape) == (None, 2)
    assert len(first._inbound_nodes) == 1  # the chain of the 1-layer model was replaced, not kept beside


def test_bad_lookups_say_what_exists():
    model = mlp("cpu")
    with pytest.raises(ValueError, match="no layer named 'nope': the layers are 'hidden'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="the model has 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="not both"):
        model.get_layer("hidden", 0)
    with pytest.raises(AttributeError, match="has never been called"):
        _ = layers.Dense(3).output
    with pytest.raises(AttributeError, match="is not built yet"):
        _ = gpuprop.Sequential([layers.Dense(3)], device="cpu").output_shape
