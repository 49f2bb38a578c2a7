"""Model and weights files by name: .npz, .keras, .h5/.hdf5, .weights.h5, and a clear error for any other.

Interoperability is proven against Keras 3 itself (optional oracle, torch backend): models trained
in gpuprop and saved in each Keras format load in Keras with the same predictions, and Keras'
files load in gpuprop with the same predictions. The file-structure tests need only h5py.
"""

import json
import os
import zipfile

import numpy as np
import pytest

from gpuprop import Sequential, layers, load_model, losses, optimizers
from gpuprop.errors import CheckpointError
from tests.keras_oracle import keras

h5py = pytest.importorskip("h5py", reason="the HDF5 formats need h5py: pip install 'gpuprop[h5]'")

KERAS_FORMATS = ["model.keras", "model.h5", "model.hdf5"]
WEIGHT_FORMATS = ["model.weights.h5", "model.h5", "model.hdf5", "model.keras", "model.npz"]


def _mlp(seed=0, device="cpu"):
    return Sequential([layers.Flatten(input_shape=(6, 6)), layers.Dense(16, activation="relu"), layers.Dropout(0.2),
                       layers.Dense(5, activation="softmax")], device=device, seed=seed)


def _cnn(seed=0, device="cpu"):
    return Sequential([layers.Conv2D(4, 3, activation="relu", padding="same", input_shape=(6, 6, 1)),
                       layers.BatchNormalization(), layers.MaxPooling2D(), layers.Conv2D(6, 2),
                       layers.Activation("relu"), layers.AveragePooling2D(pool_size=1), layers.Flatten(),
                       layers.Dense(8, activation="tanh"), layers.BatchNormalization(),
                       layers.Dense(5, activation="softmax")], device=device, seed=seed)


def _keras_twin(k, kind):
    L = k.layers
    if kind == "mlp":
        body = [k.Input((6, 6)), L.Flatten(), L.Dense(16, activation="relu"), L.Dropout(0.2),
                L.Dense(5, activation="softmax")]
    else:
        body = [k.Input((6, 6, 1)), L.Conv2D(4, 3, activation="relu", padding="same"), L.BatchNormalization(),
                L.MaxPooling2D(), L.Conv2D(6, 2), L.Activation("relu"), L.AveragePooling2D(pool_size=1), L.Flatten(),
                L.Dense(8, activation="tanh"), L.BatchNormalization(), L.Dense(5, activation="softmax")]
    return k.Sequential(body)


def _data(kind, n=48):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 6, 6) if kind == "mlp" else (n, 6, 6, 1)).astype("float32")
    return x, rng.integers(0, 5, n)


def _trained(kind):
    model = (_mlp if kind == "mlp" else _cnn)()
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(kind)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    return model, x


# --- names decide formats ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.ckpt", "model", "model.json", "weights.pt"])
def test_an_unknown_name_is_refused_and_nothing_written(tmp_path, name):
    model, _ = _trained("mlp")
    path = tmp_path / name
    for call in (model.save, model.save_weights, load_model, model.load_weights):
        with pytest.raises(CheckpointError, match=r"\.npz .*\.keras .*\.hdf5 .*\.weights\.h5"):
            call(str(path))
    assert list(tmp_path.iterdir()) == []


def test_each_name_gets_its_format(tmp_path):
    model, _ = _trained("cnn")
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "w.weights.h5")
    model.save_weights(tmp_path / "w.hdf5")
    model.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert set(z.namelist()) == {"config.json", "metadata.json", "model.weights.h5"}
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Sequential"
    assert [e["class_name"] for e in config["config"]["layers"]][:3] == ["InputLayer", "Conv2D", "BatchNormalization"]
    with h5py.File(tmp_path / "m.h5") as f:
        assert "model_config" in f.attrs and "model_weights" in f
    with h5py.File(tmp_path / "w.weights.h5") as f:  # Keras 3's keys: class in snake case, numbered per class
        assert sorted(f["layers"]) == ["activation", "average_pooling2d", "batch_normalization",
                                       "batch_normalization_1", "conv2d", "conv2d_1", "dense", "dense_1", "flatten",
                                       "max_pooling2d"]
        np.testing.assert_array_equal(f["layers/conv2d_1/vars/0"][()], model.layers[3].get_weights()[0])
        assert len(f["layers/batch_normalization/vars"]) == 4
    with h5py.File(tmp_path / "w.hdf5") as f:
        assert [str(n) for n in f.attrs["layer_names"]][:2] == ["conv2d", "batch_normalization"]
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert "header" in f.files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5", "m.keras", "m.npz", "w.hdf5", "w.weights.h5"]
    with pytest.raises(CheckpointError, match="save_weights"):
        model.save(tmp_path / "x.weights.h5")
    with pytest.raises(CheckpointError, match="model.save"):
        model.save_weights(tmp_path / "x.keras")
    with pytest.raises(CheckpointError, match="load_weights"):
        load_model(tmp_path / "w.weights.h5")


