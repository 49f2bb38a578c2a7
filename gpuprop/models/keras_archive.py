"""Keras 3's ``.keras`` archive: a zip of config.json, metadata.json and model.weights.h5.

config.json is the model's Keras config (``keras_config``), model.weights.h5 the
Keras 3 weights layout (``keras_h5``). Written to a temporary file renamed into
place, so a crash never leaves half an archive.
"""

import datetime
import io
import json
import zipfile

from .. import __version__
from ..errors import CheckpointError
from . import keras_config, keras_h5

KERAS_VERSION = "3.0.0"  # the format version these files follow (Keras 3's saving format)


def write(model, f):
    """The archive of ``model`` into the open binary file ``f``."""
    h5py = keras_h5.h5py_module()
    config = keras_config.model_config(model)
    compiled = keras_config.compile_config(model)
    if compiled is not None:
        config["compile_config"] = compiled
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        keras_h5.write_keras3(h5, model, optimizer=compiled is not None)  # Keras resumes what it compiles
    metadata = {"keras_version": KERAS_VERSION, "gpuprop_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights.getvalue())


def _open(filepath):
    try:
        z = zipfile.ZipFile(filepath)
    except FileNotFoundError:
        raise CheckpointError(f"{filepath} does not exist: check the path") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{filepath} is not a .keras archive ({exc}): pass a file written by save()") from None
    names = set(z.namelist())
    if not {"config.json", "model.weights.h5"} <= names:
        z.close()
        raise CheckpointError(f"{filepath} is a zip but not a .keras archive (no config.json and model.weights.h5)")
    return z


def load(filepath, device="auto", compile=True):
    """The model in a .keras archive (gpuprop's or Keras'), with its weights; compiled if it says how."""
    with _open(filepath) as z:
        try:
            config = json.loads(z.read("config.json"))
        except ValueError as exc:
            raise CheckpointError(f"{filepath}: config.json is not JSON ({exc})") from None
        model = keras_config.sequential_from_config(config, device=device)
        _read_weights(z, model, filepath)
        if compile and config.get("compile_config"):
            keras_config.compile_from_config(model, config["compile_config"])
            h5py = keras_h5.h5py_module()
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
                keras_h5.read_optimizer(h5, model, f"{filepath} (model.weights.h5)")
    return model


def load_weights(filepath, model):
    with _open(filepath) as z:
        _read_weights(z, model, filepath)


def _read_weights(z, model, filepath):
    h5py = keras_h5.h5py_module()
    with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
        keras_h5.read_weights(h5, model, f"{filepath} (model.weights.h5)")
