"""Checkpoints: one ``.npz`` file that loads without executing code.

The file holds a JSON header (architecture, compile settings, training
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

from .. import layers as layers_mod
from .. import optimizers
from ..errors import CheckpointError

FORMAT = "gpuprop-checkpoint"
VERSION = 1


def save_model(model, filepath, metadata=None):
    """Write ``model`` to ``filepath``; ``metadata`` is any JSON-able dict kept beside it (``model.metadata``)."""
    if not model.built:
        raise ValueError("build or train the model before saving it")
    header = {
        "format": FORMAT, "version": VERSION, "model": model.get_config(), "seed": model.seed,
        "input_shape": list(model.layers[0].input_shape),
        "epoch": model.epoch, "step_in_epoch": model.step_in_epoch,
        "compile": None, "metadata": metadata if metadata is not None else getattr(model, "metadata", {}),
    }
    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    if model.optimizer is not None:
        header["compile"] = {"loss": model.loss.name, "loss_config": model.loss.get_config(),
                             "metrics": model.metrics, "optimizer": model.optimizer.get_config(),
                             "iterations": model.optimizer.iterations}
        for i, a in enumerate(model.optimizer.variables()):
            arrays[f"opt_{i}"] = model.backend.to_host(a)
    arrays["header"] = numpy.array(json.dumps(header))
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **arrays)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(filepath, device="auto", compile=True):
    """A model from ``save()``'s file, on ``device`` (any: checkpoints move between CPU and GPU)."""

    filepath = os.fspath(filepath)
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

    cfg = header["model"]
    layer_list = []
    for spec in cfg["layers"]:
        cls = getattr(layers_mod, spec["class_name"], None)
        if cls is None:
            raise CheckpointError(f"checkpoint uses unknown layer {spec['class_name']!r}: upgrade gpuprop")
        layer_list.append(cls.from_config(dict(spec["config"])))
    model = Sequential(layer_list, name=cfg.get("name"), device=device, seed=header["seed"])
    model.build(tuple(header["input_shape"]))
    n_weights = sum(1 for k in arrays if k.startswith("weight_"))
    model.set_weights([arrays[f"weight_{i}"] for i in range(n_weights)])
    model.epoch, model.step_in_epoch = header["epoch"], header["step_in_epoch"]
    model.metadata = dict(header.get("metadata") or {})
    comp = header.get("compile")
    if compile and comp:
        from .. import losses

        loss = losses.from_config(comp["loss"], comp.get("loss_config"))
        model.compile(optimizers.from_config(comp["optimizer"]), loss, metrics=comp["metrics"])
        n_opt = sum(1 for k in arrays if k.startswith("opt_"))
        model.optimizer.set_variables([arrays[f"opt_{i}"] for i in range(n_opt)])
        model.optimizer.iterations = comp["iterations"]
    return model


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__
