"""What differs in Keras' model methods for a functional ``Model``: its dataset, fit's validation data, predict.

Inputs and targets may be arrays, lists or dicts (by input / output name);
they become one ``graph_training.GraphData`` on the device and go through the
loop every model shares (``training.fit`` / ``evaluate``). ``sample_weight``
is one array for every output, or a list / dict with one array (or None) per
output; ``class_weight`` needs a model with one output, as in Keras. evaluate
and the *_on_batch methods are the shared ones (``keras_api``) over ``_dataset``.
"""

from .. import training
from . import graph_training, multi_output
from .keras_api import on_device


class FunctionalKerasAPI:
    """Mixed into ``functional.Model`` ahead of ``Network``: its ``super()`` is the shared Keras API."""

    def _dataset(self, x, y, sample_weight=None, class_weight=None):
        """x, y and the sample weights on the device for the shared loop."""
        if isinstance(x, training.DeviceDataset):
            return training.as_dataset(self, x, y, sample_weight, class_weight)  # refuses weights given twice
        return graph_training.GraphData(self, x, y, sample_weight, class_weight)

    @on_device
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, sample_weight=None, class_weight=None, **kwargs):
        """Keras' fit; inputs and targets may be arrays, lists or dicts of arrays (by input / output name).

        With several outputs the logs hold each output's loss and metrics under
        Keras' names; ``<output>_loss`` is that output's weighted loss before
        its loss weight. ``validation_data`` may be (x, y, sample_weight).
        """
        self._ensure_built(x)
        data = self._dataset(x, y, sample_weight, class_weight)
        if validation_split and validation_data is None:
            if not 0 < validation_split < 1:
                raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
            data, val = data.split(int(data.n * (1.0 - validation_split)))  # the weights split with their rows
            validation_data = (val, None)
        elif validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, val_sample_weight)")
            validation_data = (self._dataset(*validation_data), None)
        return super().fit(data, None, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                           validation_data=validation_data, **kwargs)

    @on_device
    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(int(self._inputs_as_list(x)[0].shape[0]), 1), verbose=0)

    @on_device
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, log=None):
        """Outputs as host arrays: one array, or a list (a dict) for a model with several outputs;
        ``steps``: the first that many batches only; ``callbacks`` get the on_predict_* hooks."""
        return multi_output.predict(self, x, batch_size=batch_size or 32, verbose=verbose, steps=steps,
                                    callbacks=callbacks, log=log)
