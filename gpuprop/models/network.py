"""The model base class: Keras' model API (compile, fit, evaluate, predict,
save, training position, trainable) over layers, one forward, one backward,
one step.

Every model kind (``Sequential``, graph models) subclasses ``Network`` and
inherits the whole Keras API; a graph model overrides ``build``, ``forward``
and ``backward``. ``train_step`` below is backpropagation in full: run the
layers forward, take the loss and its gradient, run the layers backward in
reverse order (each turns dL/d(output) into dL/d(input) and fills its
parameter gradients), then let the optimizer update every trainable
parameter in place.
"""

import re

from .. import config, initializers, losses
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..backend import get_backend
from ..layers import base as base_layers
from ..layers import fused
from ..layers.base import Layer
from . import packing
from .keras_api import KerasModelAPI, on_device  # noqa: F401 (on_device: shared with other model kinds)
from .nested import NestedModel, leaf_layers, refresh_params


class Network(KerasModelAPI):
    """Layers on one backend. ``device`` is 'auto', 'cpu', 'gpu', 'gpu:N' or a Backend.

    Built (weights created) as soon as the first layer knows its input shape,
    as Keras does; otherwise at the first ``fit``/``predict``/``build``.
    """

    supports_sample_weight = True  # train_step/test_step take sample_weight (graph models: not yet)

    def __init__(self, layers=None, device="auto", seed=None, name=None, trainable=True):
        self.layers = []
        self.backend = get_backend(device)
        self.xp = self.backend.xp
        self.seed = int(seed) if seed is not None else initializers.fresh_seed()
        self.name = name or "sequential"
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.gradient_reducer = None  # data-parallel fit: averages the gradients across ranks before the update
        self.epoch = 0  # epochs completed, and steps completed within the current one (exact resume)
        self.step_in_epoch = 0
        self.metadata = {}  # free-form, saved in checkpoints (the CLI records dataset and batch size)
        self.stop_training = False
        self.history = None
        self._trainable = bool(trainable)
        for layer in layers or []:
            layer = self._check_layer(layer)
            if layer is not None:
                self.layers.append(layer)
        if self.layers and self.layers[0].input_shape is not None:
            self.build()

    def _check_layer(self, layer):
        """The layer to append: ``Input(shape)`` as the first entry only gives the input shape (None is
        returned), and a model becomes one layer (``Sequential([base_model, Softmax()])``)."""
        from ..layers.input import KerasTensor

        if isinstance(layer, KerasTensor):
            if self.layers or layer.node.inputs:
                raise ValueError("an Input can only be the first entry of a Sequential: "
                                 "Sequential([Input(shape=...), Dense(...), ...])")
            self._input_from = tuple(layer.shape[1:])
            return None
        if isinstance(layer, Network):
            layer = NestedModel(layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"expected a gpuprop layer, got {type(layer).__name__}")
        if not self._trainable:
            layer.trainable = False
        if not self.layers and layer.input_shape is None and getattr(self, "_input_from", None) is not None:
            layer.input_shape = self._input_from
        return layer

    @on_device
    def add(self, layer):
        """Append ``layer``; a built model builds it at once on its current output shape (Keras)."""
        layer = self._check_layer(layer)
        if layer is None:
            return
        self.layers.append(layer)
        if self.built:
            self._name_layer(layer, {other.name for other in self.layers[:-1]})
            self.output_shape = layer.build(self.output_shape, self.backend, self._rng)
            self._link()
        elif self.layers[0].input_shape is not None:
            self.build()

    # --- building ---------------------------------------------------------------
    @on_device
    def build(self, input_shape=None):
        """Create every layer's weights; ``input_shape`` is per sample (or Keras' ``(None, ...)``), or the first layer's."""
        if self.built:
            return
        shape = self.layers[0].input_shape if input_shape is None else tuple(input_shape)
        if shape and shape[0] is None:  # Keras' build((None, 8)) names the batch axis: drop it
            shape = shape[1:]
        if shape is None:
            raise ValueError("the model does not know its input shape: pass input_shape= to the first layer")
        self._rng = initializers.host_rng(self.seed)  # host draws: same weights on every backend
        used = set()
        for layer in self.layers:
            self._name_layer(layer, used)
            used.add(layer.name)
            shape = layer.build(shape, self.backend, self._rng)
        self.output_shape = shape
        self.built = True
        self._link()

    @staticmethod
    def _name_layer(layer, used):
        if layer.name is None or layer.name in used:
            layer.name = _unique_name(layer, used)

    def _link(self):
        """After (re)building: input-gradient needs, fused steps, packed parameters, training setup."""
        below_weights = True
        for layer in self.layers:  # nobody reads dL/dx below the first weights: skip that work
            layer.need_input_grad = not below_weights
            if layer.params or isinstance(layer, NestedModel):
                below_weights = False
        self._steps = fused.fuse([s for layer in self.layers
                                  for s in ((layer, layer.activation) if layer.activation else (layer,))])
        leaves = self._leaves()  # nested models opened up
        self.packed = packing.pack(leaves, self.backend)
        if self.packed is not None:  # the very lists the optimizer's flat-update check looks for
            self.params, self.grads = self.packed.param_views, self.packed.grad_views
        else:
            self.params = [p for layer in leaves for p in layer.params.values()]
            self.grads = [layer.grads[k] for layer in leaves for k in layer.params]
        for layer in self.layers:
            if isinstance(layer, NestedModel):
                refresh_params(layer.model)
        self._setup_training()

    def _leaves(self):
        """The layers that hold weights, nested models opened up (each layer once, Keras' order)."""
        return leaf_layers(self.layers)

    def symbolic_output_shapes(self, input_shape):
        """Per-sample output shape(s) for ``input_shape``: the model called as a layer of a graph."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.symbolic_output_shapes(shape)[0]
        return [shape]

    def _setup_training(self):
        """Fuse the last activation into the loss when they pair (softmax + cross-entropy); pick what trains."""
        if not self.built or self.loss is None:
            return
        last = self._steps[-1]
        kind = getattr(last, "kind", None)
        fuse = not self.loss.from_logits and self.loss.fuses_with is not None and kind == self.loss.fuses_with
        self._train_steps = self._steps[:-1] if fuse else self._steps
        if fuse or self.loss.from_logits:
            self._loss_fn = self.loss.loss_and_grad_from_logits
        else:
            self._loss_fn = self.loss.loss_and_grad_from_output
        self._outputs_logits = fuse or self.loss.from_logits
        self.metrics = [m.bind(self.loss.name) for m in self.metrics]
        self._opt_params = None
        self._select_trainable()

    def _select_trainable(self):
        """Give the optimizer exactly the weights of trainable layers (all of them: one flat update).

        Called at compile and whenever some layer's ``trainable`` changed since
        (checked before each step, as Keras 3 does); weights that stay
        trainable keep their optimizer slots (momentum, Adam's moments).
        """
        self._trainable_seen = base_layers.TRAINABLE_CHANGES
        leaves = self._leaves()  # nested models opened up
        keys = [(layer, k) for layer in leaves for k in layer.params]
        if any(p is not layer.params[k] for p, (layer, k) in zip(self.params, keys)):
            # another model sharing these layers packed their weights since: follow them, one by one
            self.packed = None
            self.params, self.grads = [layer.params[k] for layer, k in keys], [layer.grads[k] for layer, k in keys]
        if all(layer.trainable for layer in leaves):
            params, grads, packed = self.params, self.grads, self.packed
        else:
            keys = [(layer, k) for layer, k in keys if layer.trainable]
            params, grads, packed = [layer.params[k] for layer, k in keys], [layer.grads[k] for layer, k in keys], None
        if self._opt_params is not None and [id(p) for p in params] == [id(p) for p in self._opt_params]:
            return
        # slots (momentum, Adam's moments) follow their weight, named by (layer, weight name): arrays may have moved
        old = dict(zip(self._opt_keys, self.optimizer.slots)) if self._opt_params is not None else {}
        self._opt_params, self._opt_grads = params, grads
        self._opt_keys = [(id(layer), k) for layer, k in keys]
        self.optimizer.build(params, self.backend, packed=packed)
        for key, slots in zip(self._opt_keys, self.optimizer.slots):
            for name, arr in old.get(key, {}).items():
                slots[name][...] = arr

    @on_device
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None):
        """Choose optimizer, loss and metrics (strings or objects), as Keras' ``compile``.

        Metrics are never weighted by sample_weight/class_weight: ``weighted_metrics`` is refused."""
        if weighted_metrics:
            raise ValueError("weighted_metrics is not supported: gpuprop weights the loss only; pass the metrics "
                             "as metrics=[...] (computed unweighted, as Keras computes metrics=)")
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses.get(loss).build(self.backend)
        self.metrics = [metrics_mod.get(m, self.loss.name) for m in (metrics or [])]
        self._setup_training()

    # --- the math ------------------------------------------------------------------
    @on_device
    def forward(self, x, training=False):
        """Output of the whole model (activations included)."""
        for step in self._steps:
            x = step.forward(x, training=training)
        return x

    @on_device
    def backward(self, grad):
        """Turn dL/d(output of the training steps) into parameter gradients, last layer first."""
        for step in reversed(self._train_steps):
            grad = step.backward(grad)
            if grad is None:
                break
        return grad

    @on_device
    def train_step(self, x, y, sample_weight=None):
        """One step of gradient descent on the batch (x, y), each sample's loss weighted by ``sample_weight``
        (a device array, or None: all 1). Returns (loss, training output) on the device."""
        out = x
        for step in self._train_steps:
            out = step.forward(out, training=True)
        loss, grad = self._loss_fn(y, out) if sample_weight is None else \
            self.loss.weighted_loss_and_grad(y, out, sample_weight, self._outputs_logits)
        self.backward(grad)
        if self._trainable_seen != base_layers.TRAINABLE_CHANGES:  # someone froze or unfroze a layer
            self._select_trainable()
        if self.gradient_reducer is not None:
            self.gradient_reducer(self)
        self.optimizer.apply_gradients(self._opt_params, self._opt_grads)
        return loss, out

    @on_device
    def test_step(self, x, y, sample_weight=None):
        """(loss, training-form output) without updating anything; the loss weighted as in ``train_step``."""
        out = x
        for step in self._train_steps:
            out = step.forward(out, training=False)
        loss, _ = self._loss_fn(y, out) if sample_weight is None else \
            self.loss.weighted_loss_and_grad(y, out, sample_weight, self._outputs_logits)
        return loss, out

    # --- weights ---------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """Freezes (or unfreezes) every layer, as Keras' ``model.trainable``; takes effect at the next step."""
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = self._trainable

    @property
    def trainable_weights(self):
        """Device arrays the optimizer updates (Keras order): trainable weights of trainable layers."""
        return [p for layer in self._leaves() if layer.trainable for p in layer.params.values()]

    @property
    def non_trainable_weights(self):
        """Frozen layers' weights, then every layer's state (BatchNorm's moving statistics), as Keras lists them."""
        return ([p for layer in self._leaves() if not layer.trainable for p in layer.params.values()]
                + [s for layer in self._leaves() for s in layer.state.values()])

    @on_device
    def get_weights(self):
        """Every layer's weights as host NumPy arrays, in Keras order and layout."""
        return [w for layer in self.layers for w in layer.get_weights()]

    @on_device
    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.weight_names()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights expected {expected} arrays, got {len(weights)}")
        for layer in self.layers:
            k = len(layer.weight_names())
            layer.set_weights(weights[:k])
            weights = weights[k:]

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def count_trainable_params(self):
        """Parameters an optimizer would update: trainable weights of trainable layers (Keras' Trainable params)."""
        return sum(int(a.size) for layer in self._leaves() if layer.trainable for a in layer.params.values())


def _unique_name(layer, used):
    # Keras' snake case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, ReLU -> re_lu
    base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)).lower()
    name, i = base, 1
    while name in used:
        name, i = f"{base}_{i}", i + 1
    return name


def cast_input(backend, x):
    """Host or device input as a float array of the model's dtype on its device."""
    dtype = config.floatx()
    return backend.asarray(x, dtype=dtype)
