"""Functional (graph) models in Keras 3's files, both ways, with Keras 3 itself as the oracle.

The same two-input, two-output graph (Dense branches joined by Add and Concatenate,
BatchNormalization, Dropout, a Dense layer called twice) is built in each library;
a model trained in one and saved as .weights.h5 or .keras predicts the same in the
other (float32 tolerance). What cannot be mapped is refused in one line, naming it.
"""

import json
import zipfile

import numpy as np
import pytest

from gpuprop import Input, Model, layers, load_model, losses, optimizers
from gpuprop.errors import CheckpointError
from tests.keras_oracle import keras

h5py = pytest.importorskip("h5py", reason="the Keras files need h5py: pip install 'gpuprop[h5]'")


def _graph(L, inp, model_cls, rate=0.25, **kw):
    """The test graph, written once for both libraries: ``L`` is the layers module, ``inp`` makes inputs."""
    a, b = inp((4,), "a"), inp((3,), "b")
    shared = L.Dense(8, activation="tanh", name="shared")
    h = L.BatchNormalization()(L.Dense(8, activation="relu")(a))
    s = L.Add()([shared(h), L.Dense(8)(b)])
    c = L.Concatenate()([L.Dropout(rate)(shared(s)), b])
    return model_cls([a, b], [L.Dense(1, name="score")(c), L.Dense(5, activation="softmax", name="kind")(c)], **kw)


def _ours(seed=0, rate=0.25):
    return _graph(layers, lambda shape, name: Input(shape=shape, name=name), Model, rate, device="cpu", seed=seed)


def _theirs(k, rate=0.25):
    return _graph(k.layers, lambda shape, name: k.Input(shape, name=name), k.Model, rate)


def _data(n=48):
    rng = np.random.default_rng(2)
    x = [rng.standard_normal((n, 4)).astype("float32"), rng.standard_normal((n, 3)).astype("float32")]
    return x, [rng.standard_normal((n, 1)).astype("float32"), rng.integers(0, 5, n)]


def _close(got, want, what):
    assert len(got) == len(want) == 2, what
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5, err_msg=what)


def test_keras_loads_the_graph_models_gpuprop_saves(tmp_path):
    k = keras()
    model = _ours()
    model.compile(optimizers.Adam(0.01), ["mse", "sparse_categorical_crossentropy"], loss_weights=[0.5, 1.0],
                  metrics=[[], ["accuracy"]])
    x, y = _data()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)  # moves BatchNormalization's statistics too
    want = model.predict(x)
    for name in ("g.weights.h5", "g.h5"):
        model.save_weights(tmp_path / name)
        twin = _theirs(k)
        twin.load_weights(str(tmp_path / name))
        _close(twin.predict(x, verbose=0), want, name)
    model.save(tmp_path / "g.keras")
    loaded = k.saving.load_model(str(tmp_path / "g.keras"))
    _close(loaded.predict(x, verbose=0), want, ".keras")
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert type(loaded.optimizer).__name__ == "Adam" and float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)  # Keras rebuilt the per-output losses: it trains on


def test_gpuprop_loads_the_graph_models_keras_saves(tmp_path):
    k = keras()
    k.utils.set_random_seed(4)
    twin = _theirs(k)
    twin.compile(k.optimizers.RMSprop(0.003), ["mse", "sparse_categorical_crossentropy"], loss_weights=[2.0, 1.0],
                 metrics=[["mae"], ["accuracy"]])
    x, y = _data()
    twin.fit(x, y, epochs=2, batch_size=16, verbose=0)
    want = twin.predict(x, verbose=0)
    twin.save_weights(str(tmp_path / "k.weights.h5"))
    twin.save(str(tmp_path / "k.keras"))
    twin.save(str(tmp_path / "k.h5"))
    for name in ("k.weights.h5", "k.keras", "k.h5"):
        ours = _ours(seed=7)
        ours.load_weights(tmp_path / name)
        _close(ours.predict(x), want, name)
    for name in ("k.keras", "k.h5"):
        ours = load_model(tmp_path / name, device="cpu")
        _close(ours.predict(x), want, name)
        assert ours.input_names == ["a", "b"] and ours.output_names == ["score", "kind"]
        assert type(ours.optimizer) is optimizers.RMSprop and ours.optimizer.learning_rate == pytest.approx(0.003)
        assert isinstance(ours.output_losses[1], losses.SparseCategoricalCrossentropy)
        assert ours.loss_weights == [2.0, 1.0]
        logs = ours.fit(x, y, epochs=1, batch_size=16, verbose=0).history
        assert {"score_mae", "kind_accuracy"} <= set(logs), name  # compiled as Keras was: it trains on


