"""Keras' ``Sequential`` API on top of the low-level ``Network``."""

from .. import training
from .network import Network, cast_input


class Sequential(Network):
    """A stack of layers trained with ``compile`` / ``fit``, as in Keras.

    >>> model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'),
    ...                     Dense(10, activation='softmax')], device='auto', seed=0)
    >>> model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
    >>> history = model.fit(x_train, y_train, batch_size=128, epochs=5)

    ``device`` (gpuprop's addition) is chosen once and kept; ``seed`` fixes
    the initial weights (identical on every device), shuffling and dropout.
    """

    def __init__(self, layers=None, name=None, device="auto", seed=None):
        super().__init__(layers, device=device, seed=seed, name=name)
        self.epoch = 0
        self.step_in_epoch = 0
        self.metadata = {}  # free-form, saved in checkpoints (the CLI records dataset and batch size)

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
        if not self.built:
            self.build(tuple(x.shape[1:]))
        return self.forward(cast_input(self.backend, x), training=training)

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

    def get_config(self):
        return {"name": self.name, "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                                              for layer in self.layers]}
