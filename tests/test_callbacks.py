"""gpuprop.callbacks against Keras 3's documented behaviour: hooks and their order, each callback's decisions
(checked by hand, and against Keras' own callbacks on the same monitored values where Keras imports)."""

import csv
import math
import os

import numpy
import pytest

import gpuprop
from gpuprop import callbacks, layers
from gpuprop.callbacks.base import LazyLogs
from gpuprop.models import load_model
from gpuprop.optimizers import SGD


def blobs(n=96, d=4, seed=0):
    r = numpy.random.default_rng(seed)
    y = r.integers(0, 2, n)
    return (r.standard_normal((n, d)) + 2 * y[:, None]).astype("float32"), y


def model_on(backend="cpu", seed=0, lr=0.05):
    m = gpuprop.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)), layers.Dense(2, activation="softmax")],
                           device=backend, seed=seed)
    m.compile(SGD(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class AllHooks(callbacks.Callback):
    """Overrides every hook, recording the order (what Keras calls, in Keras' order)."""

    def __init__(self):
        super().__init__()
        self.calls = []


for _h in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
           "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
           "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"):
    setattr(AllHooks, _h, (lambda name: lambda self, *a, **k: self.calls.append(name))(_h))


def test_hook_order_matches_keras(backend):
    x, y = blobs(64)
    cb = AllHooks()
    model = model_on(backend)
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(x[:16], y[:16]), callbacks=[cb], verbose=0)
    epoch = (["on_epoch_begin"] + ["on_train_batch_begin", "on_train_batch_end"] * 2
             + ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end", "on_epoch_end"])
    assert cb.calls == ["on_train_begin", *epoch, *epoch, "on_train_end"]
    assert cb.model is model and cb.params == {"verbose": 0, "epochs": 2, "steps": 2}
    cb.calls.clear()
    model.evaluate(x, y, batch_size=64, callbacks=[cb], verbose=0)
    model.predict(x, batch_size=64, callbacks=[cb], verbose=0)
    assert cb.calls == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
                        "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]


def test_epoch_logs_and_stop_training():
    x, y = blobs()
    seen = []

    class StopAfterTwo(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))
            if epoch == 1:
                self.model.stop_training = True

    history = model_on().fit(x, y, epochs=10, validation_split=0.25, callbacks=[StopAfterTwo()], verbose=0)
    assert history.epoch == [0, 1]
    assert list(seen[0]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert seen[1]["loss"] == history.history["loss"][1]


def test_batch_logs_are_running_means_and_read_only_when_asked():
    x, y = blobs(64)
    model = model_on(lr=0.0)  # fixed weights: the running mean is the mean of the per-batch losses
    losses = []
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False,
              callbacks=[callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"]))])
    per_batch = [model.test_on_batch(x[i:i + 32], y[i:i + 32]) for i in (0, 32)]
    assert losses[0] == pytest.approx(per_batch[0][0], rel=1e-5)
    assert losses[1] == pytest.approx((per_batch[0][0] + per_batch[1][0]) / 2, rel=1e-5)
    reads = []
    logs = LazyLogs(lambda: reads.append(1) or {"loss": 1.0})
    assert reads == []  # building batch logs reads nothing (no host sync on a GPU)
    assert logs["loss"] == 1.0 and dict(logs) == {"loss": 1.0} and reads == [1]


def test_plain_functions_and_keras_style_objects_are_accepted():
    x, y = blobs()
    got = []

    def three(epoch, logs, stats):
        got.append(("three", epoch, stats["steps"]))

    def two(epoch, logs):
        got.append(("two", epoch))

    class DuckTyped:  # not a gpuprop Callback: a Keras-style object with some hooks
        def on_epoch_end(self, epoch, logs=None):
            got.append(("duck", epoch, self.model is not None))

    model_on().fit(x, y, batch_size=32, epochs=1, callbacks=[three, two, DuckTyped()], verbose=0)
    assert got == [("three", 0, 3), ("two", 0), ("duck", 0, True)]


@pytest.mark.parametrize("bad", [42, "early_stopping", lambda: None, lambda a, b, c, d: None])
def test_a_wrong_callback_fails_before_any_training(bad):
    x, y = blobs()
    model = model_on()
    before = model.get_weights()
    with pytest.raises(TypeError, match="callback"):
        model.fit(x, y, epochs=1, callbacks=[bad], verbose=0)
    assert model.optimizer.iterations == 0
    for a, b in zip(before, model.get_weights()):
        numpy.testing.assert_array_equal(a, b)


# --- EarlyStopping --------------------------------------------------------------------------------------
class _Holder:
    """Stands in for the model where only stop_training and weights matter."""

    def __init__(self):
        self.stop_training = False
        self.weights = [numpy.zeros(1)]
        self.metrics = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, w):
        self.weights = w


def _run_monitor(cb, values, key="val_loss", model=None):
    """Feed ``values`` as epoch logs; return the epoch where the model was told to stop (None if never)."""
    model = model or _Holder()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, v in enumerate(values):
        if isinstance(model, _Holder):
            model.weights = [numpy.array([float(epoch)])]
        cb.on_epoch_end(epoch, {key: v})
        if model.stop_training:
            return epoch
    return None


SEQUENCES = [
    [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8],
    [3.0, 2.0, 2.5, 2.4, 1.0, 1.1, 1.2],
    [0.5, 0.5, 0.5, 0.5, 0.5],
    [1.0, 0.999, 0.998, 0.9, 0.95, 0.96, 0.97, 0.98],
]
CONFIGS = [dict(patience=0), dict(patience=2), dict(patience=1, min_delta=0.01), dict(patience=2, baseline=0.95),
           dict(patience=1, start_from_epoch=3), dict(patience=2, mode="max"), dict(patience=3, min_delta=0.05)]


def test_early_stopping_by_hand():
    # patience 2: epochs 2 and 3 do not beat 2.0, so epoch 3 stops
    assert _run_monitor(callbacks.EarlyStopping(patience=2), SEQUENCES[1]) == 3
    # min_delta 0.01: 0.999 and 0.998 are not improvements over 1.0; stop at the second (patience 1... epoch 1)
    assert _run_monitor(callbacks.EarlyStopping(patience=1, min_delta=0.01), SEQUENCES[3]) == 1
    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    holder = _Holder()
    assert _run_monitor(es, SEQUENCES[1], model=holder) == 3
    es.on_train_end()
    assert holder.weights[0][0] == 1.0  # the weights of the best epoch (index 1)


def test_early_stopping_decisions_match_keras():
    keras = _keras()
    km = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    km.compile("sgd", "mse")
    for values in SEQUENCES:
        for cfg in CONFIGS:
            ours = _run_monitor(callbacks.EarlyStopping(restore_best_weights=True, **cfg), values)
            km.stop_training = False
            theirs_cb = keras.callbacks.EarlyStopping(restore_best_weights=True, **cfg)
            theirs = _run_monitor(theirs_cb, values, model=km)
            assert ours == theirs, (values, cfg)


def test_early_stopping_in_fit_restores_best_weights():
    x, y = blobs()
    model = model_on(lr=0.5)
    snaps = []
    snap = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snaps.append((logs["loss"], model.get_weights())))
    es = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=30, callbacks=[snap, es], verbose=0)
    losses = history.history["loss"]
    best = int(numpy.argmin(losses))
    assert len(losses) < 30 or es.stopped_epoch == 0
    for a, b in zip(model.get_weights(), snaps[best][1]):
        numpy.testing.assert_array_equal(a, b)


