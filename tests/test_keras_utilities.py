"""keras.activations.* as callables on arrays, utils.set_random_seed and utils.plot_model.

Activations are checked against Keras 3's own functions (and exact GELU's erf against
``math.erf``); set_random_seed against a second run of the same program; plot_model by
reading the PNG back with Pillow and the drawn boxes and arrows against the model's layers.
"""

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from gpuprop import Sequential, activations, layers, utils
from tests.keras_oracle import keras

NAMES = ["relu", "leaky_relu", "relu6", "elu", "selu", "sigmoid", "hard_sigmoid", "tanh", "softplus", "softsign",
         "silu", "swish", "mish", "exponential", "linear", "softmax", "log_softmax", "gelu"]


def test_activations_match_keras(rng):
    k = keras()
    x = (rng.standard_normal((5, 7)) * 4).astype("float32")
    cases = [(n, {}) for n in NAMES] + [
        ("relu", {"negative_slope": 0.1, "max_value": 3.0, "threshold": 0.5}), ("relu", {"max_value": 6.0}),
        ("leaky_relu", {"negative_slope": 0.05}), ("elu", {"alpha": 0.5}), ("gelu", {"approximate": True}),
        ("softmax", {"axis": 0}), ("log_softmax", {"axis": 0})]
    for name, kw in cases:
        ours = np.asarray(getattr(activations, name)(x, **kw))
        theirs = k.ops.convert_to_numpy(getattr(k.activations, name)(x, **kw))
        assert ours.shape == x.shape and ours.dtype == np.float32, name
        np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-6, err_msg=f"{name} {kw}")


def test_exact_gelu_uses_erf_to_float64_precision():
    x = np.linspace(-9, 9, 2001)
    want = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])  # erfc: exact in the left tail too
    # 8(1 + x²) units of float64 rounding: x² is Φ's condition number in the left tail (tests/test_gelu.py)
    assert (np.abs(activations.gelu(x) - want) <= 8 * 2.0**-52 * (1 + x * x) * np.abs(want)).all()


def test_activations_work_on_lists_and_as_layer_arguments(rng):
    assert activations.relu([-1, 2]).tolist() == [0.0, 2.0]
    x = rng.standard_normal((4, 3)).astype("float32")
    by_fn = Sequential([layers.Dense(5, activation=activations.softmax, input_shape=(3,))], seed=1, device="cpu")
    by_name = Sequential([layers.Dense(5, activation="softmax", input_shape=(3,))], seed=1, device="cpu")
    np.testing.assert_array_equal(by_fn.predict(x), by_name.predict(x))
    assert activations.get("relu") is activations.relu
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        activations.get("nope")


def test_set_random_seed_repeats_unseeded_programs(rng):
    x, y = rng.standard_normal((40, 6)).astype("float32"), rng.integers(0, 3, 40)

    def program():
        model = Sequential([layers.Dense(8, activation="relu", input_shape=(6,)), layers.Dropout(0.3),
                            layers.Dense(3, activation="softmax")], device="cpu")  # no seed=
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return model.get_weights(), np.random.rand(), random.random()

    utils.set_random_seed(7)
    first = program()
    utils.set_random_seed(7)
    second = program()
    utils.set_random_seed(8)
    third = program()
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    assert first[1:] == second[1:]
    assert not np.array_equal(first[0][0], third[0][0])
    with pytest.raises(ValueError, match="non-negative integer"):
        utils.set_random_seed(1.5)


def _cnn():
    return Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), layers.BatchNormalization(),
                       layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")], device="cpu")


def test_plot_model_draws_every_layer_and_connection(tmp_path):
    from PIL import Image

    from gpuprop.plotting import model_figure

    model = _cnn()
    path = tmp_path / "model.png"
    assert utils.plot_model(model, to_file=str(path), show_shapes=True, dpi=80) == str(path)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 300
        pixels = np.asarray(img.convert("L"))
    assert pixels.min() < 100 and pixels.max() > 200  # something drawn on a light background
    fig = model_figure(model, show_shapes=True)
    texts = [t.get_text() for t in fig.axes[0].texts if (t.get_gid() or "").startswith("layer:")]
    assert [t.split(" ")[0] for t in texts] == ["input_layer", "conv2d", "batch_normalization", "max_pooling2d",
                                                "flatten", "dense"]
    assert "Output shape: (None, 3, 3, 4)" in texts[3]
    arrows = [c for c in fig.axes[0].get_children() if c.get_gid() == "edge"]
    assert len(arrows) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["model.png"]  # no temporary file left


def test_plot_model_needs_neither_pydot_nor_graphviz(tmp_path):
    code = ("import sys; sys.modules['pydot'] = None; sys.modules['graphviz'] = None; sys.modules['pydotplus'] = None\n"
            "from gpuprop import Sequential, layers, utils\n"
            "m = Sequential([layers.Dense(3, input_shape=(4,))], device='cpu')\n"
            f"utils.plot_model(m, {str(tmp_path / 'm.png')!r}, rankdir='LR')\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__('pathlib').Path(__file__).parents[1]))
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_plot_model_refuses_a_name_without_an_image_format(tmp_path):
    with pytest.raises(ValueError, match="end the name with one of"):
        utils.plot_model(_cnn(), to_file=str(tmp_path / "model.graph"))
    assert list(tmp_path.iterdir()) == []
