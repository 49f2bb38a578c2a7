"""Gradient checking: analytic backward against float64 central differences.

For a layer we reduce its output to a scalar with a fixed random projection,
L = Σ R ⊙ f(x), so dL/dy = R and one backward gives every gradient; the
numeric estimate is (L(θ + h) − L(θ − h)) / 2h per element. The relative error
‖analytic − numeric‖ / max(‖analytic‖ + ‖numeric‖, tiny) is returned per
input and parameter. Everything runs in float64 on the chosen backend.
"""

import numpy

from .backend import get_backend
from .layers.base import Layer
from .losses import Loss


def relative_error(a, b):
    a, b = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(b, dtype=numpy.float64)
    denom = numpy.linalg.norm(a) + numpy.linalg.norm(b)
    return float(numpy.linalg.norm(a - b) / denom) if denom > 1e-300 else 0.0


def _numeric(f, arr, xp, h, picks):
    """Central differences of scalar ``f()`` w.r.t. the entries ``picks`` of ``arr`` (changed in place, restored)."""
    flat = arr.reshape(-1)
    out = numpy.zeros(len(picks))
    for j, i in enumerate(picks):
        old = flat[i].item()
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        out[j] = (up - down) / (2 * h)
    return out


def _picks(size, max_checks, rng):
    return numpy.arange(size) if size <= max_checks else numpy.sort(rng.choice(size, max_checks, replace=False))


def check_layer(layer, x, backend="cpu", h=1e-6, max_checks=64, seed=0):
    """{'input': err, '<param>': err, ...} for ``layer`` at input ``x`` (host or device array)."""
    backend = get_backend(backend)
    with backend.scope():  # on a GPU the layer's arrays are made and used on the backend's device
        return _check_layer(layer, x, backend, h, max_checks, seed)


def _check_layer(layer, x, backend, h, max_checks, seed):
    xp = backend.xp
    rng = numpy.random.default_rng(seed)
    x = backend.asarray(numpy.asarray(backend.to_host(x), dtype=numpy.float64))
    if not layer.built:
        layer.dtype = "float64"
        layer.build(tuple(x.shape[1:]), backend, rng)
    _require_float64(layer.params.values(), f"layer {layer.name or type(layer).__name__}")
    layer.need_input_grad = True
    steps = [layer] + ([layer.activation] if layer.activation is not None else [])
    rng_state = _freeze_rngs(steps, backend)

    def run(train=True):
        _restore_rngs(steps, backend, rng_state)
        y = x
        for s in steps:
            y = s.forward(y, training=train)
        return y

    y = run()
    # its own stream: a projection equal to x would hide errors (BatchNorm's dx ⟂ x)
    proj = backend.asarray(numpy.random.default_rng([seed, 1]).standard_normal(tuple(y.shape)))

    def loss():
        return float((run() * proj).sum())

    g = proj.copy()
    for s in reversed(steps):
        g = s.backward(g)
    analytic = {"input": backend.to_host(g)}
    analytic.update({k: backend.to_host(v).copy() for k, v in layer.grads.items()})
    errors = {}
    for name, arr in [("input", x), *layer.params.items()]:
        picks = _picks(arr.size, max_checks, rng)
        num = _numeric(loss, arr, xp, h, picks)
        errors[name] = relative_error(analytic[name].reshape(-1)[picks], num)
    return errors


def check_loss(loss, y_true, y_pred, backend="cpu", h=1e-6, from_logits=None):
    """{'y_pred': err} for ``loss.loss_and_grad`` (the logits form when ``from_logits``)."""
    backend = get_backend(backend)
    with backend.scope():
        return _check_loss(loss, y_true, y_pred, backend, h, from_logits)


def _check_loss(loss, y_true, y_pred, backend, h, from_logits):
    loss.build(backend)
    if from_logits is not None:
        loss.from_logits = from_logits
    y_true = backend.asarray(y_true)
    y_pred = backend.asarray(numpy.asarray(backend.to_host(y_pred), dtype=numpy.float64))
    if y_true.dtype.kind == "f":
        y_true = y_true.astype("float64")
    _, grad = loss.loss_and_grad(y_true, y_pred.copy())
    picks = numpy.arange(y_pred.size)
    num = _numeric(lambda: float(loss.loss_and_grad(y_true, y_pred.copy())[0]), y_pred, backend.xp, h, picks)
    return {"y_pred": relative_error(backend.to_host(grad).reshape(-1), num)}


def check_model(model, x, y, h=1e-6, max_checks=32, seed=0):
    """{'<layer>.<param>': err} for a compiled float64 model on the batch (x, y); no update is made."""
    with model.backend.scope():
        return _check_model(model, x, y, h, max_checks, seed)


def _check_model(model, x, y, h, max_checks, seed):
    backend, rng = model.backend, numpy.random.default_rng(seed)
    x = backend.asarray(numpy.asarray(backend.to_host(x), dtype=numpy.float64))
    y = backend.asarray(y)
    if not model.built:
        model.build(tuple(x.shape[1:]))
    _require_float64(model.params, "model")
    rng_state = _freeze_rngs(model._train_steps, backend)

    def forward():
        _restore_rngs(model._train_steps, backend, rng_state)
        out = x
        for s in model._train_steps:
            out = s.forward(out, training=True)
        return out

    _, grad = model._loss_fn(y, forward())
    model.backward(grad)
    errors = {}
    for layer in model.layers:
        for name, arr in layer.params.items():
            analytic = backend.to_host(layer.grads[name]).reshape(-1).copy()
            picks = _picks(arr.size, max_checks, rng)
            num = _numeric(lambda: float(model._loss_fn(y, forward())[0]), arr, backend.xp, h, picks)
            errors[f"{layer.name}.{name}"] = relative_error(analytic[picks], num)
    return errors


def gradcheck(obj, x, y=None, **kwargs):
    """Check any layer, loss or compiled model; returns the relative error per input/parameter.

    ``gradcheck(Dense(3), x)``, ``gradcheck(losses.get('mse'), y_true, y_pred)``,
    ``gradcheck(model, x, y)``. Errors below ~1e-6 mean backward is right.
    """
    if isinstance(obj, Layer):
        return check_layer(obj, x, **kwargs)
    if isinstance(obj, Loss):
        return check_loss(obj, x, y, **kwargs)
    if hasattr(obj, "train_step"):
        return check_model(obj, x, y, **kwargs)
    raise TypeError(f"gradcheck takes a layer, a loss or a model, not {type(obj).__name__}")


def _require_float64(params, what):
    """Central differences in float32 are noise: refuse rather than report spurious errors."""
    bad = {str(p.dtype) for p in params if str(p.dtype) != "float64"}
    if bad:
        raise ValueError(f"{what} has {', '.join(sorted(bad))} weights: gradcheck needs float64; "
                         "call gpuprop.config.set_floatx('float64') before building it")


def _freeze_rngs(steps, backend):
    """Layers that draw random numbers (Dropout) get the same draws on every forward."""
    return {id(s): int(numpy.random.default_rng(i).integers(2**31)) for i, s in enumerate(steps) if hasattr(s, "rng")}


def _restore_rngs(steps, backend, state):
    for s in steps:
        if id(s) in state:
            s.rng = backend.rng(state[id(s)])
