"""Sequential: Keras API, learning on synthetic problems, weights, checkpoints, exact resume."""

import json

import numpy
import pytest

import gpuprop
from gpuprop import layers
from gpuprop.errors import CheckpointError
from gpuprop.models import load_model
from gpuprop.utils import to_categorical


def blobs(n=600, d=20, k=3, seed=0):
    """Gaussian clusters: linearly separable, so a small model must reach ~100%."""
    r = numpy.random.default_rng(seed)
    centers = r.standard_normal((k, d)) * 4
    y = r.integers(0, k, n)
    x = centers[y] + r.standard_normal((n, d))
    return x.astype("float32"), y


def mlp(backend, seed=0, d=20, k=3):
    return gpuprop.Sequential([layers.Dense(32, activation="relu", input_shape=(d,)),
                               layers.Dense(k, activation="softmax")], device=backend, seed=seed)


def test_mlp_fit_reaches_near_perfect_accuracy(backend):
    x, y = blobs()
    model = mlp(backend)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0, validation_data=(x[:100], y[:100]))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 5
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.98
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc >= 0.98 and loss < 0.2
    assert history.stats[-1]["samples_per_sec"] > 0


def test_categorical_labels_and_to_categorical(backend):
    x, y = blobs()
    model = mlp(backend)
    model.compile(optimizer=gpuprop.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["acc"])
    model.fit(x, to_categorical(y, 3), batch_size=50, epochs=4, verbose=0)
    assert model.evaluate(x, to_categorical(y), return_dict=True)["accuracy"] >= 0.98


def test_predict_returns_host_probabilities(backend):
    x, y = blobs(n=50)
    model = mlp(backend)
    p = model.predict(x)
    assert isinstance(p, numpy.ndarray) and p.shape == (50, 3)
    numpy.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_partial_last_batch_is_trained_on(backend):
    x, y = blobs(n=70)
    model = mlp(backend)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.optimizer.iterations == 3  # 32 + 32 + 6


def test_train_on_batch_and_mse_regression(backend):
    r = numpy.random.default_rng(0)
    x = r.standard_normal((256, 4)).astype("float32")
    y = x @ r.standard_normal((4, 1)).astype("float32")
    model = gpuprop.Sequential([layers.Dense(1, input_shape=(4,))], device=backend, seed=0)
    model.compile(gpuprop.optimizers.SGD(0.1), "mse")
    first = model.train_on_batch(x, y)
    for _ in range(200):
        last = model.train_on_batch(x, y)
    assert isinstance(first, float) and last < first * 1e-3


def test_binary_crossentropy_with_sigmoid(backend):
    x, y = blobs(k=2)
    model = gpuprop.Sequential([layers.Dense(16, activation="tanh", input_shape=(20,)),
                                layers.Dense(1, activation="sigmoid")], device=backend, seed=1)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y.astype("float32"), batch_size=32, epochs=5, verbose=0)
    assert model.evaluate(x, y.astype("float32"), return_dict=True)["accuracy"] >= 0.98


def test_flatten_accepts_prereshaped_data(backend):
    r = numpy.random.default_rng(0)
    x = r.random((64, 28, 28)).astype("float32")
    model = gpuprop.Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(10, activation="softmax")],
                               device=backend, seed=0)
    numpy.testing.assert_allclose(model.predict(x), model.predict(x.reshape(64, 784)), rtol=1e-6)


def test_same_seed_gives_same_initial_weights_everywhere(backend):
    a = mlp(backend, seed=7)
    b = mlp("cpu", seed=7)
    a.build()
    b.build()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        numpy.testing.assert_array_equal(wa, wb)


def test_get_set_weights_keras_layout(backend):
    model = gpuprop.Sequential([layers.Dense(5, input_shape=(3,)), layers.Dense(2)], device=backend, seed=0)
    model.build()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 5), (5,), (5, 2), (2,)]
    new = [numpy.full(s, i, dtype="float32") for i, s in enumerate(shapes)]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        numpy.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        model.set_weights(new[:2])


