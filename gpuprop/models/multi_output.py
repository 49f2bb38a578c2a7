"""Compile settings and the loss of a graph model with one or several outputs (Keras' rules).

``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` may be one
value (used for every output), a list (one per output, in order) or a dict
keyed by output name (outputs left out get no loss). The total loss is
Σ_k w_k · L_k, so output k's gradient is w_k · dL_k/dŷ_k; with sample weights
L_k is Keras' weighted form Σᵢ sᵢ·lᵢ / N (``Loss.weighted_loss_and_grad``).
Per-output logs use Keras' names: ``<output name>_loss`` (L_k, before w_k)
and ``<output name>_<metric>`` (a weighted metric whose name a plain one
already has: ``<output name>_weighted_<metric>``).
"""

from .. import config, losses
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod


def _per_output(model, value, what, default=None):
    """``value`` spread over the outputs: one for all, a list in output order, or a dict by output name."""
    names = model.output_names
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"{what} names unknown output(s) {', '.join(map(str, unknown))}: "
                             f"the outputs are {', '.join(names)}")
        return [value.get(k, default) for k in names]
    if isinstance(value, (list, tuple)) and ("metrics" not in what or any(isinstance(v, (list, tuple, dict))
                                                                       for v in value)):
        if len(value) != len(names):
            raise ValueError(f"{what} has {len(value)} entries but the model has {len(names)} outputs "
                             f"({', '.join(names)}): give one per output, or a dict by output name")
        return list(value)
    return [value] * len(names)


def compile(model, optimizer, loss, loss_weights, metrics, weighted_metrics=None, **kwargs):
    """Keras' ``compile`` for graph models; see the module docstring."""
    kwargs.pop("jit_compile", None)
    if kwargs:
        raise TypeError(f"compile got unexpected argument(s): {', '.join(kwargs)}")
    if loss is None:
        raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy', "
                         "or one per output as a list or dict")
    model.optimizer = optimizers_mod.get(optimizer)
    model.output_losses = [None if l is None else losses.get(l).build(model.backend)
                           for l in _per_output(model, loss, "loss")]
    if all(l is None for l in model.output_losses):
        raise ValueError("compile: no output has a loss; give at least one")
    weights = _per_output(model, 1.0 if loss_weights is None else loss_weights, "loss_weights", 0.0)
    model.loss_weights = [float(w) for w in weights]
    model.output_metrics = _metric_lists(model, metrics, "metrics")
    model.output_weighted_metrics = _metric_lists(model, weighted_metrics, "weighted_metrics")
    model.loss = next(l for l in model.output_losses if l is not None)


def _metric_lists(model, metrics, what):
    """One list of metric objects per output, bound to that output's loss."""
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
        raise ValueError(f"{what} must be a list or a dict by output name, e.g. {what}=['accuracy']; "
                         f"got {type(metrics).__name__}")
    return [[metrics_mod.get(m, l.name if l is not None else "") for m in
             (ms if isinstance(ms, (list, tuple)) else [ms] if ms else [])]
            for ms, l in zip(_per_output(model, metrics or [], what), model.output_losses)]


def setup(model):
    """Fuse softmax outputs into their cross-entropy, and find the steps backprop must run."""
    steps, backend = model._all_steps, model.backend
    producer = {s.out: s for s in steps}
    readers = {}
    for s in steps:
        for i in s.ins:
            readers[i] = readers.get(i, 0) + 1
    for i in model._output_ids:
        readers[i] = readers.get(i, 0) + 1
    fused, plan = set(), []
    for oid, loss in zip(model._output_ids, model.output_losses):
        if loss is None:
            plan.append((oid, None, False))
            continue
        loss.build(backend)
        prod = producer.get(oid)
        if (prod is not None and not loss.from_logits and loss.fuses_with is not None and readers[oid] == 1
                and getattr(prod.fn, "kind", None) == loss.fuses_with):
            fused.add(id(prod))
            plan.append((prod.ins[0], loss.loss_and_grad_from_logits, True))
        elif loss.from_logits:
            plan.append((oid, loss.loss_and_grad_from_logits, True))
        else:
            plan.append((oid, loss.loss_and_grad_from_output, False))
    model._loss_plan = plan
    model._train_plan = [s for s in steps if id(s) not in fused]
    model._train_steps = [s.fn for s in model._train_plan]
    needed, grad_steps = {oid for oid, fn, _ in plan if fn is not None}, []
    for s in reversed(model._train_plan):
        if s.out in needed:
            grad_steps.append(s)
            needed.update(s.ins)
    model._grad_steps = grad_steps[::-1]
    model._grad_sums = _grad_sums(model, {id(s.fn) for s in model._grad_steps})
    first = next(p for p in plan if p[1] is not None)
    model._loss_fn, model._outputs_logits = first[1], first[2]
    if len(plan) > 1:  # the loop logs each output's loss and metrics under Keras' names
        from .graph_training import log_metrics

        model.metrics = log_metrics(model)
    else:
        plain = model.output_metrics[0]
        model.metrics = plain + metrics_mod.wrap_weighted(model.output_weighted_metrics[0], [m.name for m in plain])
    model._opt_params = None
    model._select_trainable()  # frozen layers (and nested models) are left out of the optimizer, as in Keras