def test_a_single_input_graph_crosses_both_ways(tmp_path):
    """One input and one output, not in lists: Keras writes those refs bare, and reads ours."""
    k = keras()
    inp = Input(shape=(5,))
    out = layers.Dense(3, activation="softmax")(layers.Add()([layers.Dense(5)(inp), inp]))
    model = Model(inp, out, device="cpu", seed=1)
    x = np.random.default_rng(0).standard_normal((10, 5)).astype("float32")
    model.save(tmp_path / "one.keras")
    loaded = k.saving.load_model(str(tmp_path / "one.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)
    loaded.save(str(tmp_path / "one_by_keras.keras"))
    back = load_model(tmp_path / "one_by_keras.keras", device="cpu")
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_the_archive_says_functional(tmp_path):
    model = _ours()
    model.save(tmp_path / "g.keras")
    with zipfile.ZipFile(tmp_path / "g.keras") as z:
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Functional"
    entries = {e["name"]: e for e in config["config"]["layers"]}
    assert len(entries["shared"]["inbound_nodes"]) == 2  # one entry per call of the shared layer
    assert config["config"]["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    again = load_model(tmp_path / "g.keras", device="cpu")
    x, _ = _data()
    _close(again.predict(x), model.predict(x), "gpuprop's own .keras")


def test_what_cannot_be_mapped_is_named_in_one_line(tmp_path):
    k = keras()
    L = k.layers
    a = k.Input((4,), name="a")
    bad = k.Model(a, L.Dense(2)(L.LayerNormalization()(a)))
    bad.save(str(tmp_path / "ln.keras"))
    sub = k.Sequential([k.Input((4,)), L.Dense(3)], name="inner")
    nested = k.Model(a, L.Dense(2)(sub(a)))
    nested.save(str(tmp_path / "nested.keras"))
    for name, says in (("ln.keras", "LayerNormalization"), ("nested.keras", "inner")):
        with pytest.raises(CheckpointError, match=says) as info:
            load_model(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match=r"\.keras") as info:
        _ours().save(tmp_path / "g.h5")
    assert "\n" not in str(info.value) and not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".tmp*"))


def test_adam_state_crosses_in_a_graph_archive(tmp_path):
    """Adam's m, v and step count travel in .keras for a graph model: the next step agrees in both libraries."""
    k = keras()
    x, y = _data()
    model = _ours(rate=0.0)  # no dropout: the step is deterministic
    model.compile(optimizers.Adam(0.01), ["mse", "sparse_categorical_crossentropy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "adam.keras")
    theirs = k.saving.load_model(str(tmp_path / "adam.keras"))
    assert int(theirs.optimizer.iterations) == model.optimizer.iterations == 6
    for _ in range(2):  # one step from our state, then (after a round trip through Keras' file) one from theirs
        model.train_on_batch([a[:16] for a in x], [t[:16] for t in y])
        theirs.train_on_batch([a[:16] for a in x], [t[:16] for t in y])
        for a, b in zip(model.get_weights(), [k.ops.convert_to_numpy(w) for w in theirs.weights]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        theirs.save(str(tmp_path / "adam_by_keras.keras"))
        model = load_model(tmp_path / "adam_by_keras.keras", device="cpu")
        assert model.optimizer.iterations == int(theirs.optimizer.iterations)


def test_dict_inputs_and_outputs_cross_by_name(tmp_path):
    k = keras()
    a, b = Input(shape=(3,), name="a"), Input(shape=(2,), name="b")
    model = Model({"a": a, "b": b}, {"o": layers.Dense(2, name="o")(layers.Concatenate()([a, b]))}, device="cpu",
                  seed=3)
    rng = np.random.default_rng(1)
    x = {"a": rng.standard_normal((6, 3)).astype("float32"), "b": rng.standard_normal((6, 2)).astype("float32")}
    model.save(tmp_path / "d.keras")
    theirs = k.saving.load_model(str(tmp_path / "d.keras"))
    np.testing.assert_allclose(theirs.predict(x, verbose=0)["o"], model.predict(x)["o"], rtol=1e-5, atol=1e-6)
    theirs.save(str(tmp_path / "d_by_keras.keras"))
    back = load_model(tmp_path / "d_by_keras.keras", device="cpu")
    np.testing.assert_allclose(back.predict(x)["o"], model.predict(x)["o"], rtol=1e-5, atol=1e-6)


def test_a_nested_model_is_refused_not_flattened(tmp_path):
    from gpuprop import Sequential

    inner = Sequential([layers.Dense(2, input_shape=(3,))], name="inner")
    i = Input(shape=(3,))
    model = Model(i, layers.Dense(1)(inner(i)), device="cpu")
    with pytest.raises(CheckpointError, match="'inner' is a nested model") as info:
        model.save(tmp_path / "n.keras")
    assert "\n" not in str(info.value) and list(tmp_path.iterdir()) == []
