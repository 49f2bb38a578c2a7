"""A graph model as plain JSON (``get_config``) and back (``from_config``): no pickle, no code.

The config lists each layer once (class name and constructor arguments; a
nested model as its own config) and then every call in topological order, each
naming the tensors it reads as ``[layer name, call index, output index]``,
Keras' ``inbound_nodes`` convention. Replaying the calls in that order rebuilds
the graph, shared layers and nested models included.
"""

from .. import layers as layers_mod
from ..errors import CheckpointError
from ..layers.input import InputLayer


def class_name(layer):
    from .nested import NestedModel

    if isinstance(layer, NestedModel):
        layer = layer.model
    if getattr(layer, "nodes", None) is not None:
        return "Functional"
    return type(layer).__name__


def layer_config(layer):
    from .nested import NestedModel

    inner = layer.model if isinstance(layer, NestedModel) else layer
    return {"class_name": class_name(layer), "config": inner.get_config()}


def model_config(model):
    refs, index = model._node_refs()
    ref = lambda t: [t.node.layer.name, index[id(t.node)], t.index]  # noqa: E731
    return {
        "name": model.name,
        "layers": [layer_config(layer) for layer in model.layers],
        "nodes": [{"layer": node.layer.name, "inputs": r, "multi": node.multi_input}
                  for node, r in zip(model.nodes, refs)],
        "input_layers": [ref(t) for t in model.inputs],
        "output_layers": [ref(t) for t in model.outputs],
        "input_keys": model._input_keys, "output_keys": model._output_keys,
        "inputs_listed": model._inputs_listed, "outputs_listed": model._outputs_listed,
    }


def layer_from_config(spec, device="auto", seed=None):
    """A layer (or nested model) from ``{"class_name", "config"}``."""
    from .functional import Model
    from .nested import NestedModel
    from .sequential import Sequential

    name, cfg = spec["class_name"], dict(spec["config"])
    if name == "NestedModel":  # a model inside a Sequential
        return NestedModel(layer_from_config(cfg, device, seed))
    if name in ("Functional", "Model"):
        return Model.from_config(cfg, device=device, seed=seed)
    if name == "Sequential":
        return Sequential([layer_from_config(s, device, seed) for s in cfg["layers"]], name=cfg.get("name"),
                          device=device, seed=seed)
    cls = getattr(layers_mod, name, None)
    if cls is None or not isinstance(cls, type):
        raise CheckpointError(f"checkpoint uses unknown layer {name!r}: upgrade gpuprop")
    return cls.from_config(cfg)


def model_from_config(cfg, device="auto", seed=None):
    from .functional import Model

    layers = {}
    for spec in cfg["layers"]:
        layer = layer_from_config(spec, device, seed)
        layers[spec["config"]["name"]] = layer
    tensors, calls = {}, {}
    for node in cfg["nodes"]:
        name = node["layer"]
        layer = layers[name]
        k = calls[name] = calls.get(name, -1) + 1
        if isinstance(layer, InputLayer):
            outs = [layer.output]
        else:
            ins = [tensors[tuple(r)] for r in node["inputs"]]
            out = layer(ins if node["multi"] else ins[0])
            outs = out if isinstance(out, list) else [out]
        tensors.update({(name, k, i): t for i, t in enumerate(outs)})

    def structure(refs, keys, listed):
        ts = [tensors[tuple(r)] for r in refs]
        if keys:
            return dict(zip(keys, ts))
        return ts if listed else ts[0]

    inputs = structure(cfg["input_layers"], cfg.get("input_keys"), cfg.get("inputs_listed", True))
    outputs = structure(cfg["output_layers"], cfg.get("output_keys"), cfg.get("outputs_listed", True))
    return Model(inputs, outputs, name=cfg.get("name"), device=device, seed=seed)
