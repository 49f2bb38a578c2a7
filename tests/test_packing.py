"""One flat array for all parameters (and one for gradients, one per optimizer slot).

The optimizer then updates the whole model in one set of array calls. That is
only right if every layer keeps writing its gradients into the views it was
given, and if the flat update computes exactly the per-parameter one.
"""

import numpy
import pytest

import gpuprop
from gpuprop import optimizers
from gpuprop.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from gpuprop.models import packing


def _model(backend, optimizer, seed=0):
    model = gpuprop.Sequential([
        Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)), MaxPooling2D(2), BatchNormalization(),
        Flatten(), Dense(7, activation="tanh"), Dropout(0.2), Dense(3, activation="softmax")],
        device=backend, seed=seed)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.build()
    return model


def _data(n=6):
    rng = numpy.random.default_rng(3)
    return rng.standard_normal((n, 8, 8, 2)).astype("float32"), rng.integers(0, 3, n)


def test_every_parameter_and_gradient_is_a_view_of_the_flat_arrays(backend):
    model = _model(backend, "adam")
    flat_p, flat_g = model.packed.params, model.packed.grads
    ids = {}
    for layer in model.layers:
        for name in layer.params:
            assert backend.xp.shares_memory(layer.params[name], flat_p)
            assert backend.xp.shares_memory(layer.grads[name], flat_g)
            ids[(layer.name, name)] = id(layer.grads[name])
    x, y = _data()
    for _ in range(3):
        model.train_on_batch(x, y)
    # no layer rebound a gradient array: the flat update still sees every gradient
    assert {(layer.name, n): id(layer.grads[n]) for layer in model.layers for n in layer.params} == ids
    assert float(backend.to_host(abs(flat_g)).sum()) > 0


@pytest.mark.parametrize("make,exact", [
    (lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), True),
    (lambda: optimizers.AdamW(0.01), True),
    (lambda: optimizers.RMSprop(0.01, centered=True, momentum=0.5), True),
    (lambda: optimizers.Adam(0.01), True),
    # The global norm is one sum over the flat array instead of a sum of per-tensor sums: the
    # same number up to float32 rounding. (Not Adam here: the conv bias before BatchNormalization
    # has a gradient that is pure rounding noise, which Adam scales up to full steps.)
    (lambda: optimizers.SGD(0.05, momentum=0.9, global_clipnorm=0.5), False),
])
def test_flat_update_equals_the_per_parameter_update(backend, make, exact):
    """Same start, same batches: the flat path and the per-parameter path give the same weights."""
    x, y = _data()
    flat, split = _model(backend, make()), _model(backend, make())
    split.optimizer.build(split.params, split.backend)  # no packed arrays: one update per parameter
    assert flat.optimizer._packed is not None and split.optimizer._packed is None
    for _ in range(4):
        flat.train_on_batch(x, y)
        split.train_on_batch(x, y)
    for a, b in zip(flat.get_weights(), split.get_weights()):
        if exact:
            numpy.testing.assert_array_equal(a, b)
        else:
            numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_clipnorm_per_tensor_takes_the_per_parameter_path(backend):
    """clipnorm scales each tensor by its own norm, which one flat array cannot express."""
    x, y = _data()
    model = _model(backend, optimizers.SGD(0.1, clipnorm=1e-3))
    before = [backend.to_host(p).astype("float64") for p in model.params]
    model.train_on_batch(x, y)
    moved = [numpy.linalg.norm(backend.to_host(p) - b) for p, b in zip(model.params, before)]
    # each tensor moved by at most lr · clipnorm (up to rounding), and each did move
    assert max(moved) <= 0.1 * 1e-3 * 1.001 and min(moved) > 0


def test_slots_are_views_and_survive_a_checkpoint(backend, tmp_path):
    x, y = _data()
    model = gpuprop.Sequential([Flatten(input_shape=(8, 8, 2)), Dense(5, activation="relu"),
                                Dense(3, activation="softmax")], device=backend, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    for _ in range(2):
        model.train_on_batch(x, y)
    for slots in model.optimizer.slots:
        for arr in slots.values():
            assert backend.xp.shares_memory(arr, model.optimizer._flat_slots["m"]) or \
                backend.xp.shares_memory(arr, model.optimizer._flat_slots["v"])
    path = tmp_path / "m.npz"
    model.save(path)
    again = gpuprop.models.load_model(path, device=backend)
    model.train_on_batch(x, y)
    again.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), again.get_weights()):
        numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_parameters_of_different_dtypes_are_not_packed(backend):
    layers = [Dense(3, input_shape=(4,)), Dense(2, dtype="float64")]
    model = gpuprop.Sequential(layers, device=backend, seed=0)
    model.compile("sgd", "mse")
    model.build()
    assert model.packed is None and model.optimizer._packed is None
    model.train_on_batch(numpy.ones((2, 4), "float32"), numpy.zeros((2, 2), "float32"))


def test_views_start_on_cache_lines_and_padding_stays_zero(backend):
    model = _model(backend, optimizers.SGD(0.1, momentum=0.9, weight_decay=0.1))
    x, y = _data()
    for _ in range(3):
        model.train_on_batch(x, y)
    covered = numpy.zeros(model.packed.params.size, bool)
    for offset, size, _ in model.packed.views:
        assert (offset * model.packed.params.itemsize) % packing._ALIGN_BYTES == 0
        covered[offset:offset + size] = True
    gaps = backend.to_host(model.packed.params)[~covered]
    assert gaps.size > 0 and not gaps.any()


def test_holds_knows_the_models_own_lists_and_checks_any_other(backend):
    """The model's own lists skip the per-view check; a copy is checked view by view, a stranger is refused."""
    model = _model(backend, "sgd")
    packed = model.packed
    assert model.params is packed.param_views and model.grads is packed.grad_views
    assert packed.holds(model.params, model.grads)
    assert packed.holds(list(model.params), list(model.grads))
    assert not packed.holds(list(reversed(model.params)), model.grads)
    assert not packed.holds([p.copy() for p in model.params], model.grads)
    assert not packed.holds(model.params[:-1], model.grads[:-1])
