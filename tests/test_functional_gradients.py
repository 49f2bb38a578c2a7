"""Backprop through layer graphs against PyTorch autograd and float64 central differences.

Random graphs mix fan-out (one tensor read by 2-3 layers), every merge layer,
a layer called twice (shared weights), nested Sequential and functional models
(one of them called twice), two inputs and two outputs with weighted losses.
The oracle for exact gradients is ``tests/torch_graph.py``, which rebuilds the
same graph from torch operations; the oracle for the math as such is central
differences of the loss, which calls no backward at all.
"""

import numpy as np
import pytest

from gpuprop import Input, Model, Sequential, layers as L
from gpuprop.models import graph, multi_output
from gpuprop.gradcheck import relative_error

W = 4  # every hidden tensor is (batch, W), so any two can be merged
ACTS = ["tanh", "sigmoid", "linear", "gelu"]  # smooth: central differences need no kink nearby
N = 5


def random_graph(seed, backend):
    """Two inputs, two outputs, and a random DAG between them; returns the built float64 model."""
    rng = np.random.default_rng(seed)
    a, b = Input((3,), name="a"), Input((6,), name="b")
    pool = [L.Dense(W, activation="tanh")(a), L.Dense(W, activation="sigmoid")(b)]
    shared = L.Dense(W, activation="tanh", name="shared")
    inner_seq = Sequential([L.Dense(W, activation="tanh", input_shape=(W,)), L.Dense(W)], name="inner_seq",
                           device=backend)
    i1, i2 = Input((W,)), Input((W,))
    inner_fn = Model([i1, i2], L.Multiply()([L.Dense(W, activation="sigmoid")(i1), i2]), name="inner_fn",
                     device=backend, seed=seed)
    merges = [L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum]
    kinds = ["dense", "merge", "concat", "shared", "seq", "fn", "merge", "dense"]
    for kind in [kinds[i] for i in rng.permutation(len(kinds))] + ["merge"]:
        pick = lambda k: [pool[i] for i in rng.choice(len(pool), size=k, replace=len(pool) < k)]  # noqa: E731
        if kind == "dense":
            pool.append(L.Dense(W, activation=ACTS[rng.integers(len(ACTS))])(pick(1)[0]))
        elif kind == "merge":
            cls = merges[rng.integers(len(merges))]
            k = 2 if cls is L.Subtract else int(rng.integers(2, 4))
            pool.append(cls()(pick(k)))
        elif kind == "concat":
            pool.append(L.Dense(W)(L.Concatenate()(pick(2))))
        elif kind == "shared":
            pool.extend(shared(t) for t in pick(2))
        elif kind == "seq":
            pool.append(inner_seq(pick(1)[0]))
        elif kind == "fn":
            pool.extend(inner_fn(pick(2)) for _ in range(2))  # the nested model called twice
    # fan-out: every tensor is read at least once more, so gradients must add up at each
    tail = L.Add()(pool[-3:])
    h = L.Concatenate()([tail, L.Average()(pool[:-3])])
    out1 = L.Dense(2, name="reg")(h)
    out2 = L.Dense(3, activation="softmax", name="cls")(L.Add()([h, h]))
    return Model([a, b], [out1, out2], device=backend, seed=seed)


def _data(seed):
    rng = np.random.default_rng(seed + 100)
    xs = [rng.standard_normal((N, 3)), rng.standard_normal((N, 6))]
    ys = [rng.standard_normal((N, 2)), rng.integers(0, 3, N)]
    return xs, ys


def _compiled(seed, backend, weights=(0.7, 1.3)):
    model = random_graph(seed, backend)
    model.compile("sgd", ["mse", "sparse_categorical_crossentropy"], loss_weights=list(weights))
    return model


def _analytic(model, xs, ys):
    loss, _ = model.compute_gradients(xs, multi_output.device_targets(model, ys))
    leaves = [layer for layer in _leaves(model) if layer.params]
    return float(loss), {(layer.name, id(layer), k): model.backend.to_host(layer.grads[k]).copy()
                         for layer in leaves for k in layer.params}


def _leaves(model):
    from gpuprop.models.nested import leaf_layers

    return leaf_layers(model.layers)


@pytest.mark.parametrize("seed", range(6))
def test_random_graph_matches_torch_autograd(backend, float64, seed):
    torch = pytest.importorskip("torch")
    from tests.torch_graph import torch_loss

    model = _compiled(seed, backend)
    xs, ys = _data(seed)
    loss, grads = _analytic(model, xs, ys)
    t_loss, g = torch_loss(torch, model, xs, ys, ["mse", "sparse_categorical_crossentropy"], [0.7, 1.3])
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= 1e-10 * abs(t_loss.item())
    assert len(grads) >= 10
    for (name, lid, k), got in grads.items():
        want = g.params[lid][k].grad
        assert want is not None, f"{name}.{k} gets no gradient in torch"
        err = relative_error(got, want.numpy())
        assert err <= 1e-8, f"{name}.{k}: relative error {err:.2e} against torch"


