"""``steps_per_epoch`` as Keras 3 runs it (issue 16): one data pass spans epochs, an epoch that meets the end of
a pass ends early with a warning, and the next epoch starts a new pass (a new shuffle). Oracles: float64 NumPy SGD
over the batch schedule worked out by hand, Keras 3 itself, and the uninterrupted run for an exact resume."""

import signal
import warnings

import numpy as np
import pytest

import gpuprop
from gpuprop import callbacks, layers
from gpuprop.models import load_model
from gpuprop.optimizers import SGD, Adam
from gpuprop.training import TrainingInterrupted

from .keras_oracle import keras as keras_oracle

N, BATCH, LR = 10, 2, 0.1  # 5 batches per pass


def linear_data(n=N, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 3))
    return x, (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + 0.1 * r.standard_normal((n, 1)))


def linear_model(backend, seed=0):
    m = gpuprop.Sequential([layers.Dense(1, input_shape=(3,))], device=backend, seed=seed)
    m.compile(SGD(LR), "mse")
    return m


def sgd_by_hand(w, b, x, y, schedule):
    """Float64 SGD on the mean squared error, one step per list of row indices; returns (w, b, per-step losses)."""
    losses = []
    for rows in schedule:
        xb, yb = x[rows], y[rows]
        err = xb @ w + b - yb
        losses.append(float((err ** 2).mean()))
        w, b = w - LR * 2 * xb.T @ err / len(rows), b - LR * 2 * err.mean(axis=0)
    return w, b, losses


def batch_rows(order, batch_indices):
    return [order[i * BATCH:(i + 1) * BATCH] for i in batch_indices]


def fit_counting(model, x, y, **kw):
    """fit, returning the history and the batches each epoch ran (counted by a callback)."""
    per_epoch = []
    count = callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: per_epoch.append(0),
                                     on_train_batch_end=lambda b, logs: per_epoch.__setitem__(-1, per_epoch[-1] + 1))
    history = model.fit(x, y, batch_size=BATCH, verbose=0, callbacks=[count], **kw)
    return history, per_epoch


# --- the batch schedule, against float64 SGD by hand ---------------------------------------------------------------
@pytest.mark.parametrize("spe, epochs, schedule", [
    (2, 4, [[0, 1], [2, 3], [4], [0, 1]]),  # the third epoch gets the one batch left of the pass
    (5, 2, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]),  # a whole pass each
    (7, 2, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]),  # more than a pass: each epoch ends when the pass does
    (3, 3, [[0, 1, 2], [3, 4], [0, 1, 2]]),
])
def test_epochs_take_the_next_batches_of_one_pass(backend, float64, spe, epochs, schedule):
    x, y = linear_data()
    model = linear_model(backend)
    w0, b0 = model.get_weights()
    short = any(len(s) < spe for s in schedule)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history, ran = fit_counting(model, x, y, epochs=epochs, steps_per_epoch=spe, shuffle=False)
    ran_out = [w for w in caught if "the data ran out" in str(w.message)]
    assert len(ran_out) == sum(len(s) < spe for s in schedule) and bool(ran_out) == short
    assert ran == [len(s) for s in schedule]
    assert model.optimizer.iterations == sum(ran)
    w, b, losses = sgd_by_hand(w0, b0, x, y, [r for s in schedule for r in batch_rows(np.arange(N), s)])
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-12, atol=1e-13)
    # each epoch's loss is the mean over the samples it trained (all batches are full here)
    ends = np.cumsum(ran)
    expected = [np.mean(losses[e - k:e]) for e, k in zip(ends, ran)]
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-12)


def test_a_shuffled_pass_spans_epochs_and_the_next_pass_is_reshuffled(backend, float64):
    x, y = linear_data()
    model = linear_model(backend, seed=3)
    w0, b0 = model.get_weights()
    with pytest.warns(UserWarning, match="the data ran out"):
        _, ran = fit_counting(model, x, y, epochs=4, steps_per_epoch=2, shuffle=True)
    assert ran == [2, 2, 1, 2]
    # pass 1 began at epoch 0 and pass 2 at epoch 3: each is shuffled by (seed, the epoch that began it)
    first, second = (model.backend.to_host(model.backend.permutation((3, e), N)) for e in (0, 3))
    assert sorted(first) == list(range(N)) and list(first) != list(second)
    schedule = batch_rows(first, [0, 1, 2, 3, 4]) + batch_rows(second, [0, 1])
    w, b, _ = sgd_by_hand(w0, b0, x, y, schedule)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-12, atol=1e-13)