@pytest.mark.parametrize("name", KERAS_FORMATS + ["model.npz"])
def test_gpuprop_round_trip_of_whole_models(tmp_path, name):
    model, x = _trained("cnn")
    model.save(tmp_path / name)
    again = load_model(tmp_path / name, device="cpu")
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6, atol=1e-6)
    assert type(again.optimizer) is optimizers.Adam and again.optimizer.learning_rate == pytest.approx(0.01)
    assert isinstance(again.loss, losses.SparseCategoricalCrossentropy)


@pytest.mark.parametrize("name", WEIGHT_FORMATS)
def test_gpuprop_round_trip_of_weights(tmp_path, name):
    model, x = _trained("cnn")
    (model.save if name.endswith(".keras") else model.save_weights)(tmp_path / name)
    other = _cnn(seed=9)
    other.load_weights(tmp_path / name)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_of_another_architecture_are_refused_in_one_line(tmp_path):
    model, _ = _trained("mlp")
    for name in ("w.weights.h5", "w.h5"):
        model.save_weights(tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            _cnn().load_weights(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and "\n" not in str(info.value)


# --- Keras 3 as the oracle ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_keras_loads_what_gpuprop_saves(tmp_path, kind):
    k = keras()
    model, x = _trained(kind)
    want = model.predict(x)
    for name in ("w.weights.h5", "w.h5", "w.hdf5"):
        model.save_weights(tmp_path / name)
        twin = _keras_twin(k, kind)
        twin.load_weights(str(tmp_path / name))
        np.testing.assert_allclose(twin.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6, err_msg=name)
    for name in KERAS_FORMATS:
        model.save(tmp_path / name)
        loaded = k.saving.load_model(str(tmp_path / name))
        np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6, err_msg=name)
        assert type(loaded.optimizer).__name__ == "Adam", name
        assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
        assert [type(a).__name__ for a in loaded.layers] == [type(a).__name__ for a in model.layers]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_gpuprop_loads_what_keras_saves(tmp_path, kind):
    k = keras()
    k.utils.set_random_seed(3)
    twin = _keras_twin(k, kind)
    twin.compile(k.optimizers.RMSprop(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(kind)
    twin.fit(x, y, epochs=2, batch_size=16, verbose=0)  # moves BatchNormalization's moving statistics too
    want = twin.predict(x, verbose=0)
    twin.save_weights(str(tmp_path / "k.weights.h5"))
    twin.save(str(tmp_path / "k.keras"))
    twin.save(str(tmp_path / "k.h5"))
    for name in ("k.weights.h5", "k.keras", "k.h5"):
        ours = (_mlp if kind == "mlp" else _cnn)(seed=7)
        ours.load_weights(tmp_path / name)
        np.testing.assert_allclose(ours.predict(x), want, rtol=1e-5, atol=1e-6, err_msg=name)
    for name in ("k.keras", "k.h5"):
        ours = load_model(tmp_path / name, device="cpu")
        np.testing.assert_allclose(ours.predict(x), want, rtol=1e-5, atol=1e-6, err_msg=name)
        assert type(ours.optimizer) is optimizers.RMSprop and ours.optimizer.learning_rate == pytest.approx(0.003)
        ours.fit(x, y, epochs=1, verbose=0)  # compiled as Keras was: it trains on


def test_a_keras_setting_gpuprop_lacks_is_named(tmp_path):
    k = keras()
    model = k.Sequential([k.Input((3,)), k.layers.Dense(2, kernel_regularizer="l2")])
    model.save(str(tmp_path / "reg.keras"))
    with pytest.raises(CheckpointError, match="kernel_regularizer"):
        load_model(tmp_path / "reg.keras")


def test_cli_refuses_a_checkpoint_name_before_training(tmp_path):
    """`gpuprop train --checkpoint fm.ckpt` used to write an .npz under that name after training; now it stops first."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "gpuprop", "train", "--checkpoint", str(tmp_path / "fm.ckpt"),
                           "--data-dir", str(tmp_path / "nowhere"), "--device", "cpu"],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "--checkpoint" in proc.stderr and ".npz" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_model_checkpoint_writes_what_its_name_asks_for(tmp_path):
    """Keras 2's habit: ModelCheckpoint('model.weights.best.hdf5', save_weights_only=True), then load_weights."""
    from gpuprop.callbacks import ModelCheckpoint

    x, y = _data("mlp")
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    best = tmp_path / "model.weights.best.hdf5"
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y),
              callbacks=[ModelCheckpoint(str(best), save_best_only=True, save_weights_only=True)])
    assert h5py.is_hdf5(best)
    again = _mlp(seed=4)
    again.load_weights(best)
    assert again.get_weights()[0].shape == model.get_weights()[0].shape
    model.fit(x, y, epochs=1, batch_size=16, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}.keras"))])
    (written,) = tmp_path.glob("ck-*.keras")
    assert zipfile.is_zipfile(written)
    for name, weights_only in (("ck.pt", True), ("ck.weights.h5", False), ("ck.keras", True)):
        with pytest.raises(CheckpointError, match="ck"):
            ModelCheckpoint(str(tmp_path / name), save_weights_only=weights_only)


def test_frozen_layers_stay_frozen_across_libraries(tmp_path):
    k = keras()
    model = Sequential([layers.Dense(4, input_shape=(3,), trainable=False), layers.BatchNormalization(trainable=False),
                        layers.Dense(2)], device="cpu", seed=0)
    model.compile("sgd", "mse")
    model.save(tmp_path / "frozen.keras")
    loaded = k.saving.load_model(str(tmp_path / "frozen.keras"))
    assert [layer.trainable for layer in loaded.layers] == [False, False, True]
    loaded.save(str(tmp_path / "frozen_by_keras.keras"))
    back = load_model(tmp_path / "frozen_by_keras.keras", device="cpu")
    assert [layer.trainable for layer in back.layers] == [False, False, True]
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_compile_settings_cross_in_both_directions(tmp_path):
    """Loss objects, function forms, from_logits, metric objects with k, and the optimizer, as Keras writes them."""
    k = keras()
    twin = k.Sequential([k.Input((4,)), k.layers.Dense(3)])
    cases = [(k.losses.SparseCategoricalCrossentropy(from_logits=True), [k.metrics.SparseCategoricalAccuracy(), "mae"]),
             (k.losses.categorical_crossentropy, ["categorical_accuracy", k.metrics.TopKCategoricalAccuracy(k=2)])]
    for loss, mets in cases:
        twin.compile(k.optimizers.Nadam(0.002), loss, metrics=mets)
        twin.save(str(tmp_path / "c.keras"))
        ours = load_model(tmp_path / "c.keras", device="cpu")
        assert type(ours.optimizer) is optimizers.Nadam and ours.optimizer.learning_rate == pytest.approx(0.002)
        if isinstance(loss, k.losses.Loss):
            assert isinstance(ours.loss, losses.SparseCategoricalCrossentropy) and ours.loss.from_logits
        else:
            assert isinstance(ours.loss, losses.CategoricalCrossentropy) and not ours.loss.from_logits
            assert ours.metrics[1].k == 2
    model = Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))], device="cpu", seed=0)
    from gpuprop import metrics

    model.compile(optimizers.Lion(0.0005), losses.Huber(delta=0.5),
                  metrics=[metrics.TopKCategoricalAccuracy(k=3), "mae"])
    for name in ("g.keras", "g.h5"):
        model.save(tmp_path / name)
        loaded = k.saving.load_model(str(tmp_path / name))
        assert type(loaded.optimizer).__name__ == "Lion"
        assert float(loaded.optimizer.learning_rate) == pytest.approx(0.0005)
        assert type(loaded.loss).__name__ == "Huber", name


