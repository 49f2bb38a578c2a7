"""The functional API end to end: building, Keras' names and numbers, training, saving, nesting.

Oracles: Keras 3 itself (same graph, same weights: outputs, log names, summary
columns), NumPy math written here, and a reload from disk (predictions equal).
"""

import os

import numpy as np
import pytest

import gpuprop
from gpuprop import Input, Model, Sequential, layers as L


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def guide_model(backend, seed=0):
    """keras.io's functional API guide shape: two inputs, concatenated branches, two outputs."""
    title = Input(shape=(12,), name="title")
    body = Input(shape=(20,), name="body")
    t = L.Dense(16, activation="relu")(title)
    b = L.Dense(8, activation="tanh")(body)
    x = L.Concatenate()([t, b])
    priority = L.Dense(1, name="priority")(x)
    department = L.Dense(4, activation="softmax", name="department")(x)
    return Model(inputs=[title, body], outputs=[priority, department], device=backend, seed=seed)


def guide_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.random((n, 12)).astype("float32"), rng.random((n, 20)).astype("float32")]
    ys = [rng.random((n, 1)).astype("float32"), rng.integers(0, 4, n)]
    return xs, ys


def test_guide_model_trains_saves_loads_and_predicts_identically(backend, tmp_path):
    model = guide_model(backend)
    model.compile("adam", loss=["mse", "sparse_categorical_crossentropy"], loss_weights=[1.0, 0.2],
                  metrics=[[], ["accuracy"]])
    xs, ys = guide_data()
    before = model.evaluate(xs, ys, return_dict=True)
    history = model.fit(xs, ys, batch_size=16, epochs=3, verbose=0)
    assert sorted(history.history) == ["department_accuracy", "department_loss", "loss", "priority_loss"]
    assert history.history["loss"][-1] < before["loss"]
    logs = model.evaluate(xs, ys, return_dict=True)  # total = Σ w_k L_k
    assert logs["loss"] == pytest.approx(logs["priority_loss"] + 0.2 * logs["department_loss"], rel=1e-5)
    path = tmp_path / "guide.npz"
    model.save(path)
    loaded = gpuprop.load_model(path, device=backend)
    for a, b in zip(model.predict(xs), loaded.predict(xs)):
        np.testing.assert_array_equal(a, b)
    assert loaded.output_names == ["priority", "department"]
    # the optimizer state came back too: one more step is the same step
    assert loaded.train_on_batch(xs, ys) == model.train_on_batch(xs, ys)


def test_guide_model_matches_keras_outputs_and_log_names(backend):
    keras = _keras()
    keras.backend.clear_session()  # Keras names layers from a global count: start it at 0 as gpuprop does
    model = guide_model(backend)
    title, body = keras.Input((12,), name="title"), keras.Input((20,), name="body")
    x = keras.layers.Concatenate()([keras.layers.Dense(16, activation="relu")(title),
                                    keras.layers.Dense(8, activation="tanh")(body)])
    k = keras.Model([title, body], [keras.layers.Dense(1, name="priority")(x),
                                    keras.layers.Dense(4, activation="softmax", name="department")(x)])
    k.set_weights(model.get_weights())  # same weight order as Keras
    xs, ys = guide_data(16)
    for ours, theirs in zip(model.predict(xs), k.predict(xs, verbose=0)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    k.compile("sgd", ["mse", "sparse_categorical_crossentropy"], metrics=[[], ["accuracy"]])
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], metrics=[[], ["accuracy"]])
    theirs = k.fit(xs, ys, epochs=1, batch_size=16, verbose=0, validation_data=(xs, ys)).history
    ours = model.fit(xs, ys, epochs=1, batch_size=16, verbose=0, validation_data=(xs, ys)).history
    assert set(ours) == set(theirs)
    # one full-batch SGD step from the same weights gives the same losses
    for key in ("loss", "priority_loss", "department_loss"):
        assert ours[key][0] == pytest.approx(theirs[key][0], rel=1e-4)
    assert [m.name for m in model.layers] == [m.name for m in k.layers]


