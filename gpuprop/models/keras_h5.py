"""Weights in Keras' HDF5 layouts, read and written with h5py (the optional ``h5`` extra).

Two layouts, each the one Keras 3 reads under that file name:

* ``.weights.h5`` (Keras 3): ``layers/<key>/vars/<i>``, one group per layer, where
  ``<key>`` is the layer class in snake case, numbered per class in model order
  (``dense``, ``dense_1``...), not the layer's name: Keras matches by position.
* ``.h5`` / ``.hdf5`` (the layout of Keras 2, which Keras 3's ``load_weights``
  and ``load_model`` still read under those names): a ``layer_names`` attribute,
  a group per layer with a ``weight_names`` attribute naming its datasets, under
  ``model_weights`` when the file holds a whole model.

Either is read back whatever its name says, by looking at what the file holds.
"""

import re
import warnings

import numpy

from ..errors import CheckpointError


def h5py_module():
    try:
        import h5py
    except ImportError:
        raise CheckpointError("HDF5 files (.h5, .hdf5, .weights.h5, .keras) need h5py, which is not installed: "
                              "pip install 'gpuprop[h5]' (or save as .npz)") from None
    return h5py


def open_file(filepath):
    """An HDF5 file opened for reading, or a one-line error saying why it cannot be."""
    h5py = h5py_module()
    try:
        return h5py.File(filepath, "r")
    except FileNotFoundError:
        raise CheckpointError(f"{filepath} does not exist: check the path") from None
    except OSError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{filepath} is not an HDF5 file ({first}): pass a file written by save, "
                              "save_weights or Keras") from None


def snake_case(class_name):
    """'MaxPooling2D' → 'max_pooling2d', 'BatchNormalization' → 'batch_normalization', as Keras names keys."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_keys(layers):
    """Each layer's group name in a Keras 3 weights file: its class in snake case, numbered per class."""
    seen, keys = {}, []
    for layer in layers:
        base = snake_case(type(layer).__name__)
        n = seen.get(base, 0)
        keys.append(base if n == 0 else f"{base}_{n}")
        seen[base] = n + 1
    return keys


def _str_array(names):
    return numpy.array([n.encode("utf8") for n in names], dtype=object if names else "float64")


# --- writing -------------------------------------------------------------------------------------
def write_keras3(h5file, model):
    """The Keras 3 weights layout into an open h5py File (layers only: optimizer state stays in .npz)."""
    layers_group = h5file.create_group("layers")
    for key, layer in zip(layer_keys(model.layers), model.layers):
        vars_group = layers_group.create_group(key).create_group("vars")
        vars_group.attrs["name"] = layer.name
        for i, w in enumerate(layer.get_weights()):
            vars_group.create_dataset(str(i), data=w)
    h5file.create_group("vars").attrs["name"] = model.name


def write_legacy(group, model, keras_version):
    """The .h5/.hdf5 layout into ``group`` (the file, or its ``model_weights`` group)."""
    group.attrs["layer_names"] = _str_array([layer.name for layer in model.layers])
    group.attrs["backend"] = b"torch"  # a backend whose layouts Keras converts nothing from: ours are Keras'
    group.attrs["keras_version"] = keras_version.encode("utf8")
    for layer in model.layers:
        g = group.create_group(layer.name)
        names = [f"{model.name}/{layer.name}/{w}" for w in layer.weight_names()]
        g.attrs["weight_names"] = _str_array(names)
        for name, w in zip(names, layer.get_weights()):
            g.create_dataset(name, data=w)


def _adam(model):
    """The model's optimizer when its state means in Keras what it means here: Adam/AdamW without amsgrad,
    compiled with a fixed learning rate. (SGD's Keras momentum holds −η·b, Adagrad's ε sits elsewhere...)"""
    from ..optimizers import Adam

    opt = model.optimizer
    fits = isinstance(opt, Adam) and not opt.amsgrad and isinstance(opt.learning_rate, (int, float))
    return opt if fits and opt.slots is not None else None


