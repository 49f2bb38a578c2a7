"""Conv2D, MaxPooling2D and AveragePooling2D: gradients, PyTorch parity, Keras geometry, training."""

import math

import numpy
import pytest

import gpuprop
from gpuprop.gradcheck import check_layer
from gpuprop.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D

SIZES = [(7, 5, 1), (7, 5, 3)]


def tf_same_pads(size, k, s):
    """TF's 'SAME' padding, written out independently of the library: odd pixel after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def build(layer, backend, shape, dtype="float64", seed=0):
    layer.dtype = dtype
    layer.build(shape, backend, numpy.random.default_rng(seed))
    layer.need_input_grad = True
    return layer


def run(layer, backend, x, dy):
    """Training forward and backward; host copies of y, dx and every parameter gradient."""
    y = layer(backend.asarray(x), training=True)
    y_host = backend.to_host(y).copy()
    g = backend.asarray(dy.copy())
    if layer.activation is not None:
        g = layer.activation.backward(g)
    dx = layer.backward(g)
    return y_host, backend.to_host(dx).copy(), {k: backend.to_host(v).copy() for k, v in layer.grads.items()}


def close(a, b, tol=1e-9):
    a, b = numpy.asarray(a), numpy.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(numpy.abs(b).max(initial=0.0)))
    assert float(numpy.abs(a - b).max(initial=0.0)) <= tol * scale


# --- geometry ------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,k,s,expected", [(7, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (5, 2, 1, (0, 1)),
                                               (5, 3, 1, (1, 1)), (4, 2, 2, (0, 0)), (7, 2, 3, (0, 1))])
def test_same_padding_is_tf_formula(size, k, s, expected):
    from gpuprop.layers.conv import same_pads

    assert tf_same_pads(size, k, s) == expected
    assert same_pads(size, k, s) == expected


@pytest.mark.parametrize("padding,strides,expected", [("valid", 1, (5, 3)), ("same", 1, (7, 5)),
                                                      ("valid", 2, (3, 2)), ("same", 2, (4, 3))])
def test_conv_output_shape(backend, padding, strides, expected):
    layer = build(Conv2D(4, 3, strides=strides, padding=padding), backend, (7, 5, 2), dtype="float32")
    assert layer.output_shape == (*expected, 4)
    y = layer.forward(backend.asarray(numpy.ones((2, 7, 5, 2), "float32")))
    assert tuple(y.shape) == (2, *expected, 4) and y.dtype == numpy.float32
    assert tuple(layer.params["kernel"].shape) == (3, 3, 2, 4) and tuple(layer.params["bias"].shape) == (4,)


def test_arguments_are_lenient_and_checked():
    assert Conv2D(2, (2, 3), strides=2, padding="SAME").padding == "same"
    assert Conv2D(2, 3, padding="Valid").kernel_size == (3, 3)
    assert MaxPooling2D(3).strides == (3, 3)
    assert AveragePooling2D((2, 3), strides=1).strides == (1, 1)
    with pytest.raises(ValueError, match="padding"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(2, 5).compute_output_shape((4, 4, 1))


# --- Conv2D -----------------------------------------------------------------------------------------
CONV_CASES = [(shape, k, s, p) for shape in SIZES for k in [(3, 3), (2, 3)] for s in (1, 2) for p in ("valid", "same")]


@pytest.mark.parametrize("shape,kernel,strides,padding", CONV_CASES)
def test_conv_gradcheck(backend, float64, shape, kernel, strides, padding):
    layer = Conv2D(4, kernel, strides=strides, padding=padding, activation="tanh")
    x = numpy.random.default_rng(1).standard_normal((2, *shape))
    errors = check_layer(layer, x, backend=backend)
    assert set(errors) == {"input", "kernel", "bias"}
    assert max(errors.values()) <= 1e-6, errors


def test_conv_gradcheck_fused_relu_without_bias(backend, float64):
    layer = Conv2D(3, (2, 3), strides=(2, 1), padding="same", activation="relu", use_bias=False)
    x = numpy.random.default_rng(2).standard_normal((3, 7, 5, 2))
    errors = check_layer(layer, x, backend=backend)
    assert set(errors) == {"input", "kernel"}
    assert max(errors.values()) <= 1e-6, errors


@pytest.mark.parametrize("shape,kernel,strides,padding", CONV_CASES)
@pytest.mark.parametrize("activation", [None, "relu"])
def test_conv_matches_torch(backend, float64, shape, kernel, strides, padding, activation):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = numpy.random.default_rng(3)
    layer = build(Conv2D(5, kernel, strides=strides, padding=padding, activation=activation,
                         bias_initializer="glorot_uniform"), backend, shape)
    x = rng.standard_normal((3, *shape))
    dy = rng.standard_normal((3, *layer.output_shape))
    y, dx, grads = run(layer, backend, x, dy)

    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    w = torch.tensor(backend.to_host(layer.params["kernel"])).permute(3, 2, 0, 1).contiguous().requires_grad_()
    b = torch.tensor(backend.to_host(layer.params["bias"])).requires_grad_()
    xin = xt
    if padding == "same":  # torch pads symmetrically; Keras puts the odd pixel bottom/right
        (pt, pb), (pl, pr) = tf_same_pads(shape[0], kernel[0], strides), tf_same_pads(shape[1], kernel[1], strides)
        xin = F.pad(xt, (pl, pr, pt, pb))
    yt = F.conv2d(xin, w, b, stride=strides)
    if activation == "relu":
        yt = F.relu(yt)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    close(y, yt.detach().permute(0, 2, 3, 1).numpy())
    close(dx, xt.grad.permute(0, 2, 3, 1).numpy())
    close(grads["kernel"], w.grad.permute(2, 3, 1, 0).numpy())
    close(grads["bias"], b.grad.numpy())


def test_first_conv_skips_input_gradient(backend):
    layer = build(Conv2D(4, 3, padding="same"), backend, (6, 6, 2), dtype="float32")
    layer.need_input_grad = False
    rng = numpy.random.default_rng(4)
    y = layer.forward(backend.asarray(rng.standard_normal((2, 6, 6, 2)).astype("float32")), training=True)
    assert layer.backward(backend.asarray(numpy.ones(tuple(y.shape), "float32"))) is None
    # db = Σ dy over batch and pixels even when dx is skipped
    numpy.testing.assert_allclose(backend.to_host(layer.grads["bias"]), numpy.full(4, 2 * 36.0), rtol=1e-6)


def test_inference_between_forward_and_backward_keeps_gradients(backend, float64):
    """Reused scratch buffers must not let an inference pass corrupt a pending backward."""
    rng = numpy.random.default_rng(5)
    x1, x2 = rng.standard_normal((2, 2, 7, 5, 3))
    dy = rng.standard_normal((2, 7, 5, 4))
    ref = build(Conv2D(4, 3, padding="same"), backend, (7, 5, 3))
    _, dx_ref, g_ref = run(ref, backend, x1, dy)
    layer = build(Conv2D(4, 3, padding="same"), backend, (7, 5, 3))
    layer.forward(backend.asarray(x1), training=True)
    layer.forward(backend.asarray(x2), training=False)
    dx = backend.to_host(layer.backward(backend.asarray(dy.copy())))
    close(dx, dx_ref, 1e-12)
    close(backend.to_host(layer.grads["kernel"]), g_ref["kernel"], 1e-12)


# --- pooling -------------------------------------------------------------------------------------------
POOL_CASES = [((2, 2), None, "valid"), ((2, 2), None, "same"), ((3, 3), (2, 2), "valid"), ((3, 3), (1, 1), "same"),
              ((2, 3), (2, 1), "same"), ((3, 2), (1, 2), "valid")]


def distinct(shape, seed):
    """Values at least 0.01 apart, shuffled: no ties, and ±1e-6 never reorders them."""
    n = math.prod(shape)
    return (numpy.random.default_rng(seed).permutation(n) * 0.01 - n * 0.005).reshape(shape)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("pool,strides,padding", POOL_CASES)
@pytest.mark.parametrize("shape", [(7, 5, 1), (7, 5, 3), (8, 6, 2)])
def test_pool_gradcheck(backend, float64, cls, pool, strides, padding, shape):
    x = distinct((2, *shape), 6)
    errors = check_layer(cls(pool, strides=strides, padding=padding), x, backend=backend)
    assert set(errors) == {"input"} and errors["input"] <= 1e-6, errors


def torch_pool(torch, cls, xt, pool, strides, padding, shape):
    F = torch.nn.functional
    strides = strides or pool
    if padding == "same":
        (pt, pb), (pl, pr) = tf_same_pads(shape[0], pool[0], strides[0]), tf_same_pads(shape[1], pool[1], strides[1])
        pads = (pl, pr, pt, pb)
    else:
        pads = (0, 0, 0, 0)
    if cls is MaxPooling2D:
        return F.max_pool2d(F.pad(xt, pads, value=-math.inf), pool, strides)
    # Keras averages over the valid (unpadded) elements only
    area = pool[0] * pool[1]
    total = F.avg_pool2d(F.pad(xt, pads), pool, strides) * area
    count = F.avg_pool2d(F.pad(torch.ones_like(xt), pads), pool, strides) * area
    return total / count


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("pool,strides,padding", POOL_CASES)
@pytest.mark.parametrize("shape", [(7, 5, 1), (7, 5, 3), (8, 6, 2)])
def test_pool_matches_torch(backend, float64, cls, pool, strides, padding, shape):
    torch = pytest.importorskip("torch")
    layer = build(cls(pool, strides=strides, padding=padding), backend, shape)
    rng = numpy.random.default_rng(7)
    x = rng.standard_normal((3, *shape))
    dy = rng.standard_normal((3, *layer.output_shape))
    y, dx, _ = run(layer, backend, x, dy)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    yt = torch_pool(torch, cls, xt, pool, strides, padding, shape)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    close(y, yt.detach().permute(0, 2, 3, 1).numpy())
    close(dx, xt.grad.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("pool,strides", [((2, 2), None), ((3, 3), (1, 1))])
def test_max_pool_ties_route_to_first_maximum(backend, float64, pool, strides):
    """All-equal windows: the gradient goes once, to the first element (row-major), as in PyTorch."""
    torch = pytest.importorskip("torch")
    x = numpy.round(numpy.random.default_rng(8).standard_normal((2, 6, 5, 2)))  # many ties
    x[0, :4, :4, 0] = 1.0
    layer = build(MaxPooling2D(pool, strides=strides), backend, x.shape[1:])
    dy = numpy.random.default_rng(9).standard_normal((2, *layer.output_shape))
    _, dx, _ = run(layer, backend, x, dy)
    numpy.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-12)  # no gradient duplicated or lost
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    torch.nn.functional.max_pool2d(xt, pool, strides or pool).backward(torch.tensor(dy).permute(0, 3, 1, 2))
    close(dx, xt.grad.permute(0, 2, 3, 1).numpy())


def test_pool_drops_remainder_and_passes_no_gradient_there(backend):
    layer = build(MaxPooling2D(2), backend, (7, 5, 1), dtype="float32")
    x = numpy.arange(70, dtype="float32").reshape(2, 7, 5, 1)
    y = layer.forward(backend.asarray(x), training=True)
    assert tuple(y.shape) == (2, 3, 2, 1)
    numpy.testing.assert_array_equal(backend.to_host(y)[0, :, :, 0], [[6, 8], [16, 18], [26, 28]])
    dx = backend.to_host(layer.backward(backend.asarray(numpy.ones((2, 3, 2, 1), "float32"))))
    assert dx[:, 6, :, :].sum() == 0 and dx[:, :, 4, :].sum() == 0 and dx.sum() == 12


def test_predict_outputs_are_not_reused_buffers(backend):
    """Inference outputs are fresh arrays: predict keeps every batch's, so none may alias another."""
    model = gpuprop.Sequential([Conv2D(3, 3, padding="same", activation="relu", input_shape=(7, 5, 2)),
                                MaxPooling2D(2)], device=backend, seed=0)
    x = numpy.random.default_rng(10).standard_normal((9, 7, 5, 2)).astype("float32")
    numpy.testing.assert_allclose(model.predict(x, batch_size=2), model.predict(x, batch_size=9), rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: MaxPooling2D(2), lambda: AveragePooling2D(2),
                                  lambda: Conv2D(4, 3, padding="same"), lambda: Conv2D(4, (2, 3), strides=2)])
