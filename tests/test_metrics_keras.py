"""Metrics sparse_categorical_accuracy, categorical_accuracy, top_k_categorical_accuracy, mae, mse.

Checked against Keras 3 itself: the function forms and metric objects on arrays against
``keras.metrics``, the log names ``fit`` writes against the names Keras' own ``fit`` writes,
and ``evaluate``'s values against Keras' functions applied to ``predict``'s outputs.
"""

import numpy as np
import pytest

from gpuprop import Sequential, layers, metrics
from tests.keras_oracle import keras

FUNCTIONS = ["sparse_categorical_accuracy", "categorical_accuracy", "top_k_categorical_accuracy",
             "sparse_top_k_categorical_accuracy", "mean_absolute_error", "mean_squared_error"]


def _arrays(rng, n=40, k=7):
    scores = rng.standard_normal((n, k))
    scores[:5, 1] = scores[:5, 2]  # ties, where top-k's rule matters
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, n)
    return probs, labels, np.eye(k)[labels]


def test_function_forms_and_objects_match_keras(rng):
    k = keras()
    probs, labels, onehot = _arrays(rng)
    for name in FUNCTIONS:
        y = labels if name.startswith("sparse") else onehot
        kw = {"k": 2} if "top_k" in name else {}
        ours = np.asarray(getattr(metrics, name)(y, probs, **kw))
        theirs = k.ops.convert_to_numpy(getattr(k.metrics, name)(y, probs, **kw))
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7, err_msg=name)
    for cls, y, kw in [("SparseCategoricalAccuracy", labels, {}), ("CategoricalAccuracy", onehot, {}),
                       ("TopKCategoricalAccuracy", onehot, {"k": 3}), ("MeanAbsoluteError", onehot, {}),
                       ("MeanSquaredError", onehot, {})]:
        ours, theirs = getattr(metrics, cls)(**kw), getattr(k.metrics, cls)(**kw)
        for half in (slice(0, 17), slice(17, None)):  # two updates: a running mean over every sample
            ours.update_state(y[half], probs[half])
            theirs.update_state(y[half], probs[half])
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6), cls
        assert ours.name == theirs.name


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_log_names_and_values_match_keras(rng, loss):
    k = keras()
    sparse = loss.startswith("sparse")
    names = (["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"] if sparse else
             ["categorical_accuracy", "top_k_categorical_accuracy", "mae", "mse", "mean_absolute_error"])
    x = rng.standard_normal((64, 5)).astype("float32")
    labels = rng.integers(0, 7, 64)
    y = labels if sparse else np.eye(7, dtype="float32")[labels]

    twin = k.Sequential([k.Input((5,)), k.layers.Dense(7, activation="softmax")])
    twin.compile("sgd", loss, metrics=names)
    keras_logs = twin.fit(x, y, epochs=1, verbose=0).history

    model = Sequential([layers.Dense(7, activation="softmax", input_shape=(5,))], seed=0, device="cpu")
    model.compile("sgd", loss, metrics=names)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert sorted(history.history) == sorted(keras_logs)

    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    probs = model.predict(x)
    for name in names:
        fn = getattr(k.metrics, {"mae": "mean_absolute_error", "mse": "mean_squared_error"}.get(name, name))
        want = float(np.mean(k.ops.convert_to_numpy(fn(y, probs))))
        assert logs[name] == pytest.approx(want, rel=1e-5, abs=1e-7), name


def test_compile_takes_metric_functions_and_objects(rng):
    x = rng.standard_normal((20, 4)).astype("float32")
    y = rng.integers(0, 3, 20)
    model = Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))], seed=0, device="cpu")
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=[metrics.sparse_categorical_accuracy, metrics.SparseTopKCategoricalAccuracy(k=2)])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"}
    pred = model.predict(x)
    assert logs["sparse_categorical_accuracy"] == pytest.approx(np.mean(pred.argmax(1) == y))
    second = (pred > pred[np.arange(20), y][:, None]).sum(1) < 2
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean(second))
    with pytest.raises(ValueError, match="same shape"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["mae"])
        model.evaluate(x, y, verbose=0)
