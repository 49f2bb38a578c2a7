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

from .. import initializers, training
from .. import metrics as metrics_mod
from ..layers import base as base_layers
from ..layers.input import InputLayer
from . import graph, graph_training, multi_output, packing
from .keras_api import _as_list, on_device
from .nested import ensure_built, leaf_layers, refresh_params
from .network import Network, _unique_name, cast_input
from .topology import _keras_layer_order, _structure, _topological


class Model(Network):
    """A graph of layers from ``Input``s to outputs (one or several of each), trained like ``Sequential``.

    ``device`` and ``seed`` are gpuprop's additions, as for ``Sequential``.
    """

    supports_sample_weight = False  # its several outputs' losses are not weighted yet: fit refuses the weights

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
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, **kwargs):
        """Keras' compile; ``loss``, ``loss_weights`` and ``metrics`` may be lists or dicts, one entry per output."""
        multi_output.compile(self, optimizer, loss, loss_weights, metrics, **kwargs)
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
    def compute_gradients(self, x, y):
        """Forward in topological order, the loss, backward in reverse: fills every ``layer.grads``.

        Returns (total loss, training-form output(s)); parameters are not changed.
        """
        values = graph.forward(self._train_plan, self._bind(x), True)
        loss, grads, outs = multi_output.loss_and_grads(self, y, values)
        self.backward(grads)
        return loss, outs

    @on_device
    def test_step_training_mode(self, x, y):
        """The total loss of the training-mode forward (Dropout and BatchNorm as in training), nothing kept."""
        values = graph.forward(self._train_plan, self._bind(x), True)
        return multi_output.loss_and_grads(self, y, values, need_grads=False)[0]

    @on_device
    def train_step(self, x, y):
        """One step of gradient descent; returns (total loss, training-form output(s)) on the device."""
        loss, outs = self.compute_gradients(x, y)
        if self._trainable_seen != base_layers.TRAINABLE_CHANGES:  # someone froze or unfroze a layer
            self._select_trainable()
        self.optimizer.apply_gradients(self._opt_params, self._opt_grads)
        return loss, outs

    @on_device
    def test_step(self, x, y):
        values = graph.forward(self._train_plan, self._bind(x), False)
        loss, _, outs = multi_output.loss_and_grads(self, y, values, need_grads=False)
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

    def _dataset(self, x, y):
        """x and y on the device for the shared loop: arrays, lists or dicts (by input/output name)."""
        return x if isinstance(x, training.DeviceDataset) else graph_training.GraphData(self, x, y)

    @on_device
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, **kwargs):
        """Keras' fit; inputs and targets may be arrays, lists or dicts of arrays (by input / output name).

        With several outputs the logs hold each output's loss and metrics under Keras' names.
        """
        self._ensure_built(x)
        data = self._dataset(x, y)
        if validation_split and validation_data is None:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            data, val = data.split(int(data.n * (1.0 - validation_split)))
            validation_data = (val, None)
        elif validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be (x_val, y_val); sample weights are not supported yet")
            validation_data = (self._dataset(*validation_data), None)
        return super().fit(data, None, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                           validation_data=validation_data, **kwargs)

    @on_device
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False, **kwargs):
        """Loss and metrics: a float, a list, or with ``return_dict`` a dict of Keras' log names."""
        self._ensure_built(x)
        return super().evaluate(self._dataset(x, y), None, batch_size=batch_size, verbose=verbose,
                                return_dict=return_dict, **kwargs)

    @on_device
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on this batch; its loss (and metrics) as Keras returns them."""
        if class_weight is not None or sample_weight is not None:
            raise NotImplementedError("class_weight and sample_weight are not supported yet")
        self._ensure_built(x)
        data = self._dataset(x, y)
        acc = metrics_mod.Accumulator(self.xp, self.metrics, self._outputs_logits)
        loss, out = self.train_step(data.x, data.y)
        acc.add(loss, out, [data.y if t is None else t for t in data.targets(self.metrics)], data.n)
        logs = acc.result()
        return logs if return_dict else _as_list(logs)

    @on_device
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        if sample_weight is not None:
            raise NotImplementedError("sample_weight is not supported yet")
        data = self._dataset(x, y)
        return self.evaluate(data, None, batch_size=max(data.n, 1), verbose=0, return_dict=return_dict)

    @on_device
    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(int(self._inputs_as_list(x)[0].shape[0]), 1), verbose=0)

    @on_device
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, log=None):
        """Outputs as host arrays: one array, or a list (a dict) for a model with several outputs."""
        if steps is not None or callbacks:
            raise NotImplementedError("predict on a functional Model takes no steps or callbacks yet: "
                                      "pass the samples to predict")
        return multi_output.predict(self, x, batch_size=batch_size or 32)

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
