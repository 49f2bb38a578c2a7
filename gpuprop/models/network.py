"""The model base class: Keras' model API (compile, fit, evaluate, predict,
save, training position) over layers, one forward, one backward, one step.

Every model kind (``Sequential``, graph models) subclasses ``Network`` and
inherits the whole Keras API; a graph model overrides ``build``, ``forward``
and ``backward``.

``train_step`` below is backpropagation in full: run the layers forward,
take the loss and its gradient, run the layers backward in reverse order
(each turns dL/d(output) into dL/d(input) and fills its parameter gradients),
then let the optimizer update every parameter in place.
"""

import re

from .. import config, initializers, losses, metrics, training
from .. import optimizers as optimizers_mod
from ..backend import get_backend
from ..layers import fused
from ..layers.base import Layer
from . import packing
from .nested import NestedModel, leaf_layers, refresh_params


class Network:
    """Layers on one backend. ``device`` is 'auto', 'cpu', 'gpu', 'gpu:N' or a Backend."""

    def __init__(self, layers=None, device="auto", seed=None, name=None):
        self.layers = []
        self.backend = get_backend(device)
        self.xp = self.backend.xp
        self.seed = int(seed) if seed is not None else initializers.fresh_seed()
        self.name = name or "sequential"
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.epoch = 0  # epochs completed, and steps completed within the current one (exact resume)
        self.step_in_epoch = 0
        self.metadata = {}  # free-form, saved in checkpoints (the CLI records dataset and batch size)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer; ``Input(shape)`` as the first entry gives the input shape, a model becomes one layer."""
        from ..layers.input import KerasTensor
        from .nested import NestedModel

        if isinstance(layer, KerasTensor):
            if self.layers or layer.node.inputs:
                raise ValueError("an Input can only be the first entry of a Sequential: "
                                 "Sequential([Input(shape=...), Dense(...), ...])")
            self._input_from = tuple(layer.shape[1:])
            return
        if isinstance(layer, Network):
            layer = NestedModel(layer)
        if not isinstance(layer, Layer):
            raise TypeError(f"expected a gpuprop layer, got {type(layer).__name__}")
        if self.built:
            raise RuntimeError("cannot add layers to a model that is already built")
        if not self.layers and layer.input_shape is None and getattr(self, "_input_from", None) is not None:
            layer.input_shape = self._input_from
        self.layers.append(layer)

    # --- building ---------------------------------------------------------------
    def build(self, input_shape=None):
        """Create every layer's weights; ``input_shape`` is per sample, or taken from the first layer."""
        if self.built:
            return
        shape = self.layers[0].input_shape if input_shape is None else tuple(input_shape)
        if shape is None:
            raise ValueError("the model does not know its input shape: pass input_shape= to the first layer")
        rng = initializers.host_rng(self.seed)  # host draws: same weights on every backend
        used = set()
        for i, layer in enumerate(self.layers):
            if layer.name is None or layer.name in used:
                layer.name = _unique_name(layer, used)
            used.add(layer.name)
            shape = layer.build(shape, self.backend, rng)
        leaves = leaf_layers(self.layers)  # nested models opened up
        for layer in self.layers:  # nobody reads dL/dx below the first weights: skip that work
            layer.need_input_grad = False
            if layer.params or isinstance(layer, NestedModel):
                break
        self._steps = fused.fuse([s for layer in self.layers
                                  for s in ((layer, layer.activation) if layer.activation else (layer,))])
        self.packed = packing.pack(leaves, self.backend)
        if self.packed is not None:  # the very lists the optimizer's flat-update check looks for
            self.params, self.grads = self.packed.param_views, self.packed.grad_views
        else:
            self.params = [p for layer in leaves for p in layer.params.values()]
            self.grads = [layer.grads[k] for layer in leaves for k in layer.params]
        for layer in self.layers:
            if isinstance(layer, NestedModel):
                refresh_params(layer.model)
        self.output_shape = shape
        self.built = True
        self._setup_training()

    def symbolic_output_shapes(self, input_shape):
        """Per-sample output shape(s) for ``input_shape``: the model called as a layer of a graph."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.symbolic_output_shapes(shape)[0]
        return [shape]

    def _setup_training(self):
        """Fuse the last activation into the loss when they pair (softmax + cross-entropy)."""
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
        self.optimizer.build(self.params, self.backend, packed=self.packed)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose optimizer, loss and metrics (strings or objects), as Keras' ``compile``."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses.get(loss).build(self.backend)
        self.metrics = [metrics_name(m) for m in (metrics or [])]
        self._setup_training()

    # --- the math ------------------------------------------------------------------
    def forward(self, x, training=False):
        """Output of the whole model (activations included)."""
        for step in self._steps:
            x = step.forward(x, training=training)
        return x

    def backward(self, grad):
        """Turn dL/d(output of the training steps) into parameter gradients, last layer first."""
        for step in reversed(self._train_steps):
            grad = step.backward(grad)
            if grad is None:
                break
        return grad

    def train_step(self, x, y):
        """One step of gradient descent on the batch (x, y). Returns (loss, training output) on the device."""
        out = x
        for step in self._train_steps:
            out = step.forward(out, training=True)
        loss, grad = self._loss_fn(y, out)
        self.backward(grad)
        self.optimizer.apply_gradients(self.params, self.grads)
        return loss, out

    def test_step(self, x, y):
        """(loss, training-form output) without updating anything."""
        out = x
        for step in self._train_steps:
            out = step.forward(out, training=False)
        loss, _ = self._loss_fn(y, out)
        return loss, out

    # --- Keras' training API ------------------------------------------------------
    def _ensure_built(self, x):
        if not self.built:
            self.build(self.layers[0].input_shape or tuple(x.shape[1:]))
        if self.optimizer is None:
            raise RuntimeError("compile the model before training or evaluating it")

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=None, log=None):
        """Train for ``epochs`` epochs in total (``initial_epoch`` defaults to epochs already done).

        ``callbacks`` are callables ``cb(epoch, logs, stats)`` run after each epoch.
        Returns a ``History``; ``history.stats`` holds per-epoch time and samples/s.
        """
        self._ensure_built(x)
        if validation_split and validation_data is None:
            # Keras takes the last fraction, before any shuffling
            cut = int(x.shape[0] * (1.0 - validation_split))
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        if initial_epoch is None:
            initial_epoch, initial_step = self.epoch, self.step_in_epoch
        else:
            initial_step = 0
        return training.fit(self, x, y, batch_size=batch_size or 32, epochs=epochs, verbose=verbose,
                            validation_data=validation_data, shuffle=shuffle, initial_epoch=initial_epoch,
                            initial_step=initial_step, callbacks=callbacks or (), log=log)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Loss (and metrics) over (x, y): a float, or ``[loss, accuracy]`` with metrics, as Keras."""
        self._ensure_built(x)
        logs = training.evaluate(self, training.as_dataset(self, x, y), batch_size=batch_size or 32)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=None, verbose="auto"):
        """Model outputs (probabilities after softmax) as a host NumPy array."""
        if not self.built:
            self.build(self.layers[0].input_shape or tuple(x.shape[1:]))
        return training.predict(self, x, batch_size=batch_size or 32)

    def train_on_batch(self, x, y):
        """One gradient step on this batch; returns the loss as a float (Keras)."""
        self._ensure_built(x)
        data = training.DeviceDataset(self, x, y)
        loss, _ = self.train_step(data.x, data.y)
        return float(loss)

    def __call__(self, x, training=False):
        from ..layers.input import is_symbolic, symbolic_call

        if is_symbolic(x):  # the model used as a layer of a functional model
            return symbolic_call(self, x)
        if not self.built:
            self.build(tuple(x.shape[1:]))
        return self.forward(cast_input(self.backend, x), training=training)

    def save(self, filepath, metadata=None):
        """Write architecture, weights, optimizer state and training position atomically (.npz, no pickle)."""
        from .saving import save_model

        save_model(self, filepath, metadata)

    # --- weights ---------------------------------------------------------------------
    def get_weights(self):
        """Every layer's weights as host NumPy arrays, in Keras order and layout."""
        return [w for layer in self.layers for w in layer.get_weights()]

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

    def summary(self, print_fn=print):
        """Print a Keras-style table of layers, output shapes and parameter counts."""
        if not self.built:
            self.build()
        rows = [(f"{layer.name} ({getattr(layer, 'type_name', type(layer).__name__)})", str((None, *layer.output_shape)), str(layer.count_params()))
                for layer in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "".join(h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths))
        rule = "=" * len(line)
        out = [f'Model: "{self.name}" on {self.backend.describe()}', rule, line, rule]
        out += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        out += [rule, f"Total params: {self.count_params():,}"]
        print_fn("\n".join(out))


def metrics_name(m):
    name = str(m).lower()
    if name not in metrics.KNOWN:
        raise ValueError(f"unknown metric {m!r}: use one of {', '.join(sorted(metrics.KNOWN))}")
    return "accuracy" if name in ("acc", "accuracy") else name


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
