"""Walking the record of symbolic calls: a model's inputs/outputs, its calls in order, its layers in Keras' order."""

from ..layers.input import KerasTensor, flatten_tensors


def _structure(x, what):
    """(keys or None, list of tensors, given as a list?) for a tensor, list or dict of KerasTensors."""
    if isinstance(x, dict):
        return list(x), flatten_tensors(x), True
    if isinstance(x, KerasTensor):
        return None, [x], False
    if isinstance(x, (list, tuple)) and x:
        return None, flatten_tensors(x), True
    raise TypeError(f"Model {what} must be a symbolic tensor, a list or a dict of them (from Input and layer calls), "
                    f"got {type(x).__name__}")


def _topological(inputs, outputs):
    """Every call between ``inputs`` and ``outputs``, each after the calls that produce its inputs."""
    order, done, active = [], set(), set()
    known = {id(t) for t in inputs}

    def visit(tensor):
        node = tensor.node
        if id(node) in done:
            return
        if id(node) in active:
            raise ValueError("the layer graph has a cycle")
        if not node.inputs and id(tensor) not in known:
            raise ValueError(f"graph disconnected: an output depends on input {node.layer.name or tensor}, "
                             "which is not among the model's inputs; add it to Model(inputs=...)")
        active.add(id(node))
        for t in node.inputs:
            visit(t)
        active.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    for t in inputs:  # an input no output depends on still belongs to the model (Keras warns)
        visit(t)
    return order


def _keras_layer_order(nodes):
    """Distinct layers as Keras lists them (and orders their weights and weight-file keys): by depth (longest
    path to an output) from the inputs' side, ties in topological order; an input layer sits at its own depth,
    not first, as in Keras 3."""
    depth = {id(n): 0 for n in nodes}
    for node in reversed(nodes):
        for t in node.inputs:
            depth[id(t.node)] = max(depth[id(t.node)], depth[id(node)] + 1)
    layers, layer_depth = [], {}
    for node in nodes:
        if all(node.layer is not layer for layer in layers):
            layers.append(node.layer)
        layer_depth[id(node.layer)] = max(layer_depth.get(id(node.layer), 0), depth[id(node)])
    order = {id(layer): i for i, layer in enumerate(layers)}
    return sorted(layers, key=lambda l: (-layer_depth[id(l)], order[id(l)]))
