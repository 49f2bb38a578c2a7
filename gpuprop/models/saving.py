"""Model and weights files, in the format the file name asks for.

* ``.npz``: gpuprop's native checkpoint (below): architecture, weights, optimizer
  state and training position, loadable without executing code.
* ``.keras``: Keras 3's archive (``keras_archive``); ``.h5`` / ``.hdf5``: Keras'
  HDF5 model file; ``.weights.h5``: Keras 3's weights file (``keras_h5``).
  Keras 3 opens these, and gpuprop opens Keras 3's, for the layers both have
  (Sequential and functional models; a functional model is written as .keras
  or weights, not as a whole-model .h5).
* any other name: an error listing these, never a file in some other format.

``save``, ``save_weights``, ``load_weights``, ``load_model`` (and so ``ModelCheckpoint``)
all follow :func:`file_format`. The .npz file holds a JSON header (architecture, compile settings, training
position, seed) as a unicode array and every weight and optimizer slot as a
plain array, so ``numpy.load(..., allow_pickle=False)`` reads it. It is
written to a temporary file beside the target and renamed into place, so a
crash never leaves half a checkpoint.
"""

import json
import os
import tempfile
import zipfile

import numpy

from .. import metrics as metrics_mod
from .. import optimizers
from ..errors import CheckpointError

FORMAT = "gpuprop-checkpoint"
VERSION = 1
FORMATS = ".npz (gpuprop's checkpoint, no pickle), .keras (Keras 3 archive), .h5 or .hdf5 (Keras HDF5), " \
          ".weights.h5 (Keras 3 weights)"


def file_format(filepath):
    """'npz', 'keras', 'weights.h5' or 'h5', from the file name alone; a clear error for any other name."""
    name = os.fspath(filepath).lower()
    for suffix, kind in ((".weights.h5", "weights.h5"), (".keras", "keras"), (".h5", "h5"), (".hdf5", "h5"),
                         (".npz", "npz")):
        if name.endswith(suffix):
            return kind
    raise CheckpointError(f"cannot tell the file format from the name {os.fspath(filepath)!r}: end it with "
                          f"{FORMATS}")


def _atomic_write(filepath, write, suffix):
    """Call ``write(f)`` on a temporary file beside ``filepath``, then rename it into place."""
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model, filepath, metadata=None):
    """Write ``model`` to ``filepath`` in the format its name asks for (see :func:`file_format`).

    ``metadata`` is any JSON-able dict kept beside it in .npz files (``model.metadata``).
    """
    if not model.built:
        raise ValueError("build or train the model before saving it")
    kind = file_format(filepath)
    if kind == "weights.h5":
        raise CheckpointError(f"{os.fspath(filepath)} names a weights file: use model.save_weights() for it, "
                              "or save the whole model as .keras, .h5 or .npz")
    if kind == "keras":
        from . import keras_archive

        return _atomic_write(filepath, lambda f: keras_archive.write(model, f), ".keras")
    if kind == "h5":
        return _atomic_write(filepath, lambda f: _write_h5_model(model, f), ".h5")
    _save_npz(model, filepath, metadata)


def save_weights(model, filepath):
    """Write the weights alone: .weights.h5 (Keras 3 layout), .h5/.hdf5 (Keras HDF5 layout); .npz is a checkpoint."""
    if not model.built:
        raise ValueError("build or train the model before saving its weights")
    kind = file_format(filepath)
    if kind == "keras":
        raise CheckpointError(f"{os.fspath(filepath)} names a whole-model archive: use model.save() for it, "
                              "or save the weights as .weights.h5")
    if kind == "npz":
        return _save_npz(model, filepath, None)
    from . import keras_h5

    h5py = keras_h5.h5py_module()

    def write(f):
        with h5py.File(f, "w") as h5:
            if kind == "weights.h5":
                keras_h5.write_keras3(h5, model)
            else:
                from .keras_archive import KERAS_VERSION

                keras_h5.write_legacy(h5, model, KERAS_VERSION)

    _atomic_write(filepath, write, ".h5")


def load_weights(model, filepath):
    """Set ``model``'s weights from any file save, save_weights or Keras 3 writes (matched by layer order)."""
    kind = file_format(filepath)
    filepath = os.fspath(filepath)
    if not model.built:
        model.build()
    if kind == "npz":
        source = load_model(filepath, device=model.backend, compile=False)
        try:
            return model.set_weights(source.get_weights())
        except ValueError as exc:
            raise CheckpointError(f"{filepath} does not fit this model ({exc})") from None
    from . import keras_archive, keras_h5

    if kind == "keras":
        return keras_archive.load_weights(filepath, model)
    with keras_h5.open_file(filepath) as h5:
        keras_h5.read_weights(h5, model, filepath)


def _write_h5_model(model, f):
    """Keras' whole-model HDF5: the config as the model_config attribute, weights under model_weights."""
    from . import keras_config, keras_h5
    from .keras_archive import KERAS_VERSION

    if getattr(model, "nodes", None) is not None:
        raise CheckpointError("gpuprop writes functional models to Keras as .keras (whole model) or .weights.h5 "
                              "(weights), not as .h5/.hdf5: use one of those names, or .npz")
    h5py = keras_h5.h5py_module()
    with h5py.File(f, "w") as h5:
        h5.attrs["model_config"] = json.dumps(keras_config.sequential_config(model, legacy=True))
        h5.attrs["backend"] = "torch"
        h5.attrs["keras_version"] = KERAS_VERSION
        compiled = keras_config.compile_config(model, legacy=True)
        if compiled is not None:
            h5.attrs["training_config"] = json.dumps(compiled)
        keras_h5.write_legacy(h5.create_group("model_weights"), model, KERAS_VERSION)


