"""Keras' functional API: ``Model(inputs, outputs)`` over a graph of layer calls.

>>> a, b = Input(shape=(4,)), Input(shape=(3,))
>>> h = Concatenate()([Dense(8, activation='relu')(a), b])
>>> model = Model([a, b], [Dense(1, name='score')(h), Dense(5, activation='softmax', name='kind')(h)])

The model finds its layers by walking back from the outputs, builds them in
topological order (drawing initial weights from its seed, as ``Sequential``
does) and flattens the calls into steps (``graph.Expander``). ``train_step``
is backprop through that graph: forward in order, the loss of each output,
backward in reverse order with gradients summed where a tensor fans out.
"""

from .. import initializers
from ..layers import base as base_layers
from ..layers.input import InputLayer
from . import graph, graph_training, multi_output, packing
from .functional_api import FunctionalKerasAPI
from .keras_api import on_device
from .nested import ensure_built, leaf_layers, refresh_params
from .network import Network, _unique_name, cast_input
from .topology import _keras_layer_order, _structure, _topological


class Model(FunctionalKerasAPI, Network):
    """A graph of layers from ``Input``s to outputs (one or several of each), trained like ``Sequential``.

    ``device`` and ``seed`` are gpuprop's additions, as for ``Sequential``. fit, evaluate, predict and the
    *_on_batch methods are in ``functional_api``.
    """

    def __init__(self, inputs=None, outputs=None, name=None, device="auto", seed=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Model got unexpected argument(s): {', '.join(kwargs)}")
        if inputs is None or outputs is None:
            raise TypeError("Model(inputs, outputs) needs both, e.g. Model(inputs=x, outputs=y) with x = Input(...); "
                            "subclassing Model with a call() method is not supported by gpuprop")
        super().__init__(None, name=name or "functional", device=device, seed=seed)
        self._input_keys, self.inputs, self._inputs_listed = _structure(inputs, "inputs")
        self._output_keys, self.outputs, self._outputs_listed = _structure(outputs, "outputs")
        self.nodes = _topological(self.inputs, self.outputs)
        self.layers = _keras_layer_order(self.nodes)
        if not trainable:
            self.trainable = False
        self._name_layers()
        self.output_names = self._output_keys or [t.node.layer.name for t in self.outputs]
        self.input_names = self._input_keys or [t.node.layer.name for t in self.inputs]
        self.build()

    def _name_layers(self):
        used = set()
        for layer in self.layers:
            if layer.name is None:
                layer.name = _unique_name(layer, used)
            elif layer.name in used:
                raise ValueError(f"the layer name {layer.name!r} is used twice in the model: give each layer "
                                 "its own name=")
            used.add(layer.name)

    # --- building -----------------------------------------------------------------------
    @on_device
    def build(self, input_shape=None):
        """Create the weights of every layer not yet built, and the flat list of steps."""
        if self.built:
            return
        rng = initializers.host_rng(self.seed)
        for node in self.nodes:
            layer, shapes = node.layer, [t.shape[1:] for t in node.inputs]
            if isinstance(layer, InputLayer):
                continue
            if isinstance(layer, Network):
                ensure_built(layer, shapes[0], self.backend)
            elif not layer.built:
                layer.build(shapes if node.multi_input else shapes[0], self.backend, rng)
            elif layer.backend.spec != self.backend.spec:
                raise ValueError(f"layer {layer.name!r} was built on {layer.backend.spec}, this model is on "
                                 f"{self.backend.spec}: create the models with the same device=")
        ex = graph.Expander()
        self._input_ids = [ex.new_id() for _ in self.inputs]
        self._output_ids = ex.model(self, self._input_ids)
        self._all_steps, self._clones, self._n_tensors = ex.steps, ex.clones, ex.n_tensors
        inputs = set(self._input_ids)
        for step in self._all_steps:  # nobody reads dL/d(model input): calls on inputs alone skip it
            step.fn.need_input_grad = not all(i in inputs for i in step.ins)
        self._steps = [s.fn for s in self._all_steps]
        leaves = leaf_layers(self.layers)
        self.packed = packing.pack(leaves, self.backend)
        if self.packed is not None:
            self.params, self.grads = self.packed.param_views, self.packed.grad_views
        else:
            self.params = [p for layer in leaves for p in layer.params.values()]
            self.grads = [layer.grads[k] for layer in leaves for k in layer.params]
        for layer in self.layers:
            if isinstance(layer, Network):
                refresh_params(layer)
        self.output_shapes = [tuple(t.shape[1:]) for t in self.outputs]
        self._output_shape = self.output_shapes[0]
        self.built = True
        self._setup_training()

    def symbolic_output_shapes(self, input_shape):
        """The model called on tensors of per-sample ``input_shape`` (one shape, or a list for several inputs)."""
        given = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else [tuple(input_shape)]
        want = [tuple(t.shape[1:]) for t in self.inputs]
        if given != want:
            raise ValueError(f"model {self.name!r} takes input(s) of shape {', '.join(str((None, *s)) for s in want)}, "
                             f"but was called on {', '.join(str((None, *s)) for s in given)}")
        return list(self.output_shapes)

    @property
    def returns_list(self):
        return self._outputs_listed

    # --- compile and the training step ---------------------------------------------------------
    @on_device
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **kwargs):
        """Keras' compile; ``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` may be lists or dicts,
        one entry per output."""
        multi_output.compile(self, optimizer, loss, loss_weights, metrics, weighted_metrics, **kwargs)
        self._setup_training()

    def _setup_training(self):
        if self.built and self.optimizer is not None:
            multi_output.setup(self)

    def _bind(self, x):
        """Model inputs (array, list or dict) as device arrays in ``self.inputs`` order."""
        xs = self._inputs_as_list(x)
        values = [None] * self._n_tensors
        for i, a in zip(self._input_ids, xs):
            values[i] = cast_input(self.backend, a)  # host arrays move to the device; device arrays stay as they are
        return values

    @on_device
    def forward(self, x, training=False):
        """The model's output(s) for input(s) ``x``: an array, or a list when the model has several outputs."""
        values = graph.forward(self._all_steps, self._bind(x), training)
        outs = [values[i] for i in self._output_ids]
        return outs if self._outputs_listed else outs[0]

    @on_device
    def backward(self, grads):
        """Backprop from ``grads`` (tensor id -> dL/d tensor, a list) to every parameter gradient."""
        graph.backward(self._grad_steps, grads)
        for owner_grads, clone_grads, owner_ran in self._grad_sums:
            for k, g in owner_grads.items():
                if not owner_ran:
                    g.fill(0)
                for c in clone_grads:
                    g += c[k]
        return grads

    @on_device
    def compute_gradients(self, x, y, sample_weight=None):
        """Forward in topological order, the loss, backward in reverse: fills every ``layer.grads``.

        Returns (total loss, training-form output(s)); parameters are not changed. ``sample_weight``:
        a device array for every output, ``graph_training.Arrays`` (one per output, or None), or None.
        """
        values = graph.forward(self._train_plan, self._bind(x), True)
        loss, grads, outs = multi_output.loss_and_grads(self, y, values, sample_weight=sample_weight)
        self.backward(grads)
        return loss, outs

    @on_device
    def test_step_training_mode(self, x, y):
        """The total loss of the training-mode forward (Dropout and BatchNorm as in training), nothing kept."""
        values = graph.forward(self._train_plan, self._bind(x), True)
        return multi_output.loss_and_grads(self, y, values, need_grads=False)[0]

    @on_device
    def train_step(self, x, y, sample_weight=None):
        """One step of gradient descent, each output's loss weighted by ``sample_weight`` (see
        ``compute_gradients``); returns (total loss, training-form output(s)) on the device."""
        loss, outs = self.compute_gradients(x, y, sample_weight)
        if self._trainable_seen != base_layers.TRAINABLE_CHANGES:  # someone froze or unfroze a layer
            self._select_trainable()
        if self.gradient_reducer is not None:  # data-parallel fit: the gradients averaged over the ranks
            self.gradient_reducer(self)
        self.optimizer.apply_gradients(self._opt_params, self._opt_grads)
        return loss, outs

    @on_device
    def test_step(self, x, y, sample_weight=None):
        values = graph.forward(self._train_plan, self._bind(x), False)
        loss, _, outs = multi_output.loss_and_grads(self, y, values, need_grads=False, sample_weight=sample_weight)
        return loss, outs

    @on_device
    def __call__(self, x, training=False):
        from ..layers.input import is_symbolic, symbolic_call

        if is_symbolic(x):
            return symbolic_call(self, x)
        return self.forward(x, training=training)

    def _inputs_as_list(self, x):
        """Host or device input arrays in ``self.inputs`` order, from an array, a list or a dict by input name."""
        if isinstance(x, graph_training.Arrays):
            return x.arrays
        if isinstance(x, dict):
            missing = [k for k in self.input_names if k not in x]
            if missing:
                raise ValueError(f"the input dict lacks {', '.join(missing)}: give one array per model input "
                                 f"({', '.join(self.input_names)})")
            return [x[k] for k in self.input_names]
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"the model has {len(self.inputs)} input(s) ({', '.join(self.input_names)}) "
                             f"but was given {len(xs)} array(s)")
        return xs

    # --- description, config and weights ----------------------------------------------------------
    @on_device
    def get_weights(self):
        return [w for layer in leaf_layers(self.layers) for w in layer.get_weights()]

    @on_device
    def set_weights(self, weights):
        weights, leaves = list(weights), leaf_layers(self.layers)
        expected = sum(len(layer.weight_names()) for layer in leaves)
        if len(weights) != expected:
            raise ValueError(f"set_weights expected {expected} arrays, got {len(weights)}")
        for layer in leaves:
            k = len(layer.weight_names())
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def count_params(self):
        return sum(layer.count_params() for layer in leaf_layers(self.layers))

    def _node_refs(self):
        """For each node, its inputs as (layer name, node index within this model, tensor index)."""
        index, refs = {}, []
        for node in self.nodes:
            per_layer = [n for n in self.nodes if n.layer is node.layer]
            index[id(node)] = per_layer.index(node)
        for node in self.nodes:
            refs.append([[t.node.layer.name, index[id(t.node)], t.index] for t in node.inputs])
        return refs, index

    def summary(self, print_fn=print):
        """Keras' table for graphs: layer (type), output shape, params, connected to."""
        from .summary import graph_summary

        print_fn(graph_summary(self))

    def get_config(self):
        """Layers (with their configs) and every call in topological order: JSON, no code."""
        from .graph_config import model_config

        return model_config(self)

    @classmethod
    def from_config(cls, config, device="auto", seed=None):
        from .graph_config import model_from_config

        return model_from_config(config, device=device, seed=seed)
