"""Sample weights on functional (multi-output) models and ``weighted_metrics`` (issue 16), against Keras 3
itself (same graph, same weights, full-batch SGD), a float64 hand computation, training on the subset of
non-zero-weight rows, and gpu-sim's host-sync counter."""

import io
import re

import numpy as np
import pytest

import gpuprop
from gpuprop import Input, Model, get_backend, layers as L
from gpuprop.metrics import Accumulator, Weighted, get as get_metric
from gpuprop.models import graph_training
from gpuprop.models.network import cast_input
from gpuprop.optimizers import SGD
from tests.conftest import require_cxx
from tests.test_fit_keras import _InterruptAt  # a real Ctrl-C after a given batch
from tests.test_distributed import mpi  # noqa: F401 - the fixture: mpiexec, or a skip saying what to install

from .keras_oracle import keras as keras_oracle

N = 10
LOSSES = {"priority": "mse", "department": "sparse_categorical_crossentropy"}


def data(n=N, seed=0):
    r = np.random.default_rng(seed)
    xs = [r.random((n, 5)).astype("float32"), r.random((n, 3)).astype("float32")]
    ys = [r.random((n, 1)).astype("float32"), r.integers(0, 3, n)]
    return xs, ys, r.uniform(0.0, 3.0, n).astype("float32"), r.uniform(0.0, 3.0, n).astype("float32")


def two_heads(lib, backend=None, dict_outputs=False):
    """Two inputs, a shared concatenation, two outputs: a regression and a 3-class softmax (``lib``: gpuprop
    or keras; the same graph and layer names in both)."""
    title, body = lib.Input((5,), name="title"), lib.Input((3,), name="body")
    h = lib.layers.Concatenate()([lib.layers.Dense(6, activation="relu", name="title_dense")(title),
                                  lib.layers.Dense(4, activation="tanh", name="body_dense")(body)])
    p = lib.layers.Dense(1, name="priority")(h)
    d = lib.layers.Dense(3, activation="softmax", name="department")(h)
    outputs = {"priority": p, "department": d} if dict_outputs else [p, d]
    if lib is gpuprop:
        return Model([title, body], outputs, device=backend, seed=0)
    return lib.Model([title, body], outputs)


def pair(backend, dict_outputs=False):
    k = keras_oracle()
    k.backend.clear_session()
    ours = two_heads(gpuprop, backend, dict_outputs)
    theirs = two_heads(k, dict_outputs=dict_outputs)
    for layer in ours.layers:  # by name: a dict-output Keras model lists its layers in another order
        if layer.get_weights():
            theirs.get_layer(layer.name).set_weights(layer.get_weights())
    return k, ours, theirs


def assert_logs_equal(ours, theirs, rtol=1e-5):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=1e-6, err_msg=key)


def assert_weights_equal(ours, theirs, by_name=False):
    if by_name:
        pairs = [(p, q) for layer in ours.layers if layer.get_weights()
                 for p, q in zip(layer.get_weights(), theirs.get_layer(layer.name).get_weights())]
    else:
        pairs = list(zip(ours.get_weights(), theirs.get_weights()))
    assert pairs
    for p, q in pairs:
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


# --- Keras 3 as the oracle: per-output sample weights ----------------------------------------------------------
@pytest.mark.parametrize("case", ["one_array", "per_output_list", "dict_with_none"])
def test_weighted_two_output_step_matches_keras(backend, case):
    dict_outputs = case == "dict_with_none"
    k, ours, theirs = pair(backend, dict_outputs)
    xs, ys, w, w2 = data()
    sw = {"one_array": w[:, None], "per_output_list": [w, w2],
          "dict_with_none": {"priority": w, "department": None}}[case]
    y = dict(zip(["priority", "department"], ys)) if dict_outputs else ys
    lw = {"priority": 1.0, "department": 0.5} if dict_outputs else [1.0, 0.5]
    ml = {"priority": ["mae"], "department": ["accuracy"]}
    ours.compile(SGD(0.1), LOSSES if dict_outputs else list(LOSSES.values()), loss_weights=lw, metrics=ml)
    theirs.compile(k.optimizers.SGD(0.1), LOSSES if dict_outputs else list(LOSSES.values()), loss_weights=lw,
                   metrics=ml)
    kw = dict(sample_weight=sw, batch_size=N, shuffle=False, verbose=0)
    assert_logs_equal(ours.fit(xs, y, **kw).history, theirs.fit(xs, y, **kw).history)
    assert_weights_equal(ours, theirs, by_name=True)
    kw = dict(sample_weight=sw, batch_size=4, verbose=0, return_dict=True)  # batches of 4, 4, 2
    assert_logs_equal(ours.evaluate(xs, y, **kw), theirs.evaluate(xs, y, **kw))
    assert_logs_equal(ours.test_on_batch(xs, y, sample_weight=sw, return_dict=True),
                      theirs.test_on_batch(xs, y, sample_weight=sw, return_dict=True))
    assert_logs_equal(ours.train_on_batch(xs, y, sample_weight=sw, return_dict=True),
                      theirs.train_on_batch(xs, y, sample_weight=sw, return_dict=True))
    assert_weights_equal(ours, theirs, by_name=True)