# --- ReduceLROnPlateau and LearningRateScheduler ----------------------------------------------------
def _run_lr(cb, values, opt_holder, read_lr):
    cb.set_model(opt_holder)
    cb.on_train_begin()
    rates = []
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": v})
        rates.append(read_lr())
    return rates


def test_reduce_lr_on_plateau_matches_keras():
    keras = _keras()
    for values in SEQUENCES:
        for cfg in (dict(patience=1), dict(patience=2, cooldown=1), dict(patience=0, factor=0.5, min_lr=0.02),
                    dict(patience=1, min_delta=0.05)):
            ours_model = model_on(lr=0.1)
            ours = _run_lr(callbacks.ReduceLROnPlateau(**cfg), values, ours_model,
                           ours_model.optimizer.current_learning_rate)
            km = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
            km.compile(keras.optimizers.SGD(0.1), "mse")
            theirs = _run_lr(keras.callbacks.ReduceLROnPlateau(**cfg), values, km,
                             lambda: float(km.optimizer.learning_rate))
            numpy.testing.assert_allclose(ours, theirs, rtol=1e-6, err_msg=str((values, cfg)))


def test_reduce_lr_on_plateau_by_hand():
    model = model_on(lr=0.1)
    rates = _run_lr(callbacks.ReduceLROnPlateau(patience=1, factor=0.5), [1.0, 1.0, 1.0, 0.5, 0.6],
                    model, model.optimizer.current_learning_rate)
    assert rates == pytest.approx([0.1, 0.05, 0.025, 0.025, 0.0125])


