"""A whole model used as one layer of a ``Sequential`` (``Sequential([base_model, Softmax()])``).

The inner model keeps its layers and weights: the outer model trains and
saves them as its own. Its steps are flattened once (``graph.Expander``) and
run forward and backward like any layer's.
"""

from ..errors import GpupropError
from ..layers.base import Layer
from . import graph


def ensure_built(model, input_shape, backend):
    """Build ``model`` on ``backend`` if it is not built yet; refuse a model already on another device."""
    if model.built:
        if model.backend.spec != backend.spec:
            raise GpupropError(f"model {model.name!r} lives on {model.backend.spec} but is used inside a model on "
                               f"{backend.spec}: create both with the same device=")
        return
    model.backend, model.xp = backend, backend.xp
    model.build(tuple(input_shape))


def leaf_layers(layers):
    """The layers that hold weights, nested models opened up, each once (Keras' weight order)."""
    from .network import Network

    out, seen = [], set()
    for layer in layers:
        if isinstance(layer, NestedModel):
            layer = layer.model
        inner = leaf_layers(layer.layers) if isinstance(layer, Network) else [layer]
        for leaf in inner:
            if id(leaf) not in seen:
                seen.add(id(leaf))
                out.append(leaf)
    return out


def refresh_params(model):
    """After an outer model re-packed the weights, point a nested model's parameter lists at them again."""
    leaves = leaf_layers(model.layers)
    model.packed = None
    model.params = [p for layer in leaves for p in layer.params.values()]
    model.grads = [layer.grads[k] for layer in leaves for k in layer.params]
    if model.optimizer is not None and model.loss is not None:
        model._setup_training()


def input_shape_of(model):
    """Per-sample input shape of a model, or None if it does not know it yet."""
    if getattr(model, "inputs", None):
        return tuple(model.inputs[0].shape[1:])
    first = model.layers[0] if model.layers else None
    return None if first is None else first.input_shape


class NestedModel(Layer):
    """Runs ``model`` as one layer: forward through its steps, backward through them in reverse."""

    def __init__(self, model):
        super().__init__(name=model.name)
        self.model = model
        self.input_shape = input_shape_of(model)

    def build(self, input_shape, backend, rng):
        self.backend, self.xp = backend, backend.xp
        ensure_built(self.model, input_shape, backend)
        ex = graph.Expander()
        first = ex.new_id()
        self._out = ex.model(self.model, [first])[0]
        self._steps, self._clones, self._n = ex.steps, ex.clones, ex.n_tensors
        for step in self._steps:  # the outer model may need dL/dx through every inner layer
            step.fn.need_input_grad = True
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.model._output_shape)
        self.built = True
        return self.output_shape

    @property
    def type_name(self):
        """What summaries show: the inner model's kind (Keras lists the model itself as the layer)."""
        return "Functional" if getattr(self.model, "nodes", None) is not None else type(self.model).__name__

    def compute_output_shape(self, input_shape):
        return tuple(self.model.symbolic_output_shapes(input_shape)[0])

    def forward(self, x, training=False):
        values = [None] * self._n
        values[0] = x
        return graph.forward(self._steps, values, training)[self._out]

    def backward(self, dy):
        grads = [None] * self._n
        grads[self._out] = dy
        graph.backward(self._steps, grads)
        for owner, clone in self._clones:
            for k, g in owner.grads.items():
                g += clone.grads[k]
        return grads[0]

    # weights and config are the inner model's
    def weight_names(self):
        return [f"{layer.name}/{k}" for layer in leaf_layers([self]) for k in layer.weight_names()]

    def get_weights(self):
        return self.model.get_weights()

    @property
    def weights(self):
        return self.model.weights

    @property
    def trainable_weights(self):
        return self.model.trainable_weights

    @property
    def non_trainable_weights(self):
        return self.model.non_trainable_weights

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def count_params(self):
        return self.model.count_params()

    def get_config(self):
        from .graph_config import layer_config

        return layer_config(self.model)