def test_weighted_metrics_and_validation_weights_on_two_outputs_match_keras(backend):
    """metrics and weighted_metrics both name accuracy on 'department' (a clash: department_weighted_accuracy),
    'priority' has a weighted mae alone (priority_mae); validation_data carries one weight array per output."""
    k, ours, theirs = pair(backend)
    xs, ys, w, w2 = data()
    xv, yv, wv, wv2 = data(7, seed=1)
    comp = dict(loss=list(LOSSES.values()), loss_weights=[0.7, 1.3], metrics=[[], ["accuracy"]],
                weighted_metrics=[["mae"], ["accuracy"]])
    ours.compile(SGD(0.2), **comp)
    theirs.compile(k.optimizers.SGD(0.2), **comp)
    kw = dict(sample_weight=[w, w2], batch_size=4, epochs=2, shuffle=False, verbose=0,
              validation_data=(xv, yv, [wv, None]))
    h1, h2 = ours.fit(xs, ys, **kw).history, theirs.fit(xs, ys, **kw).history
    assert {"department_weighted_accuracy", "priority_mae", "val_department_weighted_accuracy"} <= set(h1)
    assert_logs_equal(h1, h2)
    assert_weights_equal(ours, theirs)


def test_weighted_metrics_on_sequential_match_keras(backend):
    k = keras_oracle()
    r = np.random.default_rng(3)
    x, y, w = r.standard_normal((13, 4)).astype("float32"), r.integers(0, 3, 13), r.uniform(0, 2, 13)
    xv, yv, wv = r.standard_normal((6, 4)).astype("float32"), r.integers(0, 3, 6), r.uniform(0, 2, 6)
    ours = gpuprop.Sequential([L.Dense(3, activation="softmax", input_shape=(4,))], device=backend, seed=0)
    theirs = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    comp = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                weighted_metrics=["accuracy", "sparse_categorical_accuracy"])
    ours.compile(SGD(0.5), **comp)
    theirs.compile(k.optimizers.SGD(0.5), **comp)
    kw = dict(sample_weight=w, batch_size=5, epochs=2, shuffle=False, verbose=0, validation_data=(xv, yv, wv))
    h1, h2 = ours.fit(x, y, **kw).history, theirs.fit(x, y, **kw).history
    assert {"accuracy", "weighted_accuracy", "sparse_categorical_accuracy", "val_weighted_accuracy"} <= set(h1)
    assert_logs_equal(h1, h2)
    for weights in (w, None):  # without weights a weighted metric is the plain one
        kw = dict(sample_weight=weights, batch_size=4, verbose=0, return_dict=True)
        got, want = ours.evaluate(x, y, **kw), theirs.evaluate(x, y, **kw)
        assert_logs_equal(got, want)
    assert got["weighted_accuracy"] == got["accuracy"]


