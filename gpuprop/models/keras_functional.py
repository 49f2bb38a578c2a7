"""A functional ``Model`` as Keras 3 describes it in a .keras file's config.json, and back.

Keras lists each layer once, with its config and its ``inbound_nodes``: one
entry per call, whose ``args`` hold the tensors it read as ``__keras_tensor__``
objects naming ``[layer, call index, output index]`` (``keras_history``).
``input_layers`` / ``output_layers`` name the model's tensors the same way.
Layers translate as for ``Sequential`` (``keras_config``); what has no
gpuprop counterpart (nested models, call keyword arguments) is refused, naming it.
"""

from ..errors import CheckpointError
from ..layers.input import Input, InputLayer
from . import keras_config


def is_functional(model):
    return getattr(model, "nodes", None) is not None


# --- gpuprop → Keras ----------------------------------------------------------------------------------
def _tensor(t, ref):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *t.shape[1:]], "dtype": "float32", "keras_history": ref(t)}}


def _node(node, ref):
    """One call as Keras records it: a merge layer's single argument is the list of its tensors."""
    ts = [_tensor(t, ref) for t in node.inputs]
    return {"args": [ts] if node.multi_input else ts, "kwargs": {}}


def _layer_entry(layer, calls, ref):
    """A layer's entry: its Keras config, and one inbound node per call of it in this model."""
    if isinstance(layer, InputLayer):
        shape = [None, *layer.input_shape]
        entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                 "config": {"batch_shape": shape, "dtype": str(layer.dtype or "float32"), "sparse": False,
                            "name": layer.name}}
    else:
        if getattr(layer, "nodes", None) is not None or hasattr(layer, "layers") or hasattr(layer, "model"):
            raise CheckpointError(f"layer {layer.name!r} is a nested model, which gpuprop does not write to Keras "
                                  "files: save this model as .npz")
        entry = keras_config.layer_config(layer)
        shapes = [[None, *t.shape[1:]] for t in calls[0].inputs]
        entry["build_config"] = {"input_shape": shapes if calls[0].multi_input else shapes[0]}
    nodes = [] if isinstance(layer, InputLayer) else [_node(node, ref) for node in calls]
    entry.update({"name": layer.name, "inbound_nodes": nodes})
    return entry


def _structure(refs, keys, listed):
    if keys:
        return dict(zip(keys, refs))
    return refs if listed else refs[0]


def functional_config(model):
    """Keras 3's config of a functional ``Model`` (the class_name 'Functional' Keras writes)."""
    _, index = model._node_refs()
    ref = lambda t: [t.node.layer.name, index[id(t.node)], t.index]  # noqa: E731
    entries = [_layer_entry(layer, [n for n in model.nodes if n.layer is layer], ref) for layer in model.layers]
    body = {"name": model.name, "trainable": True, "layers": entries,
            "input_layers": _structure([ref(t) for t in model.inputs], model._input_keys, model._inputs_listed),
            "output_layers": _structure([ref(t) for t in model.outputs], model._output_keys, model._outputs_listed)}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": body, "build_config": {"input_shape": None}}


# --- Keras → gpuprop -----------------------------------------------------------------------------------
def _history(obj, where):
    """The ``[layer, call, output]`` of a serialized Keras tensor, or a clear error for anything else."""
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        return tuple(obj["config"]["keras_history"])
    if isinstance(obj, (list, tuple)) and len(obj) == 3 and isinstance(obj[0], str):
        return tuple(obj)  # the older [name, node, tensor(, kwargs)] form
    raise CheckpointError(f"{where} is called on {str(obj)[:60]!r}, which gpuprop cannot rebuild "
                          "(it takes tensors, or a list of tensors for merge layers)")


def _call_inputs(node, name):
    """(tensor refs, several?) of one inbound node; call keyword arguments gpuprop lacks are refused."""
    if not isinstance(node, dict):  # Keras 2's form: [[layer, call, output, kwargs], ...]
        node = {"args": [node[0][:3]] if len(node) == 1 else [[r[:3] for r in node]],
                "kwargs": (node[0][3] if len(node[0]) > 3 else {}) if node else {}}
    args, kwargs = node.get("args", []), node.get("kwargs") or {}
    # Keras records the call's training flag, but a model's fit/predict sets it for every call: nothing to keep
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k != "training"}
    if kwargs:
        raise CheckpointError(f"layer {name!r} is called with {', '.join(kwargs)}=..., which gpuprop's layer "
                              "calls do not take")
    if len(args) != 1:
        raise CheckpointError(f"layer {name!r} is called with {len(args)} positional arguments; gpuprop's "
                              "layers take one (a tensor, or a list of tensors)")
    arg = args[0]
    if isinstance(arg, list) and arg and not isinstance(arg[0], str):
        return [_history(a, f"layer {name!r}") for a in arg], True
    return [_history(arg, f"layer {name!r}")], False


def _refs(spec):
    """input_layers/output_layers as (keys or None, refs, listed)."""
    if isinstance(spec, dict):
        return list(spec), [tuple(v) for v in spec.values()], True
    if spec and isinstance(spec[0], str):
        return None, [tuple(spec)], False
    return None, [tuple(r) for r in spec], True


def functional_from_config(cfg, device="auto"):
    """A gpuprop ``Model`` from Keras' config of a Functional model, calling each layer as Keras did."""
    from .functional import Model

    body = cfg.get("config", {})
    layers, pending, tensors = {}, [], {}
    for entry in body.get("layers", []):
        name = entry.get("name") or entry.get("config", {}).get("name")
        kind = entry.get("class_name")
        if kind in ("Functional", "Sequential", "Model"):
            raise CheckpointError(f"the file's model holds the nested model {name!r} ({kind}), which gpuprop "
                                  "does not load from Keras files")
        if kind == "InputLayer":
            c = entry["config"]
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            tensors[(name, 0, 0)] = Input(shape=tuple(shape[1:]), name=name)
            continue
        layers[name] = keras_config.layer_from_config(entry)
        pending += [(name, i, node) for i, node in enumerate(entry.get("inbound_nodes", []))]
    while pending:  # Keras lists layers by depth, not always after their inputs: call each once it can be
        ready = [p for p in pending if all(r in tensors for r in _call_inputs(p[2], p[0])[0])]
        if not ready:
            missing = sorted({r[0] for p in pending for r in _call_inputs(p[2], p[0])[0] if r not in tensors})
            raise CheckpointError(f"the file's model reads from {', '.join(map(repr, missing))}, which it never "
                                  "computes: the config is incomplete")
        name, i, node = ready[0]
        pending.remove(ready[0])
        refs, multi = _call_inputs(node, name)
        ins = [tensors[r] for r in refs]
        try:
            out = layers[name](ins if multi else ins[0])
        except ValueError as exc:
            raise CheckpointError(f"the file's layer {name!r} cannot be called as saved: {exc}") from None
        for j, t in enumerate(out if isinstance(out, list) else [out]):
            tensors[(name, i, j)] = t

    def structure(spec):
        keys, refs, listed = _refs(spec)
        ts = [tensors[r] for r in refs]
        return dict(zip(keys, ts)) if keys else (ts if listed else ts[0])

    return Model(structure(body["input_layers"]), structure(body["output_layers"]), name=body.get("name"),
                 device=device)
