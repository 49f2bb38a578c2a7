"""Keras' fit/evaluate/predict contract (issue 16), each checked against Keras' documented behaviour,
a hand computation, float64 NumPy or PyTorch."""

import re
import signal

import numpy
import pytest

import gpuprop
from gpuprop import callbacks, layers
from gpuprop.models import load_model
from gpuprop.optimizers import SGD, Adam, RMSprop


def blobs(n=256, d=8, k=2, seed=0):
    r = numpy.random.default_rng(seed)
    centers = r.standard_normal((k, d)) * 2
    y = r.integers(0, k, n)
    return (centers[y] + r.standard_normal((n, d))).astype("float32"), y


def small(backend, seed=0, dropout=0.0, bn=False):
    stack = [layers.Dense(16, activation="relu", input_shape=(8,))]
    stack += [layers.BatchNormalization()] if bn else []
    stack += [layers.Dropout(dropout)] if dropout else []
    stack += [layers.Dense(2, activation="softmax")]
    return gpuprop.Sequential(stack, device=backend, seed=seed)


# --- epochs per call -------------------------------------------------------------------------------
def test_second_fit_trains_its_epochs_again(backend):
    """Keras trains epochs - initial_epoch epochs on every call (initial_epoch defaults to 0)."""
    x, y = blobs()
    model = small(backend)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    before = model.get_weights()
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    assert model.optimizer.iterations == 2 * 2 * 8
    assert any(numpy.abs(a - b).max() > 0 for a, b in zip(before, model.get_weights()))