def test_every_fit_call_starts_a_new_pass(backend, float64):
    """Keras makes a new data iterator per fit call: two fit(epochs=1, steps_per_epoch=2) train batches 0, 1 twice."""
    x, y = linear_data()
    model = linear_model(backend)
    w0, b0 = model.get_weights()
    for _ in range(2):
        model.fit(x, y, batch_size=BATCH, epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)
    w, b, _ = sgd_by_hand(w0, b0, x, y, batch_rows(np.arange(N), [0, 1, 0, 1]))
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-12, atol=1e-13)
    assert "data_pass" not in model.metadata  # nothing of the finished fit's pass is left to leak into a checkpoint


def test_bad_steps_per_epoch_is_refused_before_training():
    x, y = linear_data()
    model = linear_model("cpu")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
            model.fit(x, y, steps_per_epoch=bad, verbose=0)
    assert model.optimizer.iterations == 0


def test_the_progress_line_counts_the_steps_an_epoch_ran(capsys):
    x, y = linear_data()
    model = linear_model("cpu")
    with pytest.warns(UserWarning):
        model.fit(x, y, batch_size=BATCH, epochs=3, steps_per_epoch=2, shuffle=False, verbose=2)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " - loss: " in ln]
    assert [ln.split(" - ")[0] for ln in lines] == ["2/2", "2/2", "1/2"]


# --- Keras 3 itself --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spe, epochs", [(2, 4), (3, 3), (7, 2)])
def test_same_steps_and_weights_as_keras(backend, spe, epochs):
    keras = keras_oracle()
    x, y = (a.astype("float32") for a in linear_data())
    ours = linear_model(backend)
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    theirs.compile(keras.optimizers.SGD(LR), "mse")
    theirs.set_weights(ours.get_weights())
    counts = []
    count = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: counts.append(0),
                                           on_train_batch_end=lambda b, logs: counts.__setitem__(-1, counts[-1] + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_hist = theirs.fit(x, y, batch_size=BATCH, epochs=epochs, steps_per_epoch=spe, shuffle=False, verbose=0,
                            callbacks=[count])
        history, ran = fit_counting(ours, x, y, epochs=epochs, steps_per_epoch=spe, shuffle=False)
    assert ran == counts
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations)
    np.testing.assert_allclose(history.history["loss"], k_hist.history["loss"], rtol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluate_and_predict_with_more_steps_than_batches_use_all_the_data_as_keras(backend):
    keras = keras_oracle()
    x, y = (a.astype("float32") for a in linear_data(n=23))
    ours = linear_model(backend)
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    theirs.compile("sgd", "mse")
    theirs.set_weights(ours.get_weights())
    with pytest.warns(UserWarning, match="the data ran out before steps=6"):
        loss = ours.evaluate(x, y, batch_size=5, steps=6, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_loss = theirs.evaluate(x, y, batch_size=5, steps=6, verbose=0)
        k_out = theirs.predict(x, batch_size=5, steps=6, verbose=0)
    assert loss == pytest.approx(k_loss, rel=1e-5)
    with pytest.warns(UserWarning, match="the data ran out before steps=6"):
        out = ours.predict(x, batch_size=5, steps=6, verbose=0)
    assert out.shape == k_out.shape == (23, 1)
    np.testing.assert_allclose(out, k_out, rtol=1e-5, atol=1e-6)


# --- an exact resume in the middle of a pass -------------------------------------------------------------------------
class _InterruptAt(callbacks.Callback):
    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("epoch, step", [(1, 0), (1, 2), (2, 1), (3, 1)])
def test_resume_in_the_middle_of_a_pass_is_exact(tmp_path, epoch, step):
    """8 batches a pass, 3 steps an epoch (epochs of 3, 3, 2, 3 steps), Dropout and shuffling: Ctrl-C, save, load
    and finish give the weights of the run straight through, bit for bit (cut mid-epoch, at the end of an epoch in the
    middle of a pass, and at the end of a pass)."""
    r = np.random.default_rng(1)
    x, y = r.standard_normal((256, 8)).astype("float32"), r.integers(0, 2, 256)

    def fresh():
        m = gpuprop.Sequential([layers.Dense(16, activation="relu", input_shape=(8,)), layers.Dropout(0.5),
                                layers.Dense(2, activation="softmax")], device="cpu", seed=5)
        m.compile(Adam(0.01), "sparse_categorical_crossentropy")
        return m

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        straight = fresh()
        straight.fit(x, y, batch_size=32, epochs=4, steps_per_epoch=3, verbose=0)
        cut = fresh()
        with pytest.raises(TrainingInterrupted):
            cut.fit(x, y, batch_size=32, epochs=4, steps_per_epoch=3, verbose=0, callbacks=[_InterruptAt(epoch, step)])
        cut.save(tmp_path / "cut.npz")
        resumed = load_model(tmp_path / "cut.npz", device="cpu")
        resumed.fit(x, y, batch_size=32, epochs=4, initial_epoch=resumed.epoch, steps_per_epoch=3, verbose=0)
    assert resumed.epoch == straight.epoch == 4
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 11
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