@pytest.mark.parametrize("seed", range(3))
def test_random_graph_matches_central_differences(backend, float64, seed):
    model = _compiled(seed, backend)
    xs, ys = _data(seed)
    ys_dev = multi_output.device_targets(model, ys)
    _, grads = _analytic(model, xs, ys)

    def loss():
        values = graph.forward(model._train_plan, model._bind(xs), True)
        return float(multi_output.loss_and_grads(model, ys_dev, values, need_grads=False)[0])

    rng = np.random.default_rng(seed)
    h = 1e-6
    leaves = {id(layer): layer for layer in _leaves(model)}
    for (name, lid, k), analytic in grads.items():
        arr = leaves[lid].params[k].reshape(-1)
        picks = rng.choice(arr.size, size=min(arr.size, 6), replace=False)
        num = []
        for i in picks:
            old = float(arr[i])
            arr[i] = old + h
            up = loss()
            arr[i] = old - h
            down = loss()
            arr[i] = old
            num.append((up - down) / (2 * h))
        err = relative_error(analytic.reshape(-1)[picks], num)
        assert err <= 1e-6, f"{name}.{k}: relative error {err:.2e} against central differences"


def test_shared_layer_gradient_is_the_sum_over_its_calls(backend, float64):
    """y = D(D(x)) with one Dense D: dL/dW must add both calls' contributions (hand-checked with torch)."""
    torch = pytest.importorskip("torch")
    x = Input((3,))
    d = L.Dense(3, activation="tanh")
    model = Model(x, L.Dense(1)(d(d(x))), device=backend, seed=3)
    model.compile("sgd", "mse")
    xs, y = np.random.default_rng(0).standard_normal((4, 3)), np.random.default_rng(1).standard_normal((4, 1))
    model.compute_gradients([xs], model.backend.asarray(y))
    w, b = (torch.tensor(v, requires_grad=True) for v in d.get_weights())
    w2, b2 = (torch.tensor(v) for v in model.layers[2].get_weights())
    h = torch.tanh(torch.tanh(torch.tensor(xs) @ w + b) @ w + b)
    ((h @ w2 + b2 - torch.tensor(y)) ** 2).mean().backward()
    assert relative_error(model.backend.to_host(d.grads["kernel"]), w.grad.numpy()) <= 1e-10
    assert relative_error(model.backend.to_host(d.grads["bias"]), b.grad.numpy()) <= 1e-10


@pytest.mark.parametrize("layer", [L.Add(), L.Subtract(), L.Multiply(), L.Average(), L.Maximum(),
                                   L.Concatenate(axis=1), L.Concatenate(axis=-1)], ids=lambda l: type(l).__name__)
def test_each_merge_layer_backward_against_torch(backend, float64, layer):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((3, 2, 4)) for _ in range(2 if isinstance(layer, L.Subtract) else 3)]
    layer.build([x.shape[1:] for x in xs], backend, rng)
    y = layer.forward([backend.asarray(x) for x in xs], training=True)
    dy = rng.standard_normal(tuple(y.shape))
    dxs = layer.backward(backend.asarray(dy.copy()))
    from tests.torch_graph import TorchGraph

    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    ty = TorchGraph(torch).primitive(layer, txs)
    assert relative_error(backend.to_host(y), ty.detach().numpy()) <= 1e-12
    ty.backward(torch.tensor(dy))
    for dx, tx in zip(dxs, txs):
        assert relative_error(backend.to_host(dx), tx.grad.numpy()) <= 1e-12


@pytest.mark.parametrize("make", [lambda: L.GlobalAveragePooling2D(), lambda: L.GlobalMaxPooling2D(),
                                  lambda: L.GlobalAveragePooling2D(keepdims=True), lambda: L.Rescaling(0.5, 0.1),
                                  lambda: L.LeakyReLU(), lambda: L.LeakyReLU(0.1), lambda: L.ReLU(), lambda: L.Softmax()],
                         ids=["gap", "gmp", "gap_keepdims", "rescaling", "leaky", "leaky01", "relu", "softmax"])
def test_new_single_input_layers_against_torch(backend, float64, make):
    torch = pytest.importorskip("torch")
    from tests.torch_graph import TorchGraph

    layer = make()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    layer.build(x.shape[1:], backend, rng)
    y = layer.forward(backend.asarray(x), training=True)
    dy = rng.standard_normal(tuple(y.shape))
    dx = layer.backward(backend.asarray(dy.copy()))
    tx = torch.tensor(x, requires_grad=True)
    ty = TorchGraph(torch).primitive(layer, tx)
    assert relative_error(backend.to_host(y), ty.detach().numpy()) <= 1e-12
    ty.backward(torch.tensor(dy))
    assert relative_error(backend.to_host(dx), tx.grad.numpy()) <= 1e-12


def test_worked_example_of_docs_backprop(backend, float64):
    """docs/backprop.md §2.1: u = w·x fans out to Add and tanh; dL/dw = (w + tanh w)(2 − tanh²w) = 1.718772."""
    x = Input((1,))
    u = L.Dense(1, use_bias=False, kernel_initializer="ones")(x)
    model = Model(x, L.Add()([u, L.Activation("tanh")(u)]), device=backend, seed=0)
    model.set_weights([np.array([[0.5]])])
    model.compile("sgd", "half_mse")  # L = z²/2 for one sample with target 0
    loss, _ = model.compute_gradients(np.ones((1, 1)), backend.asarray(np.zeros((1, 1))))
    assert float(loss) == pytest.approx(0.462835, abs=1e-6)
    assert float(backend.to_host(model.layers[1].grads["kernel"])[0, 0]) == pytest.approx(1.718772, abs=1e-6)


def test_gpuprop_gradcheck_takes_a_graph_model(backend, float64):
    """gradcheck(model, x, y) on a functional Model runs the graph, not a chain of its steps."""
    from gpuprop import gradcheck

    model = _compiled(1, backend)
    xs, ys = _data(1)
    errors = gradcheck(model, xs, ys)
    assert len(errors) >= 10 and max(errors.values()) <= 1e-6, errors
