"""Keras' model methods (fit, evaluate, predict, the *_on_batch trio, save, summary), shared by every model kind.

``Network`` inherits these; they need from it only ``build``, ``forward``,
``train_step``, ``test_step``, ``layers`` and the compile state.
"""

import functools

from .. import training


def on_device(method):
    """Run a model entry point inside its backend's device scope.

    CuPy allocates on the thread's *current* device, which other backends and
    threads move; without this a ``gpu:1`` model's gradients, optimizer slots
    and buffers could land on device 0 and meet its weights in one kernel.
    """

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if not self.backend.is_gpu:  # one device: nothing to scope (saves ~1 µs of a 60 µs softmax step, twice)
            return method(self, *args, **kwargs)
        with self.backend.scope():
            return method(self, *args, **kwargs)

    return run


class KerasModelAPI:
    def _dataset(self, x, y, sample_weight=None, class_weight=None):
        """x, y and the sample weights on the model's device, as the shared loop takes them (graph models
        override this: several inputs and outputs)."""
        return training.as_dataset(self, x, y, sample_weight, class_weight)

    def _ensure_built(self, x, need_compile=True):
        if not self.built:
            self.build(self.layers[0].input_shape or tuple(x.shape[1:]))
        if need_compile and self.optimizer is None:
            raise RuntimeError("compile the model before training or evaluating it: "
                               "model.compile(optimizer, loss, metrics=[...])")

    @on_device
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, log=None):
        """Train ``epochs - initial_epoch`` epochs on every call, as Keras; returns a ``History``.

        A model stopped mid-epoch (Ctrl-C, or loaded from such a checkpoint)
        finishes that epoch first, exactly as the uninterrupted run would have.
        ``callbacks``: ``gpuprop.callbacks.Callback`` objects, Keras-style
        objects with ``on_*`` methods, or functions ``f(epoch, logs, stats)``
        run after each epoch. ``log``: the stream for progress lines (gpuprop's).
        ``sample_weight`` (one weight per sample) or ``class_weight`` ({class: weight})
        weight each sample's loss as Keras does: Σ wᵢ·lᵢ / batch size, and the
        ``weighted_metrics`` (Σ wᵢ·mᵢ / Σ wᵢ); ``metrics`` stay unweighted.
        ``validation_data`` may be (x, y, sample_weight);
        ``validation_steps`` validates on its first that many batches. With ``steps_per_epoch``
        one pass over the data spans epochs, as Keras' iterator does: an epoch takes the next
        batches of the current shuffle and ends early, with a warning, when the pass runs out.
        """
        from ..callbacks.base import CallbackList

        CallbackList(callbacks, self, {})  # a wrong callback fails here, before any training
        self._ensure_built(x)
        if validation_split and validation_data is None:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            if isinstance(x, training.DeviceDataset):
                raise ValueError("validation_split needs arrays: pass validation_data with a DeviceDataset")
            cut = int(x.shape[0] * (1.0 - validation_split))  # Keras takes the last fraction, before shuffling
            val_w = None if sample_weight is None else sample_weight[cut:]  # the weights split with their rows
            sample_weight = None if sample_weight is None else sample_weight[:cut]
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:], val_w)
        if validation_data is not None and len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, val_sample_weight)")
        return training.fit(self, x, y, batch_size=batch_size or 32, epochs=epochs, verbose=verbose,
                            validation_data=validation_data, validation_freq=validation_freq, shuffle=shuffle,
                            initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                            log=log, validation_batch_size=validation_batch_size, sample_weight=sample_weight,
                            class_weight=class_weight, validation_steps=validation_steps)

    @on_device
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, log=None):
        """Loss (and metrics) over (x, y): a float, ``[loss, *metrics]``, or a dict with ``return_dict``.

        ``sample_weight`` weights the loss and weighted metrics as in ``fit``; ``steps``: the first
        that many batches only."""
        self._ensure_built(x)
        logs = training.evaluate(self, self._dataset(x, y, sample_weight), batch_size=batch_size or 32,
                                 verbose=verbose, callbacks=callbacks, log=log, steps=steps)
        return logs if return_dict else _as_list(logs)

    @on_device
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, log=None):
        """Model outputs (probabilities after softmax) as a host NumPy array; ``steps``: the first that many
        batches only."""
        self._ensure_built(x, need_compile=False)
        return training.predict(self, x, batch_size=batch_size or 32, verbose=verbose, callbacks=callbacks, log=log,
                                steps=steps)

    @on_device
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One gradient step on this batch (its loss weighted as in ``fit``); the loss (and metrics) on it
        as Keras returns them."""
        self._ensure_built(x)
        data = self._dataset(x, y, sample_weight, class_weight)
        from ..metrics import Accumulator

        acc = Accumulator(self.xp, self.metrics, self._outputs_logits)
        loss, out = self.train_step(data.x, data.y, data.w)
        acc.add(loss, out, [data.y if t is None else t for t in data.targets(self.metrics)], data.n, data.w)
        logs = acc.result()
        return logs if return_dict else _as_list(logs)

    @on_device
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on this batch, without updating anything; the loss weighted as in ``fit``."""
        self._ensure_built(x)
        data = self._dataset(x, y, sample_weight)
        logs = training.evaluate(self, data, batch_size=max(data.n, 1))
        return logs if return_dict else _as_list(logs)

    @on_device
    def predict_on_batch(self, x):
        """Outputs for this one batch as a host NumPy array."""
        self._ensure_built(x, need_compile=False)
        return self.backend.to_host(self(x))

    @on_device
    def __call__(self, x, training=False):
        from ..layers.input import is_symbolic, symbolic_call

        if is_symbolic(x):  # the model used as a layer of a functional model
            return symbolic_call(self, x)
        self._ensure_built(x, need_compile=False)
        from .network import cast_input

        return self.forward(cast_input(self.backend, x), training=training)

    @on_device
    def save(self, filepath, metadata=None):
        """Write the model atomically in the format its name asks for: .npz (architecture, weights, optimizer
        state and training position; no pickle), .keras or .h5/.hdf5 (Keras' files)."""
        from .saving import save_model

        save_model(self, filepath, metadata)

    def save_weights(self, filepath):
        """Write the weights: .weights.h5 (Keras 3 layout), .h5/.hdf5 (Keras HDF5 layout) or .npz."""
        from .saving import save_weights

        save_weights(self, filepath)

    def load_weights(self, filepath):
        """Read weights from a .weights.h5, .h5, .hdf5, .keras or .npz file (gpuprop's or Keras 3's)."""
        from .saving import load_weights

        load_weights(self, filepath)

    # --- what Keras programs ask a model -----------------------------------------------------------
    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at ``index`` of ``model.layers`` (Keras)."""
        if (name is None) == (index is None):
            raise ValueError(f"get_layer takes a layer name or an index, not {'both' if name is not None else 'neither'}"
                             f" (got name={name!r}, index={index!r})")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer(index={index}): the model has {len(self.layers)} layers")
            return _unwrapped(self.layers[index])
        for layer in self.layers:
            if layer.name == name:
                return _unwrapped(layer)
        raise ValueError(f"no layer named {name!r}: the layers are {', '.join(repr(l.name) for l in self.layers)}")

    @property
    def input_shape(self):
        """Keras' input shape with its batch axis, ``(None, 28, 28, 1)``; a list for several inputs."""
        tensors = getattr(self, "inputs", None)
        if tensors:
            shapes = [tuple(t.shape) for t in tensors]
            return shapes[0] if len(shapes) == 1 else shapes
        first = self.layers[0].input_shape if self.layers else None
        if first is None:
            raise AttributeError(f"model {self.name!r} does not know its input shape yet: give the first layer "
                                 "input_shape= (or start with keras.Input), or call build/fit first")
        return (None, *first)

    @property
    def output_shape(self):
        """Keras' output shape with its batch axis, ``(None, 10)``; a list for several outputs."""
        if not self.built:
            raise AttributeError(f"model {self.name!r} is not built yet, so it has no output shape: give the first "
                                 "layer input_shape= (or start with keras.Input), or call build/fit first")
        shapes = [(None, *s) for s in getattr(self, "output_shapes", None) or [self._output_shape]]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def input(self):
        """The symbolic input tensor (a list for several), as Keras' ``model.input``."""
        return self._symbolic("inputs")

    @property
    def output(self):
        """The symbolic output tensor (a list for several), as Keras' ``model.output``."""
        return self._symbolic("outputs")

    def _symbolic(self, what):
        tensors = getattr(self, what, None)
        if not tensors:
            raise AttributeError(f"model {self.name!r} has no symbolic {what} yet: give the first layer input_shape= "
                                 "(or start with keras.Input)")
        return tensors[0] if len(tensors) == 1 else list(tensors)

    @property
    def metrics_names(self):
        """The names of ``evaluate``'s list, in its order: ``['loss', 'accuracy']`` (so ``dict(zip(...))`` works, as
        in tf.keras; Keras 3 gives ``['loss', 'compile_metrics']`` here, which names no value)."""
        if self.optimizer is None:
            return []
        return ["loss", *sorted(m.name for m in self.metrics if m.name != "loss")]

    def summary(self, print_fn=print):
        """Print a Keras-style table of layers, output shapes and parameter counts."""
        if not self.built:
            self.build()
        heads = ("Layer (type)", "Output Shape", "Param #")
        rows = [(f"{layer.name} ({getattr(layer, 'type_name', type(layer).__name__)})", str((None, *layer.output_shape)), str(layer.count_params()))
                for layer in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(heads)]
        line = "".join(h.ljust(w) for h, w in zip(heads, widths))
        rule = "=" * len(line)
        out = [f'Model: "{self.name}" on {self.backend.describe()}', rule, line, rule]
        out += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        total, trainable = self.count_params(), self.count_trainable_params()
        out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}"]
        print_fn("\n".join(out))


def _unwrapped(layer):
    """A model inside a Sequential is kept wrapped as one layer; Keras hands back the model itself."""
    return getattr(layer, "model", layer)


def _as_list(logs):
    """Keras' non-dict result: the loss alone, or ``[loss, *metrics]``."""
    if len(logs) == 1:
        return logs["loss"]
    return [logs["loss"], *(v for k, v in logs.items() if k != "loss")]