def test_learning_rate_scheduler_sets_each_epochs_rate():
    x, y = blobs()
    model = model_on(lr=0.1)
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    spy = callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(model.optimizer.current_learning_rate()))
    history = model.fit(x, y, epochs=3, callbacks=[sched, spy], verbose=0)
    assert seen == pytest.approx([0.1, 0.05, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    one_arg = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    model.fit(x, y, epochs=2, callbacks=[one_arg], verbose=0)
    assert model.optimizer.current_learning_rate() == pytest.approx(0.02)


# --- ModelCheckpoint, CSVLogger, TerminateOnNaN -----------------------------------------------------
def test_model_checkpoint_templates_and_save_best_only(tmp_path):
    x, y = blobs()
    model = model_on(lr=0.2)
    every = callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}-{loss:.2f}.keras"), monitor="loss")
    best = callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss", save_best_only=True)
    saves = []
    spy = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: saves.append(os.path.getmtime(tmp_path / "best.keras")
                                                                              if (tmp_path / "best.keras").exists() else None))
    history = model.fit(x, y, epochs=4, validation_split=0.25, callbacks=[every, best, spy], verbose=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = [f"ck-{e + 1:02d}-{loss:.2f}.keras" for e, loss in enumerate(history.history["loss"])]
    assert names == sorted(expected + ["best.keras"])  # no temporary files left behind
    val = history.history["val_loss"]
    restored = load_model(tmp_path / "best.keras", device="cpu")
    assert restored.evaluate(x[72:], y[72:], verbose=0)[0] == pytest.approx(min(val), rel=1e-5)
    improved = [i for i, v in enumerate(val) if v < min(val[:i], default=math.inf)]
    changed = [i for i in range(len(saves)) if i == 0 or saves[i] != saves[i - 1]]
    assert set(changed) <= set(improved)


def test_model_checkpoint_bad_template_is_clear(tmp_path):
    x, y = blobs()
    ck = callbacks.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.keras"))
    with pytest.raises(KeyError, match="cannot fill"):
        model_on().fit(x, y, epochs=1, callbacks=[ck], verbose=0)


def test_csv_logger_writes_keras_columns(tmp_path):
    x, y = blobs()
    path = tmp_path / "log.csv"
    history = model_on().fit(x, y, epochs=2, validation_split=0.25, callbacks=[callbacks.CSVLogger(path)], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["val_loss"]) == pytest.approx(history.history["val_loss"][1])
    model_on().fit(x, y, epochs=1, callbacks=[callbacks.CSVLogger(path, append=True)], verbose=0)
    assert len(list(csv.DictReader(open(path)))) == 3


def test_terminate_on_nan_stops_gracefully(capsys):
    x, y = blobs()
    model = model_on(lr=1e30)
    with numpy.errstate(all="ignore"):  # the overflow is the point
        history = model.fit(x * 1e6, y, batch_size=8, epochs=3, callbacks=[callbacks.TerminateOnNaN()], verbose=0)
    assert len(history.epoch) == 1 and model.optimizer.iterations < 12
    assert "Invalid loss, terminating training" in capsys.readouterr().out


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras", reason="keras is not installed: the Keras-oracle comparison cannot run")


def test_model_checkpoint_save_freq_counts_batches_across_epochs(tmp_path):
    """Keras: save_freq=N saves after every N batches seen, counting on across epoch boundaries."""
    x, y = blobs(72)  # 3 batches of 24 per epoch
    ck = callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch}-{batch}.keras"), save_freq=2)
    model_on().fit(x, y, batch_size=24, epochs=2, callbacks=[ck], verbose=0)
    # global batches 2, 4, 6 = (epoch 1, batch 2), (epoch 2, batch 1), (epoch 2, batch 3), 1-based as Keras names them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck-1-2.keras", "ck-2-1.keras", "ck-2-3.keras"]


def test_a_keras_callbacks_subclass_runs_in_gpuprop_fit():
    """The issue's program: a ``keras.callbacks.Callback`` subclass passed to gpuprop's fit runs every epoch."""
    keras = _keras()
    seen = []

    class KerasStyleCB(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    x, y = blobs()
    history = model_on().fit(x, y, epochs=5, callbacks=[KerasStyleCB()], verbose=0)
    assert seen == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])] and history.epoch == [0, 1]


def test_batch_hooks_add_no_host_sync_per_step_unless_they_read_the_logs():
    """On gpu-sim (CuPy's semantics, every device-to-host read counted): a batch hook that does not read its
    logs costs no read per step; one that reads them costs one read per step (its own)."""
    sim = gpuprop.get_backend("gpu-sim")
    x, y = blobs(96)

    def syncs(cbs, epochs=1):
        model = model_on(sim)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # warm: the first fit builds what it caches
        before = sim.host_syncs()
        model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=cbs)
        return sim.host_syncs() - before

    plain = syncs([])
    quiet = syncs([callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: None,
                                            on_train_batch_end=lambda b, logs: None)])
    reading = syncs([callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: logs["loss"])])
    assert quiet == plain
    assert reading - plain >= 12  # 12 steps: the reads are the callback's
    assert syncs([], epochs=2) - plain < 12  # and the loop itself reads per epoch, not per step