def _load_h5_model(filepath, device, compile):
    from . import keras_config, keras_h5

    with keras_h5.open_file(filepath) as h5:
        config = h5.attrs.get("model_config")
        if config is None:
            raise CheckpointError(f"{filepath} holds weights only (no model_config): build the model and call "
                                  "model.load_weights() on it")
        config = json.loads(config.decode("utf8") if isinstance(config, bytes) else config)
        model = keras_config.sequential_from_config(config, device=device)
        keras_h5.read_weights(h5, model, filepath)
        training = h5.attrs.get("training_config")
    if compile and training is not None:
        training = json.loads(training.decode("utf8") if isinstance(training, bytes) else training)
        training["optimizer"] = training.pop("optimizer_config", None)  # the .h5 name of the .keras "optimizer"
        keras_config.compile_from_config(model, training)
    return model


def _save_npz(model, filepath, metadata):
    header = {
        "format": FORMAT, "version": VERSION, "model": model.get_config(), "seed": model.seed,
        "input_shape": list(model.layers[0].input_shape),
        "epoch": model.epoch, "step_in_epoch": model.step_in_epoch,
        "compile": None, "metadata": metadata if metadata is not None else getattr(model, "metadata", {}),
    }
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    if model.optimizer is not None:
        plain, weighted = metrics_mod.compiled(model.metrics)
        header["compile"] = {"loss": model.loss.name, "loss_config": model.loss.get_config(),
                             "metrics": [m.name for m in plain], "weighted_metrics": [m.name for m in weighted],
                             "optimizer": model.optimizer.get_config(),
                             "iterations": model.optimizer.iterations}
        if hasattr(model, "output_losses"):  # a graph model: one loss (or none) per output
            header["compile"]["outputs"] = {
                "losses": [None if l is None else [l.name, l.get_config()] for l in model.output_losses],
                "loss_weights": model.loss_weights, "metrics": [[m.name for m in ms] for ms in model.output_metrics],
                "weighted_metrics": [[m.name for m in ms] for ms in model.output_weighted_metrics]}
        for i, a in enumerate(model.optimizer.variables()):
            arrays[f"opt_{i}"] = model.backend.to_host(a)
    arrays["header"] = numpy.array(json.dumps(header))
    _atomic_write(filepath, lambda f: numpy.savez(f, **arrays), ".npz")


def load_model(filepath, device="auto", compile=True):
    """A model from ``save()``'s file (or Keras 3's .keras / .h5), on ``device`` (any: files move between
    CPU and GPU)."""
    kind = file_format(filepath)
    filepath = os.fspath(filepath)
    if kind == "weights.h5":
        raise CheckpointError(f"{filepath} holds weights only: build the model and call model.load_weights() on it")
    if kind == "keras":
        from . import keras_archive

        return keras_archive.load(filepath, device=device, compile=compile)
    if kind == "h5":
        return _load_h5_model(filepath, device, compile)
    if os.path.isfile(filepath) and not zipfile.is_zipfile(filepath):
        raise CheckpointError(f"{filepath} is not an .npz file, so not a gpuprop checkpoint: "
                              "pass a file written by model.save() or --checkpoint")
    try:
        with numpy.load(filepath, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {filepath} does not exist: check the path") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{filepath} is not a readable gpuprop checkpoint ({_short(exc)}): "
                              "pass a file written by model.save() or --checkpoint") from None
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, ValueError):
        raise CheckpointError(f"{filepath} is an .npz file but not a gpuprop checkpoint: "
                              "pass a file written by model.save() or --checkpoint") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{filepath} is not a gpuprop checkpoint (format {header.get('format')!r})")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{filepath} was written by a newer gpuprop (format {header['version']}): upgrade gpuprop")
    try:
        model = _rebuild(header, arrays, device, compile)
    except CheckpointError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{filepath} is corrupt or incomplete ({_short(exc)}): use another checkpoint") from None
    return model


def _rebuild(header, arrays, device, compile):
    from .sequential import Sequential

    from .graph_config import layer_from_config, model_from_config

    cfg = header["model"]
    if "nodes" in cfg:  # a functional Model
        model = model_from_config(cfg, device=device, seed=header["seed"])
    else:
        layer_list = [layer_from_config(spec, device) for spec in cfg["layers"]]
        model = Sequential(layer_list, name=cfg.get("name"), device=device, seed=header["seed"])
        model.build(tuple(header["input_shape"]))
    n_weights = sum(1 for k in arrays if k.startswith("weight_"))
    model.set_weights([arrays[f"weight_{i}"] for i in range(n_weights)])
    model.epoch, model.step_in_epoch = header["epoch"], header["step_in_epoch"]
    model.metadata = dict(header.get("metadata") or {})
    comp = header.get("compile")
    if compile and comp:
        from .. import losses

        outputs = comp.get("outputs")
        if outputs is not None:
            loss = [None if spec is None else losses.from_config(spec[0], spec[1]) for spec in outputs["losses"]]
            model.compile(optimizers.from_config(comp["optimizer"]), loss, loss_weights=outputs["loss_weights"],
                          metrics=outputs["metrics"], weighted_metrics=outputs.get("weighted_metrics"))
        else:
            loss = losses.from_config(comp["loss"], comp.get("loss_config"))
            model.compile(optimizers.from_config(comp["optimizer"]), loss, metrics=comp["metrics"],
                          weighted_metrics=comp.get("weighted_metrics"))
        n_opt = sum(1 for k in arrays if k.startswith("opt_"))
        with model.backend.scope():  # the slots are written on the model's device
            model.optimizer.set_variables([arrays[f"opt_{i}"] for i in range(n_opt)])
        model.optimizer.iterations = comp["iterations"]
    return model


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__