def test_dict_inputs_and_outputs_by_name(backend):
    model = guide_model(backend)
    model.compile("sgd", loss={"department": "sparse_categorical_crossentropy"}, metrics={"department": ["acc"]})
    xs, ys = guide_data(32)
    logs = model.evaluate({"title": xs[0], "body": xs[1]}, {"department": ys[1]}, return_dict=True)
    assert sorted(logs) == ["department_accuracy", "department_loss", "loss"]
    assert logs["loss"] == pytest.approx(logs["department_loss"])
    p = model.predict({"body": xs[1], "title": xs[0]})
    np.testing.assert_array_equal(p[1], model.predict(xs)[1])


def test_dict_outputs_predict_as_dict(backend):
    a = Input((3,), name="a")
    h = L.Dense(4)(a)
    model = Model({"a": a}, {"x": L.Dense(2, name="x")(h), "y": L.Dense(1, name="y")(h)}, device=backend, seed=0)
    out = model.predict({"a": np.ones((2, 3))})
    assert set(out) == {"x", "y"} and out["x"].shape == (2, 2) and out["y"].shape == (2, 1)


def test_input_as_first_entry_of_sequential(backend):
    model = Sequential([Input(shape=(28, 28, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(), L.Dense(3)],
                       device=backend, seed=0)
    assert model.predict(np.zeros((2, 28, 28, 1))).shape == (2, 3)
    assert model.layers[0].input_shape == (28, 28, 1)


def test_model_inside_sequential_as_the_tensorflow_beginner_tutorial(backend, tmp_path):
    base = Sequential([L.Flatten(input_shape=(4, 4)), L.Dense(8, activation="relu"), L.Dense(3)], device=backend,
                      seed=0)
    x = np.random.default_rng(0).random((5, 4, 4))
    logits = base.predict(x)
    probability_model = Sequential([base, L.Softmax()], device=backend)
    p = probability_model.predict(x)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    # training the outer model trains the inner model's weights
    probability_model.compile("sgd", "sparse_categorical_crossentropy")
    w0 = base.get_weights()[0].copy()
    probability_model.train_on_batch(x, np.array([0, 1, 2, 0, 1]))
    assert not np.array_equal(base.get_weights()[0], w0)
    probability_model.save(tmp_path / "p.npz")
    again = gpuprop.load_model(tmp_path / "p.npz", device=backend)
    np.testing.assert_array_equal(again.predict(x), probability_model.predict(x))


def test_sequential_and_model_nested_in_a_graph_share_weights(backend, tmp_path):
    """A Sequential called twice and a Model called inside another: one set of weights each, saved once."""
    block = Sequential([L.Dense(4, activation="tanh", input_shape=(4,))], name="block", device=backend, seed=1)
    i = Input((4,))
    inner = Model(i, L.Dense(4, name="inner_dense")(i), name="inner", device=backend, seed=2)
    x = Input((4,), name="x")
    y = L.Add()([block(x), block(inner(x))])
    model = Model(x, L.Dense(1, name="out")(y), device=backend, seed=3)
    assert model.count_params() == 20 + 20 + 5
    assert len(model.get_weights()) == 6
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    w_block = [w for w in block.get_weights()]
    h = lambda v: np.tanh(v @ w_block[0] + w_block[1])  # noqa: E731
    wi, bi = inner.get_weights()
    wo, bo = model.layers[-1].get_weights()
    want = (h(data) + h(data @ wi + bi)) @ wo + bo
    np.testing.assert_allclose(model.predict(data), want, rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    model.save(tmp_path / "n.npz")
    again = gpuprop.load_model(tmp_path / "n.npz", device=backend)
    np.testing.assert_array_equal(again.predict(data), model.predict(data))
    assert [type(layer).__name__ for layer in again.layers] == ["InputLayer", "Model", "Sequential", "Add", "Dense"]


def test_config_round_trip_and_summary(backend):
    model = guide_model(backend)
    cfg = model.get_config()
    import json

    again = Model.from_config(json.loads(json.dumps(cfg)), device=backend)
    assert again.get_config() == cfg
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "concatenate (Concatenate)" in text
    assert "title[0][0]" in text and "dense[0][0]," in text
    assert f"Total params: {model.count_params():,}" in text


def test_summary_lists_the_same_layers_params_and_sources_as_keras(backend):
    keras = _keras()
    keras.backend.clear_session()
    model = guide_model(backend)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    title, body = keras.Input((12,), name="title"), keras.Input((20,), name="body")
    x = keras.layers.Concatenate()([keras.layers.Dense(16)(title), keras.layers.Dense(8)(body)])
    k = keras.Model([title, body], [keras.layers.Dense(1, name="priority")(x),
                                    keras.layers.Dense(4, name="department")(x)])
    for layer in k.layers:
        assert f"{layer.name} ({type(layer).__name__})" in text
        assert f"{layer.count_params():,}" in text


def test_bad_graphs_say_what_to_do(backend):
    a, b = Input((3,)), Input((3,))
    with pytest.raises(ValueError, match="graph disconnected"):
        Model(a, L.Add()([a, b]), device=backend)
    with pytest.raises(ValueError, match="one shape"):
        L.Add()([a, Input((4,))])
    with pytest.raises(ValueError, match="exactly 2"):
        L.Subtract()([a, b, a])
    with pytest.raises(ValueError, match="used twice"):
        Model(a, L.Dense(1, name="d")(L.Dense(3, name="d")(a)), device=backend)
    with pytest.raises(TypeError, match="needs both"):
        Model(inputs=a)
    with pytest.raises(ValueError, match="Input can only be the first"):
        Sequential([L.Dense(2, input_shape=(3,)), Input((3,))])
    m = Model([a, b], L.Add()([a, b]), device=backend)
    with pytest.raises(ValueError, match="2 input"):
        m.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="but was called on"):
        m(Input((3,)))
    model = guide_model(backend)
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"])
    xs, ys = guide_data(8)
    with pytest.raises(gpuprop.errors.DataError, match="label 4 is out of range for a model with 4 classes"):
        model.fit(xs, [ys[0], np.full(8, 4)], verbose=0)


def test_fit_validation_split_and_history_match_evaluate(backend):
    model = guide_model(backend)
    model.compile("adam", ["mse", "sparse_categorical_crossentropy"], metrics=[[], ["accuracy"]])
    xs, ys = guide_data(40)
    h = model.fit(xs, ys, epochs=1, batch_size=8, validation_split=0.25, verbose=0, shuffle=False)
    val = model.evaluate([x[30:] for x in xs], [y[30:] for y in ys], return_dict=True)
    for k, v in val.items():
        assert h.history["val_" + k][0] == pytest.approx(v, rel=1e-5)


def test_frozen_nested_base_model_is_not_trained(backend):
    """Transfer learning as keras.io shows it: base_model.trainable = False, then compile; only the head moves."""
    inp = Input((4,))
    base = Model(inp, L.Dense(6, activation="relu")(inp), name="base", device=backend, seed=0)
    base.trainable = False
    x = Input((4,))
    model = Model(x, L.Dense(3, activation="softmax", name="head")(base(x)), device=backend, seed=1)
    model.compile("sgd", "sparse_categorical_crossentropy")
    w_base, w_head = base.get_weights(), model.layers[-1].get_weights()
    data = np.random.default_rng(0).random((8, 4))
    model.fit(data, np.arange(8) % 3, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(base.get_weights(), w_base):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[-1].get_weights()[0], w_head[0])
    assert model.count_trainable_params() == 6 * 3 + 3
