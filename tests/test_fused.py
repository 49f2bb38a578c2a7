"""Conv2D(relu) + MaxPooling2D run as one step with the ReLU after the pool.

The model must compute exactly what the two layers compute one after the other,
forward and backward, including windows whose values are all negative or tie.
"""

import numpy
import pytest

import gpuprop
from gpuprop.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D
from gpuprop.layers.fused import ConvReluPool, fuse


def _pair(backend, seed=0, **pool):
    conv = Conv2D(3, 3, activation="relu", padding="same", input_shape=(7, 6, 2))
    model = gpuprop.Sequential([conv, MaxPooling2D(**({"pool_size": 2} | pool)), Flatten(), Dense(2)],
                               device=backend, seed=seed)
    model.compile("sgd", "mse")
    model.build()
    return model


def _reference(model, x, dy):
    """The same layers stepped one by one, as written: ReLU inside the convolution."""
    conv, pool = model.layers[0], model.layers[1]
    y = pool.forward(conv.forward(x, training=True), training=True)
    dx = conv.backward(pool.backward(dy.copy()))
    return y, dx, conv.grads["kernel"].copy(), conv.grads["bias"].copy()


@pytest.mark.parametrize("pool", [{}, {"strides": 1}, {"pool_size": 3, "padding": "same"}])
def test_fused_step_equals_the_two_layers(backend, float64, pool):
    model = _pair(backend, **pool)
    (step,) = [s for s in model._train_steps if isinstance(s, ConvReluPool)]
    model.layers[0].need_input_grad = True  # compare dx as well
    rng = numpy.random.default_rng(5)
    x = numpy.round(rng.standard_normal((4, 7, 6, 2)), 1)  # coarse values: ties, all-negative windows
    x = backend.asarray(x)
    out_shape = (4, *model.layers[1].output_shape)
    dy = backend.asarray(rng.standard_normal(out_shape))
    y_ref, dx_ref, gk_ref, gb_ref = _reference(model, x, dy)
    y = step.forward(x, training=True).copy()
    dx = step.backward(dy.copy())
    h = backend.to_host
    assert (h(y_ref) == 0).any() and (h(y_ref) > 0).any()  # both sides of the ReLU are exercised
    numpy.testing.assert_array_equal(h(y), h(y_ref))
    numpy.testing.assert_allclose(h(dx), h(dx_ref), rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(h(model.layers[0].grads["kernel"]), h(gk_ref), rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(h(model.layers[0].grads["bias"]), h(gb_ref), rtol=1e-12, atol=1e-12)


def test_fused_model_gradients_match_finite_differences(backend, float64):
    model = _pair(backend)
    x = numpy.random.default_rng(6).standard_normal((3, 7, 6, 2))
    y = numpy.random.default_rng(7).standard_normal((3, 2))
    errors = gpuprop.gradcheck(model, x, y)
    assert max(errors.values()) < 1e-6, errors


def test_only_relu_conv_then_max_pool_is_fused():
    relu_conv, plain_conv = Conv2D(2, 3, activation="relu"), Conv2D(2, 3)
    mp, ap = MaxPooling2D(2), AveragePooling2D(2)
    assert [type(s) for s in fuse([relu_conv, mp])] == [ConvReluPool]
    assert fuse([plain_conv, mp]) == [plain_conv, mp]
    assert fuse([relu_conv, ap]) == [relu_conv, ap]
    assert fuse([mp, relu_conv]) == [mp, relu_conv]


def test_a_layer_called_alone_keeps_its_relu(backend):
    """Fusing is the model's schedule: conv(x) on its own still applies its ReLU."""
    model = _pair(backend)
    x = backend.asarray(numpy.random.default_rng(8).standard_normal((2, 7, 6, 2)).astype("float32"))
    assert float(backend.to_host(model.layers[0](x)).min()) == 0.0
    assert model.layers[0].get_config()["activation"] == "relu"
