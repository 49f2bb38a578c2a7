"""A layer graph flattened into steps, and backpropagation through it.

``expand`` turns a model's layer calls into a flat list of ``Step``s, each one
primitive call ``out = fn(ins)`` on numbered tensors, in topological order:
nested models are opened up, a layer's ``activation=`` becomes its own step,
and a layer called a second time runs as a *call clone* (see ``call_clone``).

``backward`` is the multivariate chain rule: steps run in reverse, and where a
tensor fed several steps its gradient is the sum of what each sent back.
"""

import copy

from ..layers.conv import Scratch
from ..layers.input import InputLayer


class Step:
    """``out = fn.forward(ins)``: tensor ids in and out; ``multi``: fn takes a list (merge layers)."""

    __slots__ = ("fn", "ins", "out", "multi", "owner")

    def __init__(self, fn, ins, out, multi, owner):
        self.fn, self.ins, self.out, self.multi, self.owner = fn, tuple(ins), out, multi, owner


def forward(steps, values, training):
    """Run ``steps`` in order; ``values[id]`` holds each tensor (the inputs already filled in)."""
    for s in steps:
        x = [values[i] for i in s.ins] if s.multi else values[s.ins[0]]
        values[s.out] = s.fn.forward(x, training=training)
    return values


def backward(steps, grads):
    """Reverse pass: ``grads[id]`` starts with dL/d(output) at the outputs and None elsewhere.

    A step hands its input gradients back to the tensors it read; a tensor read
    by several steps receives the sum of their gradients (a sum over paths).
    Returns ``grads`` with the model inputs' gradients (or None) left in it.
    """
    for s in reversed(steps):
        g = grads[s.out]
        if g is None:
            continue
        grads[s.out] = None
        dx = s.fn.backward(g)
        if dx is None:
            continue
        for i, d in zip(s.ins, dx if s.multi else (dx,)):
            if d is not None:
                grads[i] = d if grads[i] is None else grads[i] + d
    return grads


def call_clone(layer):
    """A stand-in for a second call of ``layer``: the same weights, its own saved state and gradients.

    Each call of a shared layer must keep what *its* backward needs, so the
    copy has its own attributes (``_x``, ``_kept``, scratch buffers) while
    ``params`` and ``state`` stay the very same dicts of arrays. The model adds
    the copy's gradients into the layer's after each backward pass.
    """
    clone = copy.copy(layer)
    clone.grads = {k: layer.xp.zeros_like(v) for k, v in layer.grads.items()}
    for key, value in vars(layer).items():
        if isinstance(value, Scratch):
            setattr(clone, key, Scratch())
        elif isinstance(value, dict) and key.startswith("_") and key != "_inbound_nodes":
            setattr(clone, key, dict(value))  # caches keyed by shape: harmless to copy
    if layer.activation is not None:
        clone.activation = copy.copy(layer.activation)
    clone.owner = layer
    return clone


class Expander:
    """Flattens calls into steps, numbering tensors and choosing each call's executor (layer or clone)."""

    def __init__(self):
        self.steps = []
        self.n_tensors = 0
        self.calls = {}  # id(layer) -> number of calls so far
        self.clones = []  # (owner, clone)

    def new_id(self):
        self.n_tensors += 1
        return self.n_tensors - 1

    def call(self, layer, ins, multi):
        """Steps for ``layer`` applied to tensor ids ``ins``; returns its output ids."""
        from .network import Network
        from .nested import NestedModel

        if isinstance(layer, InputLayer):
            return list(ins)
        if isinstance(layer, NestedModel):
            layer = layer.model
        if isinstance(layer, Network):
            return self.model(layer, ins)
        count = self.calls.get(id(layer), 0)
        self.calls[id(layer)] = count + 1
        fn = layer
        if count:
            fn = call_clone(layer)
            self.clones.append((layer, fn))
        out = self.new_id()
        self.steps.append(Step(fn, ins, out, multi, layer))
        if fn.activation is not None:
            act_out = self.new_id()
            self.steps.append(Step(fn.activation, (out,), act_out, False, layer))
            out = act_out
        return [out]

    def model(self, model, ins):
        """A nested model's calls, with its inputs bound to ``ins``."""
        if getattr(model, "nodes", None) is None:  # a Sequential: a chain
            ids = list(ins)
            for layer in model.layers:
                ids = self.call(layer, ids, False)
            return ids
        ids = {id(t): i for t, i in zip(model.inputs, ins)}
        for node in model.nodes:
            outs = self.call(node.layer, [ids[id(t)] for t in node.inputs], node.multi_input)
            ids.update({id(t): i for t, i in zip(node.outputs, outs)})
        return [ids[id(t)] for t in model.outputs]
