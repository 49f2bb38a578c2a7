"""Losses: function forms, the new classes and ``compile(loss=function)``.

Values are checked against Keras 3's own functions and classes (the spec), gradients
against float64 central finite differences of the loss (``gradcheck.check_loss``).
"""

import numpy as np
import pytest

from gpuprop import Sequential, layers, losses
from gpuprop.gradcheck import check_loss

from tests.keras_oracle import keras


def _cases(rng, n=6, k=4):
    """(name, y_true, y_pred, kwargs) in the ranges each loss expects."""
    z = rng.standard_normal((n, k))
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(k)[rng.integers(0, k, n)]
    labels = rng.integers(0, k, n)
    bits = rng.integers(0, 2, (n, k)).astype(np.float64)
    signs = 2 * bits - 1
    reg_t, reg_p = rng.standard_normal((n, k)), rng.standard_normal((n, k)) * 2
    return [
        ("mean_squared_error", reg_t, reg_p, {}),
        ("mean_absolute_error", reg_t, reg_p, {}),
        ("huber", reg_t, reg_p, {}),
        ("huber", reg_t, reg_p, {"delta": 0.5}),
        ("categorical_crossentropy", onehot, probs, {}),
        ("categorical_crossentropy", onehot, z, {"from_logits": True}),
        ("sparse_categorical_crossentropy", labels, probs, {}),
        ("sparse_categorical_crossentropy", labels, z, {"from_logits": True}),
        ("binary_crossentropy", bits, rng.uniform(0.05, 0.95, (n, k)), {}),
        ("binary_crossentropy", bits, z, {"from_logits": True}),
        ("kl_divergence", probs[::-1].copy(), probs, {}),
        ("hinge", bits, z, {}),
        ("hinge", signs, z, {}),
        ("categorical_hinge", onehot, z, {}),
    ]


def test_function_forms_match_keras(rng):
    k = keras()
    for name, y, p, kw in _cases(rng):
        ours = np.asarray(getattr(losses, name)(y, p, **kw))
        theirs = k.ops.convert_to_numpy(getattr(k.losses, name)(y, p, **kw))
        assert ours.shape == (y.shape[0],), name
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7, err_msg=f"{name} {kw}")


CLASSES = {"mean_squared_error": "MeanSquaredError", "mean_absolute_error": "MeanAbsoluteError", "huber": "Huber",
           "categorical_crossentropy": "CategoricalCrossentropy",
           "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
           "binary_crossentropy": "BinaryCrossentropy", "kl_divergence": "KLDivergence", "hinge": "Hinge",
           "categorical_hinge": "CategoricalHinge"}


def test_loss_objects_are_callable_on_arrays_as_keras(rng):
    k = keras()
    for name, y, p, kw in _cases(rng):
        ours = float(getattr(losses, CLASSES[name])(**kw)(y, p))
        theirs = float(k.ops.convert_to_numpy(getattr(k.losses, CLASSES[name])(**kw)(y, p)))
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-7), f"{name} {kw}"


@pytest.mark.parametrize("name", ["mean_absolute_error", "huber", "kl_divergence", "hinge", "categorical_hinge",
                                  "mean_squared_error", "binary_crossentropy"])
def test_new_loss_gradients_match_finite_differences(backend, rng, name):
    for case_name, y, p, kw in _cases(rng):
        if case_name != name or kw.get("from_logits"):
            continue
        if name == "kl_divergence":
            p = p * 0.9 + 0.02  # away from the clip at ε and 1, where the loss has a kink
        loss = getattr(losses, CLASSES[name])(**kw)
        err = check_loss(loss, y, p, backend=backend)["y_pred"]
        assert err < 1e-6, f"{name} {kw}: relative error {err}"


def test_compile_takes_function_forms_and_classes(rng):
    x = rng.standard_normal((32, 5)).astype("float32")
    y = np.eye(3)[rng.integers(0, 3, 32)].astype("float32")
    results = []
    for loss in ("categorical_crossentropy", losses.categorical_crossentropy, losses.CategoricalCrossentropy,
                 "CategoricalCrossentropy"):
        model = Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))], seed=0, device="cpu")
        model.compile("sgd", loss=loss)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        results.append(model.get_weights()[0])
        assert isinstance(model.loss, losses.CategoricalCrossentropy)
    for w in results[1:]:
        np.testing.assert_array_equal(w, results[0])
    for name, fn in [("huber", losses.huber), ("kld", losses.kld), ("mae", losses.mae), ("hinge", losses.hinge),
                     ("categorical_hinge", losses.categorical_hinge)]:
        assert type(losses.get(name)) is type(losses.get(fn)) is fn.loss_class


def test_an_arbitrary_function_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="cannot differentiate"):
        losses.get(lambda y_true, y_pred: (y_true - y_pred) ** 2)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.categorical_crossentropy(np.eye(2), np.eye(2) * 0.9 + 0.05, label_smoothing=0.1)


def test_loss_settings_survive_a_checkpoint(tmp_path, rng):
    model = Sequential([layers.Dense(2, input_shape=(3,))], seed=0, device="cpu")
    model.compile("sgd", loss=losses.Huber(delta=0.25))
    model.fit(rng.standard_normal((8, 3)), rng.standard_normal((8, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    from gpuprop import load_model

    again = load_model(tmp_path / "m.npz", device="cpu")
    assert isinstance(again.loss, losses.Huber) and again.loss.delta == 0.25
