"""Keras optimizer state in the cases around the main path (tests/test_keras_optimizer_state.py): frozen layers,
an optimizer that never stepped, Keras' changed learning rate, .weights.h5, schedules, graph models, and what is
refused. Oracle: Keras 3 itself (torch backend), as there.
"""

import warnings

import numpy as np
import pytest

from gpuprop import Sequential, layers, load_model, optimizers
from tests.keras_oracle import keras
from tests.test_keras_optimizer_state import (BEFORE, _batches, _continue_alike, _keras_weights, _ours, _steps,
                                              _theirs)

h5py = pytest.importorskip("h5py", reason="Keras' files need h5py: pip install 'gpuprop[h5]'")


def test_a_frozen_layer_has_no_optimizer_state_in_either_library(tmp_path, backend):
    k = keras()
    batches = _batches()
    kwargs = {"learning_rate": 0.05, "momentum": 0.9}
    model = _ours("SGD", kwargs, backend, frozen=True)
    _steps(model, batches[:BEFORE])
    model.save(tmp_path / "g.keras")
    theirs = k.saving.load_model(str(tmp_path / "g.keras"))
    assert len(theirs.optimizer.variables) == 2 + 2  # iteration, learning rate, momentum of Dense 2's kernel and bias
    _continue_alike(k, model, theirs, batches[BEFORE:])

    twin = _theirs(k, "SGD", kwargs, frozen=True)
    _steps(twin, batches[:BEFORE])
    twin.save(str(tmp_path / "k.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = load_model(tmp_path / "k.keras", device=backend)
    _continue_alike(k, ours, twin, batches[BEFORE:])


def test_an_optimizer_that_never_stepped_crosses_both_ways(tmp_path, backend):
    k = keras()
    batches = _batches()
    kwargs = {"learning_rate": 0.05, "momentum": 0.9}
    model = _ours("SGD", kwargs, backend)
    model.save(tmp_path / "g.keras")
    theirs = k.saving.load_model(str(tmp_path / "g.keras"))
    assert int(theirs.optimizer.iterations) == 0
    _continue_alike(k, model, theirs, batches)

    twin = _theirs(k, "SGD", kwargs)
    twin.save(str(tmp_path / "k.keras"))  # Keras has built no slots yet: iteration and learning rate alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = load_model(tmp_path / "k.keras", device=backend)
    _continue_alike(k, ours, twin, batches)


def test_the_learning_rate_keras_changed_carries_over(tmp_path, backend):
    """A callback (ReduceLROnPlateau...) changes Keras' learning-rate variable: gpuprop resumes at that rate."""
    k = keras()
    batches = _batches()
    twin = _theirs(k, "SGD", {"learning_rate": 0.05, "momentum": 0.9})
    _steps(twin, batches[:BEFORE])
    twin.optimizer.learning_rate.assign(0.02)
    twin.save(str(tmp_path / "k.keras"))
    ours = load_model(tmp_path / "k.keras", device=backend)
    assert ours.optimizer.learning_rate == pytest.approx(0.02)
    _continue_alike(k, ours, twin, batches[BEFORE:])


@pytest.mark.parametrize("cls,kwargs", [("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "epsilon": 1e-10}),
                                        ("Adam", {"learning_rate": 0.01})], ids=["rmsprop_momentum", "adam"])
def test_weights_h5_carries_the_optimizer_both_ways(tmp_path, backend, cls, kwargs):
    """Keras' save_weights writes the optimizer into .weights.h5 and load_weights reads it back when built."""
    k = keras()
    batches = _batches()
    model = _ours(cls, kwargs, backend)
    _steps(model, batches[:BEFORE])
    model.save_weights(tmp_path / "g.weights.h5")
    theirs = _theirs(k, cls, kwargs)
    theirs.optimizer.build(theirs.trainable_variables)  # Keras loads an optimizer's state once it has slots
    theirs.load_weights(str(tmp_path / "g.weights.h5"))
    assert int(theirs.optimizer.iterations) == BEFORE
    _continue_alike(k, model, theirs, batches[BEFORE:])

    twin = _theirs(k, cls, kwargs)
    _steps(twin, batches[:BEFORE])
    twin.save_weights(str(tmp_path / "k.weights.h5"))
    ours = _ours(cls, kwargs, backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.load_weights(tmp_path / "k.weights.h5")
    assert ours.optimizer.iterations == BEFORE
    _continue_alike(k, ours, twin, batches[BEFORE:])


def test_state_of_another_optimizer_is_refused_in_one_line_and_kept_out(tmp_path, backend):
    k = keras()
    twin = _theirs(k, "SGD", {"learning_rate": 0.05, "momentum": 0.9})
    _steps(twin, _batches()[:BEFORE])
    twin.save_weights(str(tmp_path / "k.weights.h5"))
    ours = _ours("Adam", {"learning_rate": 0.01}, backend)
    with pytest.warns(UserWarning, match=r"optimizer's saved state was not loaded \(the file holds 4 optimizer "
                                         r"arrays, this Adam keeps 8\)"):
        ours.load_weights(tmp_path / "k.weights.h5")
    assert ours.optimizer.iterations == 0 and ours.optimizer.learning_rate == 0.01
    assert all(not np.any(ours.backend.to_host(a)) for a in ours.optimizer.variables())
    np.testing.assert_array_equal(ours.get_weights()[0], _keras_weights(k, twin)[0])  # the weights did load


def test_under_a_schedule_weights_h5_holds_no_learning_rate_variable(tmp_path, backend):
    """Keras keeps no learning-rate variable under a schedule (iteration, then the slots): the same both ways."""
    k = keras()
    batches = _batches()
    model = Sequential([layers.Dense(6, activation="tanh", input_shape=(4,)), layers.Dense(3)], device=backend, seed=0)
    model.compile(optimizers.Adam(optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)), "mse")
    _steps(model, batches[:BEFORE])
    model.save_weights(tmp_path / "g.weights.h5")
    theirs = _theirs(k, "Adam", {"learning_rate": k.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)})
    theirs.optimizer.build(theirs.trainable_variables)
    assert len(theirs.optimizer.variables) == 1 + 4 * 2
    theirs.load_weights(str(tmp_path / "g.weights.h5"))
    _continue_alike(k, model, theirs, batches[BEFORE:])

    twin = _theirs(k, "Adam", {"learning_rate": k.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)})
    _steps(twin, batches[:BEFORE])
    twin.save_weights(str(tmp_path / "k.weights.h5"))
    ours = Sequential([layers.Dense(6, activation="tanh", input_shape=(4,)), layers.Dense(3)], device=backend, seed=1)
    ours.compile(optimizers.Adam(optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)), "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.load_weights(tmp_path / "k.weights.h5")
    assert ours.optimizer.iterations == BEFORE
    _continue_alike(k, ours, twin, batches[BEFORE:])


def test_momentum_under_a_schedule_is_converted_with_a_warning(tmp_path, backend):
    """Keras' SGD momentum sums −ηᵢ·gᵢ, each step's own rate; torch's buffer holds no rate: one line says so."""
    model = Sequential([layers.Dense(3, input_shape=(4,))], device=backend, seed=0)
    model.compile(optimizers.SGD(optimizers.schedules.StepDecay(0.1, 2), momentum=0.9), "mse")
    _steps(model, _batches()[:BEFORE])
    with pytest.warns(UserWarning, match="approximate: its momentum was converted with this step's learning rate"):
        model.save_weights(tmp_path / "g.weights.h5")


def test_an_optimizer_keras_lacks_is_left_out_with_a_warning(tmp_path, backend):
    class HalfStep(optimizers.Optimizer):
        """p ← p − η·g/2: an optimizer of the user's own, which Keras has no layout for."""

        def update_step(self, p, g, slots, lr):
            p -= 0.5 * lr * g

    model = Sequential([layers.Dense(3, input_shape=(4,))], device=backend, seed=0)
    model.compile(HalfStep(0.1), "mse")
    _steps(model, _batches()[:BEFORE])
    with pytest.warns(UserWarning, match="HalfStep's state is not written to Keras' file"):
        model.save_weights(tmp_path / "g.weights.h5")
    with h5py.File(tmp_path / "g.weights.h5", "r") as f:
        assert "optimizer" not in f and "layers/dense/vars/0" in f


def test_a_graph_model_keeps_keras_order_of_optimizer_variables(tmp_path, backend):
    """Two inputs, a shared layer, BatchNormalization: RMSprop's three kinds of slot, each kind in Keras' order."""
    from gpuprop import Input, Model
    from tests.test_keras_functional_files import _data, _graph

    k = keras()
    x, y = _data(32)
    batches = [([a[i:i + 8] for a in x], [t[i:i + 8] for t in y]) for i in range(0, 32, 8)]
    kwargs = {"learning_rate": 0.01, "momentum": 0.5, "centered": True, "epsilon": 1e-10}
    model = _graph(layers, lambda shape, name: Input(shape=shape, name=name), Model, 0.0, device=backend, seed=0)
    model.compile(optimizers.RMSprop(**kwargs), ["mse", "sparse_categorical_crossentropy"])
    _steps(model, batches[:2])
    model.save(tmp_path / "g.keras")
    theirs = k.saving.load_model(str(tmp_path / "g.keras"))
    _continue_alike(k, model, theirs, batches[2:])
    theirs.save(str(tmp_path / "k.keras"))
    ours = load_model(tmp_path / "k.keras", device=backend)
    _continue_alike(k, ours, theirs, batches[:2])
