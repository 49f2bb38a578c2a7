"""Weights in Keras' HDF5 layouts, read and written with h5py (the optional ``h5`` extra).

Two layouts, each the one Keras 3 reads under that file name:

* ``.weights.h5`` (Keras 3): ``layers/<key>/vars/<i>``, one group per layer, where
  ``<key>`` is the layer class in snake case, numbered per class in model order
  (``dense``, ``dense_1``...), not the layer's name: Keras matches by position;
  and a compiled model's optimizer under ``optimizer/vars/<i>``
  (``keras_optimizer_state`` maps each optimizer's slots to Keras').
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
from . import keras_optimizer_state


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
def write_keras3(h5file, model, optimizer=True):
    """The Keras 3 weights layout into an open h5py File; the optimizer's state too, as Keras writes it,
    when ``optimizer`` and the model is compiled."""
    layers_group = h5file.create_group("layers")
    for key, layer in zip(layer_keys(model.layers), model.layers):
        vars_group = layers_group.create_group(key).create_group("vars")
        vars_group.attrs["name"] = layer.name
        for i, w in enumerate(layer.get_weights()):
            vars_group.create_dataset(str(i), data=w)
    h5file.create_group("vars").attrs["name"] = model.name
    if optimizer and getattr(model, "optimizer", None) is not None:
        write_optimizer(h5file, model)


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


def write_optimizer(h5file, model):
    """The optimizer's state in Keras 3's layout (``keras_optimizer_state``), so Keras resumes it: the step
    count, the learning rate, then its slots. An optimizer Keras has no layout for is left out, with a warning."""
    opt = model.optimizer
    arrays = keras_optimizer_state.to_keras(opt, model.backend.to_host)
    if arrays is None:
        warnings.warn(f"{type(opt).__name__}'s state is not written to Keras' file (Keras has no layout for it); "
                      "save a .npz checkpoint to keep it", stacklevel=3)
        return
    caveat = keras_optimizer_state.entry(opt).caveat(opt)
    if caveat:
        warnings.warn(f"{type(opt).__name__}'s state in Keras' layout is approximate: {caveat}", stacklevel=3)
    group = h5file.create_group("optimizer").create_group("vars")
    group.attrs["name"] = opt.name
    for i, a in enumerate(keras_optimizer_state.head(opt) + arrays):
        group.create_dataset(str(i), data=a)


def read_optimizer(h5file, model, where):
    """The optimizer's state from a Keras 3 weights layout into the compiled model, when the file holds it."""
    if "optimizer/vars" not in h5file:
        return
    group, opt = h5file["optimizer/vars"], model.optimizer
    n, n_head = len(group), len(keras_optimizer_state.head(opt))
    saved = [group[str(i)][()] for i in range(n)] if all(str(i) in group for i in range(n)) else None
    if saved is None or n < n_head:
        reason = "its arrays are not numbered 0, 1, ..." if saved is None else f"it holds only {n} arrays"
    elif n == n_head and int(saved[0]) == 0 and opt.iterations == 0:
        return  # an optimizer that never stepped (Keras builds no slots until then): a fresh one is the same
    else:
        before = opt.learning_rate, opt.iterations
        if n_head == 2 and numpy.float32(opt.learning_rate) != numpy.float32(saved[1]):
            opt.learning_rate = float(saved[1])  # a callback changed it in Keras: its variable says the rate now
        opt.iterations = int(saved[0])  # before converting: conversions use the rate of the step about to run
        reason = keras_optimizer_state.from_keras(opt, saved[n_head:])
        if not isinstance(reason, str):
            opt.set_variables(reason)
            caveat = keras_optimizer_state.entry(opt).caveat(opt)
            if caveat:
                warnings.warn(f"{where}: {type(opt).__name__}'s state is approximate: {caveat}", stacklevel=3)
            return
        opt.learning_rate, opt.iterations = before
    warnings.warn(f"{where}: the optimizer's saved state was not loaded ({reason}); the optimizer keeps its own "
                  "(a fresh one after load_model): save and load the same optimizer to resume it", stacklevel=3)


# --- reading -------------------------------------------------------------------------------------
def read_weights(h5file, model, where):
    """Set ``model``'s weights from an open h5py File in either layout; clear errors when they do not fit.
    A compiled model takes the optimizer's state too where the file holds it, as Keras' load_weights does."""
    keras3 = "layers" in h5file and isinstance(h5file["layers"], h5py_module().Group)
    if keras3:
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
    if keras3 and getattr(model, "optimizer", None) is not None:
        read_optimizer(h5file, model, where)


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