def _one_step_each(k, ours, theirs, x, y):
    """The same batch through one training step in each library; their weights after it."""
    ours.train_on_batch(x, y)
    theirs.train_on_batch(x, y)
    return ours.get_weights(), [k.ops.convert_to_numpy(w) for w in theirs.weights]


def test_adam_state_crosses_in_a_keras_archive(tmp_path):
    """Adam's m, v and step count travel in .keras, so the next step is the same in either library."""
    k = keras()
    x, y = _data("mlp")
    model = Sequential([layers.Flatten(input_shape=(6, 6)), layers.Dense(16, activation="relu"),
                        layers.Dense(5, activation="softmax")], device="cpu", seed=0)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "adam.keras")
    keras_model = k.saving.load_model(str(tmp_path / "adam.keras"))
    assert int(keras_model.optimizer.iterations) == model.optimizer.iterations == 6
    ours_w, theirs_w = _one_step_each(k, model, keras_model, x[:16], y[:16])
    for a, b in zip(ours_w, theirs_w):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and back: Keras' state into gpuprop
    keras_model.save(str(tmp_path / "adam_by_keras.keras"))
    again = load_model(tmp_path / "adam_by_keras.keras", device="cpu")
    assert again.optimizer.iterations == 7
    ours_w, theirs_w = _one_step_each(k, again, keras_model, x[16:32], y[16:32])
    for a, b in zip(ours_w, theirs_w):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["junk.h5", "junk.weights.h5", "junk.keras", "missing.hdf5"])