def test_reused_gradient_buffer_is_clean_every_step(backend, float64, make):
    """backward's dx buffer is reused; a caller scribbling on it must not leak into the next step."""
    layer = build(make(), backend, (7, 5, 3))  # 7×5 with 2×2 pools: the last row and column get no gradient
    x = distinct((2, 7, 5, 3), 11)
    dy = numpy.random.default_rng(12).standard_normal((2, *layer.output_shape))
    _, expected, _ = run(layer, backend, x, dy)
    layer.forward(backend.asarray(x), training=True)
    scribbled = layer.backward(backend.asarray(dy.copy()))
    scribbled[...] = 123.0  # allowed: the next layer's backward may overwrite its dy in place
    _, again, _ = run(layer, backend, x, dy)
    close(again, expected, 1e-12)


# --- configs and training ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [
    Conv2D(8, (2, 3), strides=(2, 1), padding="same", activation="relu", use_bias=False, input_shape=(9, 9, 3)),
    Conv2D(4, 3, activation="tanh", kernel_initializer="he_normal"),
    MaxPooling2D((3, 2), strides=(1, 2), padding="same"), AveragePooling2D(3, padding="valid")])
def test_config_round_trip(layer):
    import json

    cfg = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg


def quadrant_images(n=600, size=12, seed=0):
    """Three classes by which quadrant (top-left, top-right, bottom-left) is bright, with noise."""
    rng = numpy.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 0.4, (n, size, size, 1))
    half = size // 2
    for cls, (r, c) in enumerate([(0, 0), (0, half), (half, 0)]):
        x[y == cls, r:r + half, c:c + half, 0] += 0.6
    return x.astype("float32"), y


def test_cnn_learns_quadrants(backend):
    x, y = quadrant_images()
    model = gpuprop.Sequential([
        Conv2D(8, 3, activation="relu", input_shape=(12, 12, 1)), MaxPooling2D(2),
        Conv2D(16, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")],
        device=backend, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    assert history.history["accuracy"][-1] >= 0.95, history.history
    assert history.history["loss"][-1] < history.history["loss"][0]
