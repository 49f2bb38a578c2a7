"""Real Fashion-MNIST across the two libraries: Keras 3 reads the same files with its own loader.

Keras' ``fashion_mnist.load_data()`` finds the four files in ``$KERAS_HOME/datasets/fashion-mnist``
and downloads nothing; it runs in a subprocess so that KERAS_HOME is read fresh. A gpuprop MLP and
CNN (with BatchNormalization) trained here predict the test set in Keras as they do here; a
Keras-trained model predicts it in gpuprop as it does in Keras.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpuprop import Sequential, datasets, layers, load_model

FASHION = Path("/usr/share/datasets/fashion-mnist")
FILES = ["train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz"]

KERAS_SIDE = """
import sys, numpy as np, keras
out = sys.argv[1]
(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
np.save(out + '/keras_x_test.npy', x_test)
x = x_test[:1000].astype('float32') / 255.0
for name in ('mlp', 'cnn'):
    model = keras.saving.load_model(out + '/' + name + '.keras')
    np.save(out + '/' + name + '_in_keras.npy', model.predict(x if name == 'mlp' else x[..., None], verbose=0))
twin = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(32, activation='relu'),
                         keras.layers.BatchNormalization(), keras.layers.Dense(10, activation='softmax')])
twin.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])
twin.fit(x_train[:2000] / 255.0, y_train[:2000], epochs=1, batch_size=64, verbose=0)
twin.save(out + '/keras_mlp.keras')
np.save(out + '/keras_mlp_in_keras.npy', twin.predict(x, verbose=0))
"""


@pytest.mark.slow
@pytest.mark.skipif(not all((FASHION / f).is_file() for f in FILES),
                    reason=f"{FASHION} absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_models_predict_the_same_in_both_libraries(tmp_path):
    pytest.importorskip("h5py")
    probe = subprocess.run([sys.executable, "-c", "import keras"], env={**os.environ, "KERAS_BACKEND": "torch"},
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"Keras 3 is the oracle here and cannot be imported: {probe.stderr.strip().splitlines()[-1:]}")
    home = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    home.mkdir(parents=True)
    for f in FILES:
        (home / f).symlink_to(FASHION / f)

    (x_train, y_train), (x_test, _) = datasets.fashion_mnist.load_data(data_dir=FASHION, download=False)
    x_train, x = x_train[:2000].astype("float32") / 255.0, x_test[:1000].astype("float32") / 255.0
    ours = {
        "mlp": Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(64, activation="relu"),
                           layers.Dense(10, activation="softmax")], device="cpu", seed=0),
        "cnn": Sequential([layers.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
                           layers.BatchNormalization(), layers.MaxPooling2D(), layers.Flatten(),
                           layers.Dense(10, activation="softmax")], device="cpu", seed=0),
    }
    for name, model in ours.items():
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train if name == "mlp" else x_train[..., None], y_train[:2000], epochs=1, batch_size=64,
                  verbose=0)
        model.save(tmp_path / f"{name}.keras")

    env = {**os.environ, "KERAS_BACKEND": "torch", "KERAS_HOME": str(tmp_path / "keras_home")}
    proc = subprocess.run([sys.executable, "-c", KERAS_SIDE, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "keras_x_test.npy"), x_test)  # the same files, both loaders
    for name, model in ours.items():
        here = model.predict(x if name == "mlp" else x[..., None])
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_in_keras.npy"), here, rtol=1e-4, atol=1e-5)
        assert (here.argmax(1) == np.load(tmp_path / f"{name}_in_keras.npy").argmax(1)).mean() > 0.999
    theirs = load_model(tmp_path / "keras_mlp.keras", device="cpu")
    np.testing.assert_allclose(theirs.predict(x), np.load(tmp_path / "keras_mlp_in_keras.npy"), rtol=1e-4, atol=1e-5)
