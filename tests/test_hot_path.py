"""The shortcuts a training step takes for speed compute what the plain path computes.

Softmax regression's step lasts ~60 µs on a CPU, so the step caches what it can
(the last batch's row constants, a ones vector for bias gradients, the learning
rate as a dtype scalar) and skips conversions that change nothing (integer
labels are used as they come). Each cache must follow a change of shape, dtype
or learning rate, and each skipped conversion must give the same numbers.
"""

import numpy
import pytest

import gpuprop
from gpuprop import losses, optimizers
from gpuprop.layers import Dense
from gpuprop.optimizers import schedules


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sum_batch_is_the_sum_over_the_batch_for_every_shape_in_turn(backend, dtype):
    ops, rng = backend.ops, numpy.random.default_rng(0)
    # alternating shapes and dtypes: the cached ones vector must follow each change
    for n, k, dt in [(32, 10, dtype), (5, 10, dtype), (32, 10, dtype), (128, 512, dtype), (1, 3, dtype),
                     (32, 10, "float64" if dtype == "float32" else "float32")]:
        host = rng.standard_normal((n, k)).astype(dt)
        out = backend.xp.empty(k, dtype=dt)
        got = ops.sum_batch(backend.asarray(host), out=out)
        assert got is out or backend.xp.shares_memory(got, out)
        numpy.testing.assert_allclose(backend.to_host(out), host.astype("float64").sum(axis=0),
                                      rtol=1e-5 if dt == "float32" else 1e-12, atol=1e-5 if dt == "float32" else 1e-12)


def test_sum_batch_into_another_dtype_still_sums(backend):
    host = numpy.arange(12.0).reshape(4, 3)
    out = backend.xp.empty(3, dtype="float32")
    backend.ops.sum_batch(backend.asarray(host, dtype="float64"), out=out)
    numpy.testing.assert_array_equal(backend.to_host(out), numpy.array([18, 22, 26], "float32"))


def test_a_dense_bias_gradient_is_the_batch_sum_of_dy(backend, float64):
    layer = Dense(4, input_shape=(3,))
    model = gpuprop.Sequential([layer], device=backend, seed=0)
    model.build()
    x = backend.asarray(numpy.random.default_rng(1).standard_normal((6, 3)))
    dy = numpy.random.default_rng(2).standard_normal((6, 4))
    layer.forward(x, training=True)
    layer.backward(backend.asarray(dy.copy()))
    numpy.testing.assert_allclose(backend.to_host(layer.grads["bias"]), dy.sum(axis=0), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                   "float32", "float64"])
@pytest.mark.parametrize("column", [False, True], ids=["flat", "column"])
def test_labels_of_every_dtype_give_the_int64_loss_and_gradient(backend, dtype, column):
    rng = numpy.random.default_rng(4)
    logits = rng.standard_normal((9, 5)).astype("float32")
    labels = rng.integers(0, 5, 9)
    loss = losses.get("sparse_categorical_crossentropy").build(backend)
    want_loss, want_grad = loss.loss_and_grad_from_logits(backend.asarray(labels.astype("int64")),
                                                          backend.asarray(logits))
    given = labels.astype(dtype).reshape(-1, 1) if column else labels.astype(dtype)
    got_loss, got_grad = loss.loss_and_grad_from_logits(backend.asarray(given), backend.asarray(logits))
    assert backend.scalar(got_loss) == backend.scalar(want_loss)
    numpy.testing.assert_array_equal(backend.to_host(got_grad), backend.to_host(want_grad))


def test_row_constants_follow_the_batch_size(backend, float64):
    """Alternating batch sizes (a short last batch, then a full one) each get their own constants."""
    rng = numpy.random.default_rng(5)
    for n in (8, 3, 8, 1, 8):
        z = rng.standard_normal((n, 4)) * 3
        y = rng.integers(0, 4, n)
        loss, grad = backend.ops.softmax_cross_entropy(backend.asarray(z.copy()), backend.asarray(y))
        p = numpy.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        want = -numpy.log(p[numpy.arange(n), y]).mean()
        p[numpy.arange(n), y] -= 1
        assert backend.scalar(loss) == pytest.approx(want, rel=1e-13)
        numpy.testing.assert_allclose(backend.to_host(grad), p / n, rtol=1e-12, atol=1e-15)


def test_a_learning_rate_changed_between_steps_is_the_one_used(backend, float64):
    """Plain SGD takes p − η·g with whatever η is set now: a float, an int, then a schedule."""
    model = gpuprop.Sequential([Dense(3, activation="softmax", input_shape=(4,))], device=backend, seed=0)
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.build()
    assert model.optimizer._packed is not None  # the fast path is the one under test
    rng = numpy.random.default_rng(6)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    rates = [0.1, 0.1, 0.02, 1, schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)]
    for step, rate in enumerate(rates):
        model.optimizer.learning_rate = rate
        lr = rate(step) if callable(rate) else rate
        before = backend.to_host(model.packed.params).copy()
        model.train_on_batch(x, y)
        grad = backend.to_host(model.packed.grads)
        numpy.testing.assert_allclose(backend.to_host(model.packed.params), before - lr * grad, rtol=1e-14, atol=1e-15)
    assert model.optimizer.iterations == len(rates)