def write_optimizer(h5file, model):
    """Adam's state in Keras 3's layout, so Keras resumes it: iteration, learning_rate, then m and v of each
    trainable weight in model order. Other optimizers' state stays in .npz checkpoints."""
    opt = _adam(model)
    if opt is None:
        return
    group = h5file.create_group("optimizer").create_group("vars")
    group.attrs["name"] = opt.name
    group.create_dataset("0", data=numpy.array(opt.iterations, dtype="int64"))
    group.create_dataset("1", data=numpy.array(opt.current_learning_rate(), dtype="float32"))
    for i, slot in enumerate(opt.variables(), start=2):
        group.create_dataset(str(i), data=model.backend.to_host(slot))


def read_optimizer(h5file, model, where):
    """Adam's state from a Keras 3 weights layout into the compiled model, when the file holds it."""
    if "optimizer/vars" not in h5file or len(h5file["optimizer/vars"]) <= 2:
        return  # nothing saved, or an optimizer never stepped: a fresh one is the same
    group, opt = h5file["optimizer/vars"], _adam(model)
    mine = opt.variables() if opt is not None else []
    saved = [group[str(i)] for i in range(2, len(group))] if all(str(i) in group for i in range(len(group))) else []
    if not mine or len(saved) != len(mine) or any(a.shape != tuple(b.shape) for a, b in zip(saved, mine)):
        warnings.warn(f"{where}: the optimizer's saved state was not loaded (gpuprop reads Adam's, for the same "
                      "trainable weights); training continues from a fresh optimizer state", stacklevel=3)
        return
    opt.set_variables([a[()] for a in saved])
    opt.iterations = int(group["0"][()])


# --- reading -------------------------------------------------------------------------------------
def read_weights(h5file, model, where):
    """Set ``model``'s weights from an open h5py File in either layout; clear errors when they do not fit."""
    if "layers" in h5file and isinstance(h5file["layers"], h5py_module().Group):
        arrays = _read_keras3(h5file, model, where)
    else:
        group = h5file
        if "layer_names" not in group.attrs and "model_weights" in group:
            group = group["model_weights"]
        if "layer_names" not in group.attrs:
            raise CheckpointError(f"{where} holds no Keras weights (no 'layers' group, no 'layer_names'): "
                                  "pass a file written by save_weights or save")
        arrays = _read_legacy(group, model, where)
    for layer, ws in zip(model.layers, arrays):
        if ws is not None:
            try:
                layer.set_weights(ws)
            except ValueError as exc:
                raise CheckpointError(f"{where} does not fit this model: {exc}") from None


def _read_keras3(h5file, model, where):
    out = []
    for key, layer in zip(layer_keys(model.layers), model.layers):
        n = len(layer.weight_names())
        if not n:
            out.append(None)
            continue
        path = f"layers/{key}/vars"
        if path not in h5file:
            raise CheckpointError(f"{where} has no weights for layer {layer.name!r} (group {path}): "
                                  "it was saved from a different architecture")
        group = h5file[path]
        if len(group) != n:
            raise CheckpointError(f"{where}: {path} holds {len(group)} arrays, layer {layer.name!r} has {n} "
                                  f"({', '.join(layer.weight_names())}): a different architecture")
        out.append([group[str(i)][()] for i in range(n)])
    return out


def _attr_list(group, name):
    """A string-list attribute, joined again if Keras split a long one into name0, name1..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values += list(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _read_legacy(group, model, where):
    saved = [(n, _attr_list(group[n], "weight_names")) for n in _attr_list(group, "layer_names")]
    saved = [(n, w) for n, w in saved if w]
    mine = [layer for layer in model.layers if layer.weight_names()]
    if len(saved) != len(mine):
        raise CheckpointError(f"{where} holds weights for {len(saved)} layers, this model has {len(mine)} "
                              "layers with weights: a different architecture")
    by_layer = {id(layer): [group[n][w][()] for w in names] for layer, (n, names) in zip(mine, saved)}
    return [by_layer.get(id(layer)) for layer in model.layers]
