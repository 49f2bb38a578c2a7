"""Inputs that would train silently wrong are refused with one clear error: labels out of range, float16.

Out-of-range labels: CuPy wraps an out-of-bounds index where NumPy raises, and
the loss gathers with flat indices, so on either device a label of 12 with 10
classes would read another row's logit. Half precision: Adam's ε (1e-7) is 0 in
float16 and gradients underflow, so gpuprop refuses it rather than train badly.
"""

import numpy as np
import pytest

from gpuprop import config, zoo
from gpuprop.errors import DataError
from gpuprop.layers import Dense
from gpuprop.models import Sequential


def _model(backend):
    model = zoo.build("softmax", device=backend, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("bad", [12, 10, -1])
def test_out_of_range_label_is_refused_before_training(backend, bad):
    model = _model(backend)
    x = np.random.default_rng(0).random((40, 28, 28)).astype("float32")
    y = np.arange(40) % 10
    y[0] = bad  # the first row: a flat gather would land inside the batch and raise nothing
    model.build()
    before = model.get_weights()
    with pytest.raises(DataError) as err:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    msg = str(err.value)
    assert f"label {bad} is out of range" in msg and "10 classes" in msg and "0..9" in msg
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # nothing trained
    with pytest.raises(DataError, match=f"label {bad} "):
        model.evaluate(x, y, verbose=0)


def test_labels_in_range_pass(backend):
    model = _model(backend)
    x = np.random.default_rng(0).random((20, 28, 28)).astype("float32")
    model.fit(x, np.arange(20) % 10, batch_size=10, epochs=1, verbose=0)  # 0 and 9 both present


@pytest.mark.parametrize("half", ["float16", "bfloat16", np.float16])
def test_float16_is_refused_with_a_clear_error(half):
    old = config.floatx()
    with pytest.raises(ValueError, match="not supported: half-precision training needs loss scaling.*float32"):
        config.set_floatx(half)
    assert config.floatx() == old
    with pytest.raises(ValueError, match="Dense dtype 'float16|Dense dtype 'bfloat16"):
        # the model builds as soon as its input shape is known (Keras' rule, keras-fit): at construction here
        Sequential([Dense(3, dtype=half, input_shape=(4,))], device="cpu").build()