def _grad_sums(model, ran):
    """(layer grads, [clone grads], layer's own call ran backward) for every shared or unreached layer."""
    owners = []
    for s in model._all_steps:
        if s.owner.params and all(s.owner is not o for o in owners):
            owners.append(s.owner)
    sums = []
    for owner in owners:
        clones = [c.grads for o, c in model._clones if o is owner and id(c) in ran]
        if clones or id(owner) not in ran:
            sums.append((owner.grads, clones, id(owner) in ran))
    return sums


def output_weight(sample_weight, k):
    """Output ``k``'s sample weights: one array shared by every output, or entry k of one per output."""
    return sample_weight.arrays[k] if hasattr(sample_weight, "arrays") else sample_weight


def _output_loss(model, k, y, out, sample_weight):
    """(L_k, dL_k/dŷ_k) of output k, weighted by its sample weights when it has some."""
    oid, fn, logits = model._loss_plan[k]
    w = output_weight(sample_weight, k)
    if w is None:
        return fn(y, out)
    return model.output_losses[k].weighted_loss_and_grad(y, out, w, logits)


def loss_and_grads(model, y, values, need_grads=True, sample_weight=None):
    """(Σ_k w_k L_k, gradient per tensor id, training-form output(s)); one output costs no extra work.

    With several outputs the total comes back with the per-output losses in
    ``model._last_losses`` (device scalars, before their loss weight, as Keras
    logs them). ``sample_weight``: see ``output_weight``; None: unweighted.
    """
    grads = [None] * model._n_tensors if need_grads else None
    if len(model._loss_plan) == 1:
        oid = model._loss_plan[0][0]
        loss, g = _output_loss(model, 0, y, values[oid], sample_weight)
        w = model.loss_weights[0]
        model._last_losses = (loss,)
        if w != 1.0:
            loss, g = loss * w, g * w
        if need_grads:
            grads[oid] = g
        return loss, grads, values[oid]
    total, per, outs = 0.0, [], []
    y = getattr(y, "arrays", y)  # graph_training.Arrays: one array per output
    for k, ((oid, fn, _), w) in enumerate(zip(model._loss_plan, model.loss_weights)):
        outs.append(values[oid])
        if fn is None:
            per.append(None)
            continue
        loss, g = _output_loss(model, k, y[k], values[oid], sample_weight)
        per.append(loss)
        total = total + loss * w
        if need_grads:
            g = g * w if w != 1.0 else g
            grads[oid] = g if grads[oid] is None else grads[oid] + g
    model._last_losses = per
    return total, grads, outs


def targets(model, y):
    """Targets as a list in output order, from an array (one output), a list or a dict by output name."""
    names = model.output_names
    if hasattr(y, "arrays"):
        return list(y.arrays)
    if isinstance(y, dict):
        missing = [k for k, l in zip(names, model.output_losses) if l is not None and k not in y]
        if missing:
            raise ValueError(f"the targets lack output(s) {', '.join(missing)}: give y as a dict with keys "
                             f"{', '.join(names)}")
        return [y.get(k) for k in names]
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    if len(ys) != len(names):
        raise ValueError(f"the model has {len(names)} outputs ({', '.join(names)}) but was given {len(ys)} "
                         "target array(s)")
    return ys


def device_target(backend, loss, y):
    """One output's targets on the device, in the dtype its loss wants."""
    if loss is None or y is None:
        return None
    if loss.name == "sparse_categorical_crossentropy":
        return backend.asarray(y).reshape(-1).astype("int64")
    return backend.asarray(y).astype(config.floatx())


def device_targets(model, y):
    ys = [device_target(model.backend, l, t) for l, t in zip(model.output_losses, targets(model, y))]
    return ys[0] if len(ys) == 1 else ys


def predict(model, x, batch_size=32, verbose=0, steps=None, callbacks=None, log=None):
    """Outputs for ``x`` (array, list or dict) batch by batch; a list (or dict) for several outputs.
    The loop, hooks, ``steps`` and printed line are every model's (``evaluation.predict_loop``)."""
    from ..evaluation import predict_loop

    xs, xp = model._inputs_as_list(x), model.xp

    def run(lo, hi):
        return model.forward([a[lo:hi] for a in xs], training=False)

    def to_host(batches):
        per_batch = [got if model._outputs_listed else [got] for got in batches]
        arrays = [model.backend.to_host(xp.concatenate([b[k] for b in per_batch]) if per_batch
                                        else xp.zeros((0, *shape))) for k, shape in enumerate(model.output_shapes)]
        if model._output_keys:
            return dict(zip(model._output_keys, arrays))
        return arrays if model._outputs_listed else arrays[0]

    return predict_loop(model, int(xs[0].shape[0]), batch_size, run, to_host, verbose, callbacks, log, steps)