def test_class_weight_on_a_one_output_functional_model_matches_keras(backend):
    k = keras_oracle()
    r = np.random.default_rng(4)
    x, y = r.standard_normal((12, 4)).astype("float32"), r.integers(0, 3, 12)
    inp = Input((4,))
    ours = Model(inp, L.Dense(3, activation="softmax")(L.Dense(5, activation="relu")(inp)), device=backend, seed=0)
    kin = k.Input((4,))
    theirs = k.Model(kin, k.layers.Dense(3, activation="softmax")(k.layers.Dense(5, activation="relu")(kin)))
    theirs.set_weights(ours.get_weights())
    comp = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    ours.compile(SGD(0.3), **comp)
    theirs.compile(k.optimizers.SGD(0.3), **comp)
    kw = dict(class_weight={0: 0.2, 2: 3.0}, batch_size=5, epochs=2, shuffle=False, verbose=0)
    h1, h2 = ours.fit(x, y, **kw).history, theirs.fit(x, y, **kw).history
    assert "weighted_accuracy" in h1
    assert_logs_equal(h1, h2)
    assert_weights_equal(ours, theirs)


# --- a float64 hand computation ---------------------------------------------------------------------------------
def test_weighted_two_output_step_by_hand_float64(backend, float64):
    """p = xA + a (mse), q = softmax(xB + b) (sparse CE), loss weights (1, 0.5), weights s and t per output:
    L = Σ sᵢ(pᵢ−yᵢ)²/N + 0.5 Σ tᵢ·(−log q_{i,cᵢ})/N; dA = xᵀ(2s∘(p−y)/N), dB = xᵀ(0.5 t∘(q−onehot(c))/N)."""
    r = np.random.default_rng(5)
    n = 9
    x, y, c = r.standard_normal((n, 4)), r.standard_normal((n, 1)), r.integers(0, 3, n)
    s, t = r.uniform(0, 2, n), r.uniform(0, 2, n)
    inp = Input((4,))
    model = Model(inp, [L.Dense(1, name="p")(inp), L.Dense(3, activation="softmax", name="q")(inp)],
                  device=backend, seed=1)
    model.compile(SGD(0.3), ["mse", "sparse_categorical_crossentropy"], loss_weights=[1.0, 0.5],
                  weighted_metrics=[[], ["accuracy"]])
    A, a, B, b = model.get_weights()
    p = x @ A + a
    z = x @ B + b
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    onehot = np.eye(3)[c]
    lp = (s * ((p - y) ** 2)[:, 0]).sum() / n
    lq = (t * -np.log(q[np.arange(n), c])).sum() / n
    acc = (t * (q.argmax(1) == c)).sum() / t.sum()
    h = model.fit(x, [y, c], sample_weight={"p": s, "q": t}, batch_size=n, shuffle=False, verbose=0).history
    np.testing.assert_allclose(h["p_loss"][0], lp, rtol=1e-12)
    np.testing.assert_allclose(h["q_loss"][0], lq, rtol=1e-12)
    np.testing.assert_allclose(h["loss"][0], lp + 0.5 * lq, rtol=1e-12)
    np.testing.assert_allclose(h["q_accuracy"][0], acc, rtol=1e-12)
    gp, gq = 2 * s[:, None] * (p - y) / n, 0.5 * t[:, None] * (q - onehot) / n
    for got, want in zip(model.get_weights(), [A - 0.3 * x.T @ gp, a - 0.3 * gp.sum(0),
                                               B - 0.3 * x.T @ gq, b - 0.3 * gq.sum(0)]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_weighted_accumulator_sums_survive_a_snapshot(backend):
    """Σ wᵢ·mᵢ / Σ wᵢ over three batches, with a snapshot/restore (a mid-epoch checkpoint) after the first."""
    xp = backend.xp
    r = np.random.default_rng(6)
    out, labels, w = r.random((11, 3)), r.integers(0, 3, 11), r.uniform(0, 2, 11)
    metrics = [get_metric("accuracy", "sparse_categorical_crossentropy")]
    metrics.append(Weighted(get_metric("accuracy", "sparse_categorical_crossentropy"), "weighted_accuracy"))

    def add(acc, rows):
        o, t, ww = (backend.asarray(a[rows]) for a in (out, labels, w))
        acc.add(xp.asarray(0.0), o, [t, t], int(o.shape[0]), ww)

    first = Accumulator(xp, metrics, False)
    add(first, slice(0, 4))
    resumed = Accumulator(xp, metrics, False)
    resumed.restore(first.snapshot())
    add(resumed, slice(4, 9))
    add(resumed, slice(9, 11))
    right = out.argmax(1) == labels
    logs = resumed.result()
    np.testing.assert_allclose(logs["weighted_accuracy"], (w * right).sum() / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(logs["accuracy"], right.mean(), rtol=1e-12)


def test_weighted_metrics_of_an_epoch_resumed_from_a_mid_epoch_checkpoint(backend, tmp_path):
    """Interrupted after 2 of 4 steps, saved, loaded and finished: the epoch's logs (weighted metrics and their
    Σ w from the checkpoint included) and weights equal the run straight through."""
    from gpuprop.training import TrainingInterrupted

    xs, ys, w, w2 = data(16, seed=8)

    def fresh():
        m = two_heads(gpuprop, backend)
        m.compile(SGD(0.1), list(LOSSES.values()), metrics=[[], ["accuracy"]],
                  weighted_metrics=[["mae"], ["accuracy"]])
        return m

    kw = dict(sample_weight=[w, w2], batch_size=4, epochs=1, verbose=0)
    straight = fresh().fit(xs, ys, **kw).history
    cut = fresh()
    with pytest.raises(TrainingInterrupted):
        cut.fit(xs, ys, callbacks=[_InterruptAt(1)], **kw)
    cut.save(tmp_path / "cut.npz")
    resumed = gpuprop.load_model(tmp_path / "cut.npz", device=backend)
    assert_logs_equal(resumed.fit(xs, ys, **kw).history, straight, rtol=1e-6)


# --- zero weights are the same as leaving the samples out ------------------------------------------------------
def test_zero_weights_equal_training_on_the_other_samples(backend):
    """Full batch: the loss is Σ_kept wᵢlᵢ / N on all N rows but / M on the M kept rows, so SGD(lr) on all rows
    equals SGD(lr·M/N) on the kept ones, and the logged losses differ by M/N; weighted metrics are equal."""
    xs, ys, w, w2 = data(12, seed=2)
    w[[1, 4, 5]] = 0
    w2[[1, 4, 5]] = 0
    keep = w > 0
    m = int(keep.sum())
    comp = dict(loss=list(LOSSES.values()), loss_weights=[1.0, 0.5], weighted_metrics=[["mae"], ["accuracy"]])
    full, subset = two_heads(gpuprop, backend), two_heads(gpuprop, backend)
    full.compile(SGD(0.2), **comp)
    subset.compile(SGD(0.2 * m / 12), **comp)
    h1 = full.fit(xs, ys, sample_weight=[w, w2], batch_size=12, epochs=3, shuffle=False, verbose=0).history
    h2 = subset.fit([a[keep] for a in xs], [a[keep] for a in ys], sample_weight=[w[keep], w2[keep]],
                    batch_size=m, epochs=3, shuffle=False, verbose=0).history
    for key in ("loss", "priority_loss", "department_loss"):
        np.testing.assert_allclose(h1[key], np.array(h2[key]) * m / 12, rtol=1e-5)
    for key in ("priority_mae", "department_accuracy"):
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-5)
    assert_weights_equal(full, subset)


def test_validation_split_keeps_each_rows_weights(backend):
    """validation_split takes the last rows with their weights: the val_ logs are evaluate on those rows."""
    xs, ys, w, w2 = data(10, seed=7)
    model = two_heads(gpuprop, backend)
    model.compile(SGD(0.0), list(LOSSES.values()), weighted_metrics=[[], ["accuracy"]])
    h = model.fit(xs, ys, sample_weight=[w, w2], validation_split=0.3, batch_size=10, verbose=0).history
    want = model.evaluate([a[7:] for a in xs], [a[7:] for a in ys], sample_weight=[w[7:], w2[7:]],
                          return_dict=True, verbose=0)
    for key, value in want.items():
        np.testing.assert_allclose(h["val_" + key][0], value, rtol=1e-6)


# --- predict with steps, callbacks and verbose ---------------------------------------------------------------
def test_functional_predict_takes_steps_callbacks_and_prints_as_sequential(backend):
    xs, _, _, _ = data(10)
    model = two_heads(gpuprop, backend)
    seen = []

    class Hooks(gpuprop.callbacks.Callback):
        def on_predict_begin(self, logs=None):
            seen.append("begin")

        def on_predict_batch_end(self, batch, logs=None):
            seen.append((batch, [int(o.shape[0]) for o in logs["outputs"]]))

        def on_predict_end(self, logs=None):
            seen.append("end")

    out = model.predict(xs, batch_size=4, steps=2, callbacks=[Hooks()], verbose=0)
    assert seen == ["begin", (0, [4, 4]), (1, [4, 4]), "end"]
    whole = model.predict(xs, verbose=0)
    for got, want in zip(out, whole):
        assert got.shape[0] == 8
        np.testing.assert_allclose(got, want[:8], rtol=1e-6)
    with pytest.warns(UserWarning, match="the data ran out before steps=4"):  # as Sequential: all the data
        assert model.predict(xs, batch_size=4, steps=4, verbose=0)[0].shape[0] == 10
    log = io.StringIO()
    model.predict(xs, batch_size=4, verbose=2, log=log)
    assert re.fullmatch(r"3/3 - \S+ - \S+/step\n", log.getvalue()), log.getvalue()


# --- weighted metrics are saved and come back -------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npz", ".keras"])
def test_weighted_metrics_survive_save_and_load(backend, tmp_path, suffix):
    if suffix == ".keras":
        pytest.importorskip("h5py", reason="h5py is not installed: .keras files need it (pip install 'gpuprop[h5]')")
    xs, ys, w, w2 = data()
    model = two_heads(gpuprop, backend)
    model.compile(SGD(0.1), list(LOSSES.values()), metrics=[[], ["accuracy"]],
                  weighted_metrics=[["mae"], ["accuracy"]])
    path = tmp_path / f"m{suffix}"
    model.save(path)
    loaded = gpuprop.load_model(path, device=backend)
    kw = dict(sample_weight=[w, w2], return_dict=True, verbose=0)
    assert_logs_equal(loaded.evaluate(xs, ys, **kw), model.evaluate(xs, ys, **kw), rtol=1e-6)
    seq = gpuprop.Sequential([L.Dense(3, activation="softmax", input_shape=(5,))], device=backend, seed=0)
    seq.compile(SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    seq.save(path)
    back = gpuprop.load_model(path, device=backend)
    want = seq.evaluate(xs[0], ys[1], sample_weight=w, return_dict=True, verbose=0)
    assert_logs_equal(back.evaluate(xs[0], ys[1], sample_weight=w, return_dict=True, verbose=0), want, rtol=1e-6)
    if suffix == ".keras":  # Keras 3 reads the compile config gpuprop wrote: the same weighted metrics
        k = keras_oracle()
        theirs = k.saving.load_model(path)
        assert_logs_equal(theirs.evaluate(xs[0], ys[1], sample_weight=w, return_dict=True, verbose=0), want)


# --- refusals: one clear line each ------------------------------------------------------------------------------
def test_bad_weights_on_functional_models_are_refused_in_one_line():
    xs, ys, w, w2 = data()
    model = two_heads(gpuprop, "cpu")
    model.compile("sgd", list(LOSSES.values()))
    cases = [
        (dict(class_weight={0: 1.0, 1: 2.0}), "class_weight works for a model with one output; this one has 2"),
        (dict(sample_weight=[w]), "sample_weight has 1 entries but the model has 2 outputs"),
        (dict(sample_weight={"priority": w, "kind": w2}), "sample_weight names unknown output.s. kind"),
        (dict(sample_weight=w[:7]), r"sample_weight has shape \(7,\) but the data has 10 samples"),
        (dict(sample_weight=[w, w2[:3]]), r"sample_weight for output 'department' has shape \(3,\) but the data"),
        (dict(sample_weight=w, class_weight={0: 1.0}), "class_weight or sample_weight, not both"),
        (dict(validation_data=(xs, ys, [w, w2], 1)), r"validation_data must be \(x_val, y_val\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            model.fit(xs, ys, verbose=0, **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="sample_weight has 3 entries"):
        model.evaluate(xs, ys, sample_weight=[w, w2, w], verbose=0)
    with pytest.raises(ValueError, match="weighted_metrics names unknown output"):
        model.compile("sgd", list(LOSSES.values()), weighted_metrics={"nope": ["accuracy"]})


# --- on the device: no host sync per step -------------------------------------------------------------------------
def test_weighted_functional_train_step_has_no_host_sync():
    require_cxx()
    sim = get_backend("gpu-sim:1")
    xs, ys, w, w2 = data(8)
    model = two_heads(gpuprop, sim)
    model.compile(SGD(0.1), list(LOSSES.values()), weighted_metrics=[["mae"], ["accuracy"]])
    xb = graph_training.Arrays([cast_input(sim, a) for a in xs])
    yb = graph_training.Arrays([sim.asarray(ys[0], dtype="float32"), sim.asarray(ys[1], dtype="int64")])
    wb = graph_training.Arrays([sim.asarray(w), None])
    for _ in range(2):
        start = sim.host_syncs()
        model.train_step(xb, yb, wb)
        assert sim.host_syncs() - start == 0
    with sim.scope():  # what the loop does inside fit (an on-device entry point)
        acc = Accumulator(sim.xp, model.metrics, model._outputs_logits)
        targets = [yb if t is None else t for t in model._dataset(xs, ys).targets(model.metrics)]
        start = sim.host_syncs()
        loss, out = model.train_step(xb, yb, wb)
        acc.add(loss, out, targets, 8, wb)  # the weighted metrics' sums stay on the device too
        assert sim.host_syncs() - start == 0
    with sim.scope():  # and fit: the host reads per epoch do not grow with the number of steps
        data_ = model._dataset(xs, ys, [w, w2])
    syncs = []
    for batch_size in (8, 2):
        start = sim.host_syncs()
        model.fit(data_, batch_size=batch_size, epochs=1, verbose=0)
        syncs.append(sim.host_syncs() - start)
    assert syncs[0] == syncs[1]


# --- data-parallel: the weighted metrics' Σ w are summed over the ranks too ----------------------------------------
MPI_SCRIPT = '''
import json, sys
import numpy as np
from gpuprop import Sequential, config, distributed, optimizers
from gpuprop.layers import Dense

config.set_floatx("float64")
rng = np.random.default_rng(0)
x, y, w = rng.normal(size=(52, 6)), rng.integers(0, 3, 52), rng.uniform(0, 3, 52)  # 2 batches of 24 and one of 4
model = Sequential([Dense(8, input_shape=(6,), activation="relu"), Dense(3, activation="softmax")], seed=5)
model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"],
              weighted_metrics=["accuracy"])
history = model.fit(x, y, sample_weight=w, batch_size=24, epochs=2, shuffle=False, verbose=0,
                    validation_data=(x[:20], y[:20], w[:20]))
if distributed.rank() == 0:
    with open(sys.argv[1], "w") as f:
        json.dump(history.history, f)
'''


def test_weighted_metrics_on_two_mpi_ranks_equal_one_process(mpi, tmp_path):
    """Rows split over 2 real ranks: the epoch's Σ w·m and Σ w are summed over both, so the logs equal one
    process's (the oracle: the same script without mpiexec)."""
    import json
    import subprocess
    import sys

    from tests.test_cli import REPO
    from tests.test_distributed import TIMEOUT, rank_env

    script = tmp_path / "weighted.py"
    script.write_text(MPI_SCRIPT)
    logs = []
    for prefix, out in (([], tmp_path / "one.json"), ([mpi, "-n", "2"], tmp_path / "two.json")):
        proc = subprocess.run([*prefix, sys.executable, str(script), str(out)], cwd=REPO, env=rank_env(),
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        logs.append(json.loads(out.read_text()))
    one, two = logs
    assert {"weighted_accuracy", "val_weighted_accuracy"} <= set(one)
    assert one["weighted_accuracy"] != one["accuracy"]
    for key, values in one.items():
        np.testing.assert_allclose(two[key], values, rtol=1e-10, err_msg=key)


def test_a_keras_file_with_weighted_metrics_loads_with_them(backend, tmp_path):
    """Keras 3 saves its compile config (weighted_metrics per output included); gpuprop rebuilds it: the same logs."""
    k, ours, theirs = pair(backend)
    xs, ys, w, w2 = data()
    theirs.compile(k.optimizers.SGD(0.1), list(LOSSES.values()), metrics=[[], ["accuracy"]],
                   weighted_metrics=[["mae"], ["accuracy"]])
    theirs.save(tmp_path / "k.keras")
    loaded = gpuprop.load_model(tmp_path / "k.keras", device=backend)
    kw = dict(sample_weight=[w, w2], return_dict=True, verbose=0)
    assert_logs_equal(loaded.evaluate(xs, ys, **kw), theirs.evaluate(xs, ys, **kw))