def test_fit_after_load_model_trains_the_asked_epochs(tmp_path):
    x, y = blobs()
    model = small("cpu")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    model.save(tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz", device="cpu")
    history = again.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert history.epoch == [0] and again.optimizer.iterations == 4 * 8


def test_initial_epoch_numbers_the_epochs(capsys):
    x, y = blobs()
    model = small("cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=3, initial_epoch=1, verbose=2)
    assert history.epoch == [1, 2]
    out = capsys.readouterr().out
    assert re.findall(r"^Epoch (\d+)/(\d+)$", out, re.M) == [("2", "3"), ("3", "3")]


# --- printed lines ----------------------------------------------------------------------------------
KERAS_EVAL = re.compile(r"^8/8 - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}$")


def test_evaluate_and_predict_print_keras_lines(capsys):
    """Keras 3: ``8/8 - 0s - 8ms/step - accuracy: 0.5352 - loss: 0.7174`` and ``8/8 - 0s - 8ms/step``."""
    x, y = blobs()
    model = small("cpu")
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    capsys.readouterr()
    model.evaluate(x, y, verbose=2)
    model.predict(x, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert KERAS_EVAL.match(lines[0]), lines
    assert re.match(r"^8/8 - \d+s - \d+(ms|us|s)/step$", lines[1]), lines
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_verbose_2_epoch_line_is_keras_format(capsys):
    x, y = blobs()
    model = small("cpu")
    model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=2, validation_split=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1  # Keras prints "Epoch k/N" only when N > 1
    assert re.match(r"^6/6 - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4} - "
                    r"val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}$", lines[0]), lines


# --- evaluate / predict / *_on_batch ------------------------------------------------------------------
def _xent(probs, y):
    p = numpy.asarray(probs, dtype="float64")
    return float(-numpy.log(numpy.clip(p[numpy.arange(len(y)), y], 1e-7, 1)).mean())


def test_evaluate_results_against_float64_numpy(backend):
    x, y = blobs()
    model = small(backend)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    probs = model.predict(x, batch_size=50, verbose=0)
    loss, acc = model.evaluate(x, y, batch_size=50, verbose=0)
    assert loss == pytest.approx(_xent(probs, y), rel=1e-4)
    assert acc == pytest.approx(float((probs.argmax(1) == y).mean()))
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["accuracy", "loss"] and d["loss"] == pytest.approx(loss, rel=1e-5)
    t = model.test_on_batch(x[:10], y[:10], return_dict=True)
    assert t["loss"] == pytest.approx(_xent(probs[:10], y[:10]), rel=1e-4)
    numpy.testing.assert_allclose(model.predict_on_batch(x[:7]), probs[:7], rtol=1e-5, atol=1e-6)
    loss_b, acc_b = model.train_on_batch(x[:10], y[:10])
    assert loss_b == pytest.approx(_xent(probs[:10], y[:10]), rel=1e-4)


def test_validation_split_takes_the_last_fraction(backend):
    x, y = blobs()
    model = small(backend)
    model.compile(SGD(0.0), "sparse_categorical_crossentropy")  # lr 0: weights fixed, so val_loss is checkable
    history = model.fit(x, y, batch_size=32, epochs=1, validation_split=0.25, verbose=0)
    assert model.optimizer.iterations == 6  # 192 training samples
    probs = model.predict(x[192:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(_xent(probs, y[192:]), rel=1e-4)


def test_validation_freq_and_steps_per_epoch():
    x, y = blobs()
    model = small("cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="the data ran out"):
        history = model.fit(x, y, batch_size=32, epochs=4, validation_data=(x, y), validation_freq=2,
                            steps_per_epoch=3, verbose=0)
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    assert model.optimizer.iterations == 3 + 3 + 2 + 3  # 8 batches a pass: the third epoch gets what is left
    history = model.fit(x, y, epochs=3, validation_data=(x, y), validation_freq=[1, 3], verbose=0)
    assert len(history.history["val_loss"]) == 2


def test_sample_and_class_weights_are_used_not_ignored():
    """(Their values are checked against Keras in tests/test_sample_weight.py.)"""
    x, y = blobs()
    runs = []
    for kw in ({}, {"sample_weight": numpy.linspace(0, 2, len(y))}, {"class_weight": {0: 1.0, 1: 3.0}}):
        model = small("cpu")
        model.compile("sgd", "sparse_categorical_crossentropy")
        runs.append(model.fit(x, y, verbose=0, shuffle=False, **kw).history["loss"][0])
    assert runs[0] != pytest.approx(runs[1]) and runs[0] != pytest.approx(runs[2])


# --- built at construction ---------------------------------------------------------------------------
def test_model_with_input_shape_is_built_at_construction():
    model = gpuprop.Sequential([layers.Dense(16, input_shape=(8,)), layers.Dense(2)], device="cpu")
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(8, 16), (16,), (16, 2), (2,)]
    assert model.count_params() == 8 * 16 + 16 + 16 * 2 + 2 == 178
    model.set_weights([numpy.ones_like(w) for w in weights])
    out = model.predict(numpy.ones((1, 8), "float32"), verbose=0)
    numpy.testing.assert_allclose(out, [[16 * (8 + 1) + 1] * 2])  # each unit: 8 ones + bias, then 16 of those + bias


def test_keras_build_with_a_batch_axis():
    model = gpuprop.Sequential([layers.Dense(16), layers.Dense(2)], device="cpu")
    assert model.get_weights() == [] and not model.built  # no input shape yet: nothing to build (Keras too)
    model.build((None, 8))
    assert model.count_params() == 178


def test_add_after_build_builds_the_new_layer_and_keeps_the_old_weights():
    model = gpuprop.Sequential([layers.Dense(4, input_shape=(3,))], device="cpu", seed=1)
    kernel = model.get_weights()[0]
    model.add(layers.Dense(2))
    assert [w.shape for w in model.get_weights()] == [(3, 4), (4,), (4, 2), (2,)]
    numpy.testing.assert_array_equal(model.get_weights()[0], kernel)
    model.compile("sgd", "mse")
    model.fit(numpy.ones((4, 3), "float32"), numpy.zeros((4, 2), "float32"), verbose=0)


# --- trainable ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", [lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01),
                                 lambda: RMSprop(0.01), lambda: gpuprop.optimizers.get("adamw")])
def test_frozen_layer_is_untouched_by_every_optimizer(backend, opt):
    x, y = blobs()
    model = small(backend)
    model.layers[0].trainable = False
    model.compile(opt(), "sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    after = model.get_weights()
    numpy.testing.assert_array_equal(after[0], before[0])
    numpy.testing.assert_array_equal(after[1], before[1])
    assert numpy.abs(after[2] - before[2]).max() > 0


def test_trainable_change_takes_effect_at_once_and_is_saved(tmp_path):
    """Keras 3 (checked on its torch backend): freezing after compile stops updates at the next step,
    without a new compile; recompiling works too. The flags travel with the checkpoint."""
    x, y = blobs()
    model = small("cpu")
    model.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        numpy.testing.assert_array_equal(a, b)
    model.layers[1].trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    after = model.get_weights()
    numpy.testing.assert_array_equal(after[0], before[0])
    assert numpy.abs(after[2] - before[2]).max() > 0
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz", device="cpu")
    assert [layer.trainable for layer in again.layers] == [False, True]
    w = again.get_weights()
    again.fit(x, y, epochs=1, verbose=0)
    numpy.testing.assert_array_equal(again.get_weights()[0], w[0])


def test_unchanged_weights_keep_their_momentum_when_another_layer_is_frozen():
    """Freezing layer 0 mid-run leaves layer 1's SGD momentum as it was: same as a run that froze nothing
    but whose layer-0 update is undone (layer 1's gradient does not depend on layer 0's update this step)."""
    x, y = blobs(n=32)
    a, b = small("cpu"), small("cpu")
    for m in (a, b):
        m.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        m.train_on_batch(x, y)
    a.layers[0].trainable = False
    w0 = b.layers[0].get_weights()
    a.train_on_batch(x, y)
    b.train_on_batch(x, y)
    numpy.testing.assert_array_equal(a.layers[1].get_weights()[0], b.layers[1].get_weights()[0])
    numpy.testing.assert_array_equal(a.layers[0].get_weights()[0], w0[0])


def test_summary_counts_trainable_and_non_trainable():
    model = small("cpu", bn=True)
    model.layers[2].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    # Keras: Dense 8·16+16 = 144, BN 4·16 = 64 (32 moving statistics non-trainable), Dense 16·2+2 = 34
    assert "Total params: 242" in text
    assert "Trainable params: 176" in text  # 144 + 32 (gamma, beta)
    assert "Non-trainable params: 66" in text  # 32 moving + 34 frozen


def test_frozen_batchnorm_runs_in_inference_mode_and_matches_torch():
    """One SGD step through a frozen BatchNormalization, against torch with bn.eval() and frozen γ, β."""
    torch = pytest.importorskip("torch")
    r = numpy.random.default_rng(0)
    x = r.standard_normal((16, 8)).astype("float32")
    y = r.integers(0, 2, 16)
    model = gpuprop.Sequential([layers.Dense(6, input_shape=(8,)), layers.BatchNormalization(trainable=False),
                                layers.Dense(2)], device="cpu", seed=0)
    w = model.get_weights()
    w[4] = r.standard_normal(6).astype("float32")  # moving mean
    w[5] = r.uniform(0.5, 2.0, 6).astype("float32")  # moving variance
    w[2] = r.uniform(0.5, 2, 6).astype("float32")  # gamma
    model.set_weights(w)
    model.compile(SGD(0.1), gpuprop.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
    got = model.get_weights()

    d1, bn, d2 = torch.nn.Linear(8, 6).double(), torch.nn.BatchNorm1d(6, eps=1e-3).double(), torch.nn.Linear(6, 2).double()
    with torch.no_grad():
        d1.weight.copy_(torch.tensor(w[0].T)), d1.bias.copy_(torch.tensor(w[1]))
        bn.weight.copy_(torch.tensor(w[2])), bn.bias.copy_(torch.tensor(w[3]))
        bn.running_mean.copy_(torch.tensor(w[4])), bn.running_var.copy_(torch.tensor(w[5]))
        d2.weight.copy_(torch.tensor(w[6].T)), d2.bias.copy_(torch.tensor(w[7]))
    bn.eval()
    bn.weight.requires_grad_(False), bn.bias.requires_grad_(False)
    opt = torch.optim.SGD([*d1.parameters(), *d2.parameters()], lr=0.1)
    loss = torch.nn.functional.cross_entropy(d2(bn(d1(torch.tensor(x, dtype=torch.float64)))), torch.tensor(y))
    loss.backward()
    opt.step()
    numpy.testing.assert_allclose(got[0], d1.weight.detach().numpy().T, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_allclose(got[6], d2.weight.detach().numpy().T, rtol=1e-4, atol=1e-6)
    for i in (2, 3, 4, 5):  # gamma, beta, moving statistics: untouched
        numpy.testing.assert_array_equal(got[i], w[i])


def test_batchnorm_backward_after_inference_forward_is_a_clear_error():
    bn = layers.BatchNormalization()
    bn.build((4,), gpuprop.get_backend("cpu"), numpy.random.default_rng(0))
    x = numpy.ones((3, 4), "float32")
    bn.forward(x, training=False)
    with pytest.raises(RuntimeError, match=r"forward\(training=True\)"):
        bn.backward(numpy.ones_like(x))


# --- exact mid-epoch resume with dropout --------------------------------------------------------------
class _InterruptAt(callbacks.Callback):
    """Delivers a real SIGINT (Ctrl-C) after batch ``step``; fit stops after that step."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.step:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("stop_after", [0, 2, 5, 7])
def test_mid_epoch_resume_with_dropout_is_exact(tmp_path, stop_after):
    """Interrupt in epoch 2 after step ``stop_after`` of 8, save, load, finish: same weights as straight through."""
    from gpuprop.training import TrainingInterrupted

    x, y = blobs()

    def fresh():
        m = small("cpu", seed=4, dropout=0.5)
        m.compile(Adam(0.01), "sparse_categorical_crossentropy")
        return m

    straight = fresh()
    straight.fit(x, y, batch_size=32, epochs=3, verbose=0)
    cut = fresh()
    cut.fit(x, y, batch_size=32, epochs=1, verbose=0)
    with pytest.raises(TrainingInterrupted):
        cut.fit(x, y, batch_size=32, epochs=2, callbacks=[_InterruptAt(stop_after)], verbose=0)
    # after the epoch's last step the epoch is complete: the position is the next epoch's start
    assert (cut.epoch, cut.step_in_epoch) == ((1, stop_after + 1) if stop_after < 7 else (2, 0))
    cut.save(tmp_path / "cut.npz")
    resumed = load_model(tmp_path / "cut.npz", device="cpu")
    resumed.fit(x, y, batch_size=32, epochs=3 - resumed.epoch, verbose=0)  # finishes epoch 2 (if cut), then 3
    assert resumed.epoch == 3
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        numpy.testing.assert_array_equal(a, b)


def test_predict_on_a_terminal_ends_its_bar_without_a_dangling_separator():
    import io

    from gpuprop.progress import EpochProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    EpochProgress(None, None, 8, 1, out).close(8, {}, 0.08)
    assert out.getvalue().startswith("\r8/8 ") and out.getvalue().endswith("ms/step\x1b[K\n")