def test_summary_lists_layers_and_params(backend):
    model = mlp(backend)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "dense (Dense)" in text and "dense_1 (Dense)" in text
    assert f"Total params: {32 * 20 + 32 + 3 * 32 + 3:,}" in text


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_nonfinite_loss_stops_with_a_clear_message(backend):
    x, y = blobs()
    model = mlp(backend)
    model.compile(gpuprop.optimizers.SGD(1e30), "sparse_categorical_crossentropy")
    with pytest.raises(gpuprop.errors.TrainingError, match=r"epoch 1 at step \d+.*learning rate"):
        model.fit(x * 1e3, y, batch_size=32, epochs=2, verbose=0)


def test_checkpoint_round_trip_keeps_weights_optimizer_and_position(backend, tmp_path):
    x, y = blobs()
    model = mlp(backend)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    loaded = load_model(path, device="cpu")
    assert loaded.epoch == 1 and loaded.optimizer.iterations == model.optimizer.iterations
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables(), loaded.optimizer.variables()):
        numpy.testing.assert_array_equal(model.backend.to_host(a), b)
    numpy.testing.assert_allclose(loaded.predict(x[:10]), model.predict(x[:10]), rtol=1e-5, atol=1e-7)
    # the file is plain arrays plus a JSON header: readable without pickle
    with numpy.load(path, allow_pickle=False) as f:
        assert json.loads(str(f["header"]))["format"] == "gpuprop-checkpoint"


def test_resume_is_exact_on_cpu(tmp_path):
    x, y = blobs()

    def fresh():
        m = gpuprop.Sequential([layers.Dense(16, activation="relu", input_shape=(20,)), layers.Dropout(0.2),
                                layers.Dense(3, activation="softmax")], device="cpu", seed=3)
        m.compile(gpuprop.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
        return m

    straight = fresh()
    straight.fit(x, y, batch_size=32, epochs=2, verbose=0)
    first = fresh()
    first.fit(x, y, batch_size=32, epochs=1, verbose=0)
    first.save(tmp_path / "e1.npz")
    resumed = load_model(tmp_path / "e1.npz", device="cpu")
    history = resumed.fit(x, y, batch_size=32, epochs=2, initial_epoch=1, verbose=0)  # Keras: epochs 1..1
    assert history.epoch == [1]
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_checkpoint_moves_between_backends(backend, tmp_path):
    x, y = blobs(n=100)
    model = mlp(backend)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    for target in gpuprop.available_backends():
        other = load_model(tmp_path / "m.npz", device=target)
        assert other.backend.name == target
        numpy.testing.assert_allclose(other.predict(x[:5]), model.predict(x[:5]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("content", [b"not a zip at all", None])
def test_foreign_or_corrupt_checkpoint_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    if content is None:
        numpy.savez(path, weights=numpy.zeros(3))  # a real .npz, but not ours
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="checkpoint"):
        load_model(path, device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.npz", device="cpu")


def test_keras_style_strings_and_errors():
    model = gpuprop.Sequential(device="cpu")
    model.add(layers.Dense(4, input_shape=(2,)))
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile("adam", "hinge_of_doom")
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile("adagrad9", "mse")
    with pytest.raises(ValueError, match="unknown activation"):
        layers.Dense(3, activation="swishy")
    model.compile("sgd", "mse")
    assert model.optimizer.learning_rate == 0.01


def test_metadata_travels_with_the_checkpoint(tmp_path):
    x, y = blobs(n=64)
    model = mlp("cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz", metadata={"dataset": "fashion-mnist", "batch_size": 32})
    assert load_model(tmp_path / "m.npz", device="cpu").metadata == {"dataset": "fashion-mnist", "batch_size": 32}


def test_position_after_an_epochs_last_step_resumes_at_the_next_epoch():
    x, y = blobs(n=64)
    model = mlp("cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    model.epoch, model.step_in_epoch = 0, 2  # as if stopped after step 2 of 2 of the first epoch
    history = model.fit(x, y, batch_size=32, epochs=2, initial_epoch=1, verbose=0)
    assert history.epoch == [1] and model.epoch == 2 and model.optimizer.iterations == 4


def test_standalone_activation_never_overwrites_the_callers_data(backend):
    x = numpy.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    before = x.copy()
    model = gpuprop.Sequential([layers.Activation("relu", input_shape=(4,)), layers.Dense(2, activation="tanh")],
                               device=backend, seed=0)
    model.compile("sgd", "mse")
    model.train_on_batch(x, numpy.zeros((8, 2), "float32"))
    model.predict(x)
    numpy.testing.assert_array_equal(x, before)