def test_unreadable_files_are_one_line_errors(tmp_path, name):
    path = tmp_path / name
    if not name.startswith("missing"):
        path.write_bytes(np.random.default_rng(0).bytes(2048))
    for call in (lambda: _mlp().load_weights(path), lambda: load_model(path)):
        with pytest.raises(CheckpointError) as info:
            call()
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_gelu_models_cross_both_ways_with_keras_predictions(tmp_path):
    """'gelu' is Keras' exact x·Φ(x) in both libraries: a trained gelu model saved by gpuprop predicts in Keras 3 as
    in gpuprop, and one saved by Keras predicts in gpuprop as in Keras (rtol 1e-5), without a warning either way."""
    import warnings

    k = keras()
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((32, 4)) * 3).astype("float32")  # wide inputs reach gelu's tails and its bend
    ours = Sequential([layers.Dense(8, activation="gelu", input_shape=(4,)), layers.Activation("gelu"),
                       layers.Dense(3)], device="cpu", seed=0)
    ours.compile(optimizers.Adam(0.01), "mse")
    ours.fit(x, rng.standard_normal((32, 3)).astype("float32"), epochs=2, batch_size=8, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.save(tmp_path / "ours.keras")
    theirs = k.models.load_model(str(tmp_path / "ours.keras"))
    assert [getattr(lay, "activation").__name__ for lay in theirs.layers[:2]] == ["gelu", "gelu"]
    np.testing.assert_allclose(k.ops.convert_to_numpy(theirs(x)), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)

    keras_model = k.Sequential([k.Input((4,)), k.layers.Dense(8, activation="gelu"), k.layers.Activation("gelu"),
                                k.layers.Dense(3)])
    for w in keras_model.weights:  # weights away from Keras' small initial ones, so gelu's curve matters
        w.assign(rng.standard_normal(tuple(w.shape)).astype("float32"))
    keras_model.save(str(tmp_path / "theirs.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_model(tmp_path / "theirs.keras", device="cpu")
    np.testing.assert_allclose(again.predict(x, verbose=0), k.ops.convert_to_numpy(keras_model(x)), rtol=1e-5,
                               atol=1e-6)


def test_a_keras_activation_gpuprop_lacks_is_named(tmp_path):
    k = keras()
    model = k.Sequential([k.Input((3,)), k.layers.Dense(2, activation="elu")])
    model.save(str(tmp_path / "elu.keras"))
    with pytest.raises(CheckpointError, match="unknown activation 'elu'"):
        load_model(tmp_path / "elu.keras")
