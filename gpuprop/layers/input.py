"""Symbolic tensors: ``Input(shape)`` and layers called on it record a graph instead of computing.

A ``KerasTensor`` holds no numbers, only its per-sample shape and the call
(``Node``) that produced it. ``Model(inputs, outputs)`` walks these records
back from its outputs to find the layers and the order to run them in.
"""

from .base import Layer


class KerasTensor:
    """A placeholder for a batch: ``shape`` is ``(batch_size or None, *per_sample)``."""

    def __init__(self, shape, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.node = node  # the call that produced this tensor (None only while it is being made)
        self.index = index  # which output of that call
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, name={self.name}>"


class Node:
    """One call of ``layer`` on symbolic ``inputs`` (a list) giving ``outputs`` (a list)."""

    def __init__(self, layer, inputs, output_shapes, multi_input):
        self.layer = layer
        self.inputs = list(inputs)
        self.multi_input = multi_input  # the layer was given a list (merge layers, multi-input models)
        nodes = layer.__dict__.setdefault("_inbound_nodes", [])
        nodes.append(self)
        self.outputs = [KerasTensor(shape, self, i, name=f"{layer.name or 'keras_tensor'}") for i, shape in
                        enumerate(output_shapes)]


def is_symbolic(x):
    if isinstance(x, KerasTensor):
        return True
    if isinstance(x, dict):
        return any(isinstance(v, KerasTensor) for v in x.values())
    return isinstance(x, (list, tuple)) and any(isinstance(v, KerasTensor) for v in x)


def flatten_tensors(x):
    """The KerasTensors of a tensor, list or dict (dict in its own key order)."""
    if isinstance(x, dict):
        x = list(x.values())
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    for t in items:
        if not isinstance(t, KerasTensor):
            raise TypeError(f"expected symbolic tensors from keras.Input or a layer call, got {type(t).__name__}")
    return items


def symbolic_call(layer, x):
    """``layer(x)`` on KerasTensors: infer the output shape and record the call; returns the output tensor(s)."""
    multi = isinstance(x, (list, tuple, dict))
    tensors = flatten_tensors(x)
    shapes = [t.shape[1:] for t in tensors]
    out_shapes = layer.symbolic_output_shapes(shapes if multi else shapes[0])
    batch = tensors[0].shape[0]
    node = Node(layer, tensors, [(batch, *s) for s in out_shapes], multi)
    outs = node.outputs
    return outs[0] if len(outs) == 1 and not getattr(layer, "returns_list", False) else outs


class InputLayer(Layer):
    """The graph's entry: forward and backward are the identity; it has no weights."""

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        kwargs.pop("batch_shape", None)
        kwargs.pop("sparse", None)
        kwargs.pop("ragged", None)
        super().__init__(input_shape=tuple(shape), name=name, **kwargs)
        self.batch_size = batch_size
        tensor = KerasTensor((batch_size, *self.input_shape), name=name)
        node = Node(self, [], [], False)
        node.outputs = [tensor]  # what ``self.output`` returns
        tensor.node = node

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape), "batch_size": self.batch_size}


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, **kwargs):
    """A symbolic batch of samples of ``shape`` (no batch axis), the start of a functional model (Keras)."""
    if shape is None and batch_shape is not None:
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28, 1))")
    if isinstance(shape, int):
        shape = (shape,)
    if any(d is None for d in shape):
        raise ValueError(f"Input shape {tuple(shape)}: gpuprop needs every per-sample dimension known (no None)")
    layer = InputLayer(tuple(int(d) for d in shape), batch_size=batch_size, name=name, dtype=dtype)
    return layer.output
