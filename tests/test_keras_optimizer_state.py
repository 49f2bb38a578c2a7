"""Every optimizer's state crosses Keras 3's files (.keras, .weights.h5) in both directions.

Oracle: Keras 3 itself (torch backend). A model trains a few steps in one library and is saved; the
other library loads the file and continues on fixed batches, and its weights must match the first
library continuing the same batches from its own state (within 1e-5: the libraries round differently,
and where they place ε differently the difference stays far below that). And gpuprop → .keras →
gpuprop must continue exactly as the .npz checkpoint does.
"""

import warnings

import numpy as np
import pytest

from gpuprop import Sequential, layers, load_model, optimizers
from tests.keras_oracle import keras

pytest.importorskip("h5py", reason="Keras' files need h5py: pip install 'gpuprop[h5]'")

# (id, class name, arguments): the same names and arguments in both libraries. RMSprop with momentum takes a
# tiny ε: gpuprop divides by √v + ε (torch), Keras by √(v + ε), and its momentum sums that difference over
# steps to ~1e-5 at the default ε, a difference of the algorithms that would hide none of the state's.
SETTINGS = [
    ("sgd", "SGD", {"learning_rate": 0.05}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    ("rmsprop_momentum", "RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "epsilon": 1e-10}),
    ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True,
                                   "epsilon": 1e-10}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adamw", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
    ("adagrad", "Adagrad", {"learning_rate": 0.05}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("adamax", "Adamax", {"learning_rate": 0.01}),
    # a large ε, so that Keras' u = gpuprop's u − ε is visible (the algorithms then differ by (1−β₂)ε a step)
    ("adamax_large_epsilon", "Adamax", {"learning_rate": 0.01, "epsilon": 0.05, "beta_2": 0.9999}),
    ("lion", "Lion", {"learning_rate": 0.003}),
]
IDS = [s[0] for s in SETTINGS]
BEFORE, AFTER = 3, 4  # steps before the save, steps after it


def _batches(n=BEFORE + AFTER):
    rng = np.random.default_rng(11)
    return [(rng.standard_normal((8, 4)).astype("float32"), rng.standard_normal((8, 3)).astype("float32"))
            for _ in range(n)]


def _ours(cls, kwargs, backend, frozen=False):
    model = Sequential([layers.Dense(6, activation="tanh", input_shape=(4,), trainable=not frozen),
                        layers.Dense(3)], device=backend, seed=0)
    model.compile(getattr(optimizers, cls)(**kwargs), "mse")
    return model


def _theirs(k, cls, kwargs, frozen=False):
    k.utils.set_random_seed(2)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(6, activation="tanh", trainable=not frozen),
                          k.layers.Dense(3)])
    model.compile(getattr(k.optimizers, cls)(**kwargs), "mse")
    return model


def _steps(model, batches):
    for x, y in batches:
        model.train_on_batch(x, y)


def _keras_weights(k, model):
    return [k.ops.convert_to_numpy(w) for w in model.weights]


def _close(ours, theirs, atol=1e-5):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_keras_continues_what_gpuprop_saved(tmp_path, backend, cls, kwargs):
    k = keras()
    batches = _batches()
    model = _ours(cls, kwargs, backend)
    _steps(model, batches[:BEFORE])
    model.save(tmp_path / "g.keras")
    theirs = k.saving.load_model(str(tmp_path / "g.keras"))
    assert int(theirs.optimizer.iterations) == BEFORE
    assert float(theirs.optimizer.learning_rate) == pytest.approx(kwargs["learning_rate"])
    _steps(model, batches[BEFORE:])
    _steps(theirs, batches[BEFORE:])
    _close(model.get_weights(), _keras_weights(k, theirs))


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_gpuprop_continues_what_keras_saved(tmp_path, backend, cls, kwargs):
    k = keras()
    batches = _batches()
    theirs = _theirs(k, cls, kwargs)
    _steps(theirs, batches[:BEFORE])
    theirs.save(str(tmp_path / "k.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the state loads: no "not loaded" warning
        ours = load_model(tmp_path / "k.keras", device=backend)
    assert ours.optimizer.iterations == BEFORE
    _steps(ours, batches[BEFORE:])
    _steps(theirs, batches[BEFORE:])
    _close(ours.get_weights(), _keras_weights(k, theirs))


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_a_keras_file_resumes_as_the_npz_checkpoint(tmp_path, backend, cls, kwargs):
    """gpuprop → .keras → gpuprop against gpuprop → .npz → gpuprop (the checkpoint keeps gpuprop's own slots)."""
    batches = _batches()
    model = _ours(cls, kwargs, backend)
    _steps(model, batches[:BEFORE])
    model.save(tmp_path / "g.keras")
    model.save(tmp_path / "g.npz")
    via_keras, via_npz = load_model(tmp_path / "g.keras", device=backend), load_model(tmp_path / "g.npz", device=backend)
    assert via_keras.optimizer.iterations == via_npz.optimizer.iterations == BEFORE
    assert via_keras.optimizer.learning_rate == via_npz.optimizer.learning_rate
    _steps(via_keras, batches[BEFORE:])
    _steps(via_npz, batches[BEFORE:])
    for a, b in zip(via_keras.get_weights(), via_npz.get_weights()):
        np.testing.assert_array_equal(a, b)
