"""A ``Sequential`` as Keras 3 describes it (a .keras file's config.json, an .h5 file's model_config), and back
(functional models: ``keras_functional``, which uses the layer translation here).

Only the layers both libraries have translate; a Keras setting gpuprop lacks is
accepted when it holds Keras' default (``kernel_regularizer=None``, ``groups=1``...)
and refused, naming it, otherwise, so a loaded model never computes something else.
"""

import inspect

from .. import initializers
from .. import layers as layers_mod
from .. import losses
from .. import metrics as metrics_mod
from .. import optimizers
from ..errors import CheckpointError
from .keras_h5 import snake_case

KERAS_LAYERS = ("Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Reshape", "Dropout",
                "BatchNormalization", "Activation", "ReLU", "Softmax",
                "Add", "Subtract", "Multiply", "Average", "Maximum", "Concatenate")  # merges: functional models

# Keras settings gpuprop has no argument for, with the value under which leaving them out changes nothing.
_NEUTRAL = {"kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None, "beta_regularizer": None, "gamma_regularizer": None,
            "beta_constraint": None, "gamma_constraint": None, "synchronized": False, "renorm": False,
            "renorm_clipping": None, "renorm_momentum": 0.99, "data_format": "channels_last",
            "dilation_rate": [1, 1], "groups": 1, "noise_shape": None, "quantization_config": None, "lora_rank": None,
            "lora_alpha": None, "max_value": None, "negative_slope": 0.0, "threshold": 0.0, "axis": -1,
            "registered_name": None, "seed": None}
_OPTIMIZER_NEUTRAL = {"use_ema": False, "ema_momentum": None, "ema_overwrite_frequency": None, "clipvalue": None,
                      "loss_scale_factor": None, "gradient_accumulation_steps": None}


# --- gpuprop → Keras ----------------------------------------------------------------------------------
def layer_config(layer):
    kind = type(layer).__name__
    if kind not in KERAS_LAYERS:
        raise CheckpointError(f"layer {layer.name!r} ({kind}) has no Keras 3 equivalent that gpuprop writes: "
                              "save this model as .npz")
    cfg = {k: v for k, v in layer.get_config().items() if k != "input_shape"}
    cfg["dtype"] = str(layer.dtype)
    cfg.setdefault("trainable", True)
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten"):
        cfg["data_format"] = "channels_last"
    return {"module": "keras.layers", "class_name": kind, "config": cfg, "registered_name": None,
            "build_config": {"input_shape": [None, *layer.input_shape]}}


def model_config(model):
    """Keras 3's config of a Sequential or functional model, as a .keras archive's config.json holds it."""
    from .keras_functional import functional_config, is_functional

    return functional_config(model) if is_functional(model) else sequential_config(model)


def sequential_config(model, legacy=False):
    """Keras 3's config of the model; ``legacy``: the plain class_name/config form of an .h5 file."""
    shape = [None, *model.layers[0].input_shape]
    dtype = str(model.layers[0].dtype)
    entries = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                "config": {"batch_shape": shape, "dtype": dtype, "sparse": False, "name": "input_layer"}}]
    entries += [layer_config(layer) for layer in model.layers]
    if legacy:
        entries = [{"class_name": e["class_name"], "config": e["config"]} for e in entries]
        return {"class_name": "Sequential", "config": {"name": model.name, "layers": entries}}
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": model.name, "trainable": True, "layers": entries, "build_input_shape": shape},
            "build_config": {"input_shape": shape}}


def _keras_loss(loss):
    """Keras' serialized loss object, or None where Keras could not rebuild it."""
    if isinstance(loss, losses.HalfMeanSquaredError) or not type(loss).__module__.startswith("gpuprop."):
        return None  # gpuprop's own half MSE, or a user's loss class: Keras could not rebuild either
    cfg = {"module": "keras.losses", "class_name": type(loss).__name__, "registered_name": None,
           "config": {"name": loss.name, "reduction": "sum_over_batch_size", **loss.get_config()}}
    if loss.fuses_with is None:
        cfg["config"].pop("from_logits", None)  # Keras' regression and hinge losses take no from_logits
    return cfg


def compile_config(model, legacy=False):
    """Keras' compile_config, or None where Keras could not rebuild it (a schedule, a gpuprop-only loss).

    ``legacy``: the training_config of an .h5 file (``optimizer_config``, no ``module`` keys).
    A graph model with several outputs gets one loss, loss weight and metric list per output.
    """
    opt, loss = model.optimizer, model.loss
    if opt is None or not isinstance(opt.learning_rate, (int, float)) or loss is None:
        return None
    per_output = len(getattr(model, "output_losses", None) or []) > 1
    if per_output:
        loss_cfg = [None if l is None else _keras_loss(l) for l in model.output_losses]
        if any(c is None for c, l in zip(loss_cfg, model.output_losses) if l is not None):
            return None
        metrics = [[_metric_config(m) for m in ms] for ms in model.output_metrics]
        metrics = metrics if any(metrics) else None
        weighted = [[_metric_config(m) for m in ms] for ms in model.output_weighted_metrics]
        weighted = weighted if any(weighted) else None
        loss_weights = list(model.loss_weights)
    else:
        loss_cfg = _keras_loss(loss)
        if loss_cfg is None:
            return None
        plain, weighted = metrics_mod.compiled(model.metrics)
        metrics, loss_weights = [_metric_config(m) for m in plain] or None, None
        weighted = [_metric_config(m, legacy) for m in weighted] or None
    cfg = {k: v for k, v in opt.get_config().items() if k != "class_name"}
    optimizer = {"module": "keras.optimizers", "class_name": type(opt).__name__, "config": cfg,
                 "registered_name": None}
    if legacy:
        return {"optimizer_config": {"class_name": optimizer["class_name"], "config": cfg},
                "loss": {"class_name": loss_cfg["class_name"], "config": loss_cfg["config"]},
                "metrics": [_metric_config(m, legacy=True) for m in metrics_mod.compiled(model.metrics)[0]] or None,
                "loss_weights": None, "weighted_metrics": weighted}
    return {"optimizer": optimizer, "loss": loss_cfg, "metrics": metrics, "loss_weights": loss_weights,
            "weighted_metrics": weighted, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _metric_config(metric, legacy=False):
    """A metric by its name, or as Keras' serialized object when it has a setting (top-k's k)."""
    if not hasattr(metric, "k"):
        return metric.name
    entry = {"class_name": type(metric).__name__, "config": {"name": metric.name, "k": metric.k}}
    return entry if legacy else {"module": "keras.metrics", **entry, "registered_name": None}


# --- Keras → gpuprop -----------------------------------------------------------------------------------
def _accepted(cls):
    names = {"input_shape", "batch_input_shape", "name", "activation", "dtype", "trainable"}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters) - {"self", "kwargs"}
    return names


def _plain(key, value):
    """Keras' serialized objects as the plain values gpuprop takes (initializers, dtype policies)."""
    if isinstance(value, dict) and "class_name" in value:
        if key == "dtype":
            return value.get("config", {}).get("name", "float32")
        if key.endswith("_initializer"):
            name = snake_case(value["class_name"])
            try:
                initializers.get(name)
            except ValueError:
                raise CheckpointError(f"initializer {value['class_name']} is not in gpuprop: "
                                      f"use one of {', '.join(sorted(initializers._ALL))}") from None
            return name
    return value


def layer_from_config(entry):
    kind = entry.get("class_name")
    cls = getattr(layers_mod, kind, None) if kind in KERAS_LAYERS else None
    if cls is None:
        raise CheckpointError(f"the file's model uses layer {kind!r}, which gpuprop cannot load: "
                              f"it knows {', '.join(KERAS_LAYERS)}")
    accepted, kwargs = _accepted(cls), {}
    for key, value in entry.get("config", {}).items():
        value = _plain(key, value)
        if key in accepted:
            kwargs[key] = value
        elif key in _NEUTRAL and (value == _NEUTRAL[key] or (isinstance(value, (list, tuple))
                                                              and list(value) == _NEUTRAL[key])):
            continue
        else:
            raise CheckpointError(f"layer {entry['config'].get('name', kind)!r} ({kind}) has {key}={value!r}, "
                                  "which gpuprop does not support")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # e.g. an activation gpuprop's layers lack
        raise CheckpointError(f"the file's layer {kwargs.get('name', kind)!r} ({kind}) cannot be built in gpuprop: "
                              f"{exc}") from None


def sequential_from_config(cfg, device="auto"):
    """A model from Keras' config of a Sequential (either form), or of a functional model (keras_functional)."""
    from .sequential import Sequential

    kind = cfg.get("class_name")
    if kind in ("Functional", "Model"):
        from .keras_functional import functional_from_config

        return functional_from_config(cfg, device=device)
    if kind != "Sequential":
        raise CheckpointError(f"the file holds a {kind!r} model; gpuprop loads Keras Sequential models from .keras "
                              "and .h5 files")
    body = cfg.get("config", {})
    entries = list(body.get("layers", []))
    shape = body.get("build_input_shape")
    if entries and entries[0].get("class_name") == "InputLayer":
        first = entries.pop(0)["config"]
        shape = first.get("batch_shape") or first.get("batch_input_shape")
    built = [layer_from_config(e) for e in entries]
    if shape is None:
        shape = next((([None, *layer.input_shape]) for layer in built[:1] if layer.input_shape), None)
    if shape is None:
        raise CheckpointError("the file's model has no input shape: Keras saves one once the model is built")
    model = Sequential(built, name=body.get("name"), device=device)
    model.build(tuple(shape[1:]))
    return model


def _metric(entry):
    """A metric as compile takes it: Keras writes names, or metric objects as {class_name, config}."""
    if not isinstance(entry, dict):
        return entry
    cfg = entry.get("config") or {}
    cls = getattr(metrics_mod, entry.get("class_name", ""), None)
    if isinstance(cls, type) and issubclass(cls, metrics_mod.Metric) and "k" in cfg:
        return cls(k=cfg["k"], name=cfg.get("name"))  # top-k's k is the one setting a name cannot carry
    return cfg.get("name") or snake_case(entry.get("class_name", ""))


def _loss(entry):
    """A loss as compile takes it, from Keras' name, class config, or a serialized function form."""
    if not isinstance(entry, dict):
        return entry
    if entry.get("class_name") == "function":  # keras.losses.categorical_crossentropy passed to compile
        return entry.get("config")
    keep = {k: v for k, v in (entry.get("config") or {}).items() if k in ("from_logits", "delta")}
    return type(losses.get(entry["class_name"]))(**keep)


def _per_output(convert, metrics):
    """Keras' metrics: a list, a list of lists (one per output) or a dict by output name; Nones dropped."""
    if isinstance(metrics, dict) and "class_name" not in metrics:
        return {k: _per_output(convert, v) for k, v in metrics.items()}
    if isinstance(metrics, list):
        return [_per_output(convert, m) if isinstance(m, list) else convert(m) for m in metrics if m is not None]
    return convert(metrics) if metrics is not None else []


def compile_from_config(model, cfg):
    """Compile ``model`` as Keras' compile_config says (optimizer, loss, metrics, weighted_metrics)."""
    opt = dict(cfg["optimizer"]) if isinstance(cfg.get("optimizer"), dict) else {"class_name": cfg.get("optimizer")}
    opt_cfg = {k: v for k, v in (opt.get("config") or {}).items()
               if not (k in _OPTIMIZER_NEUTRAL and v in (_OPTIMIZER_NEUTRAL[k], None, False, 0.99))}
    if isinstance(opt_cfg.get("learning_rate"), dict):
        raise CheckpointError("the file's optimizer uses a Keras learning-rate schedule gpuprop cannot rebuild: "
                              "load with compile=False and compile the model yourself")
    try:
        optimizer = optimizers.from_config({"class_name": opt["class_name"], **opt_cfg})
        metrics, loss = _per_output(_metric, cfg.get("metrics")), cfg.get("loss")
        loss = {k: _loss(v) for k, v in loss.items()} if isinstance(loss, dict) and "class_name" not in loss \
            else [_loss(v) for v in loss] if isinstance(loss, list) else _loss(loss)
        extra = {"loss_weights": cfg["loss_weights"]} if cfg.get("loss_weights") is not None else {}
        if cfg.get("weighted_metrics"):
            extra["weighted_metrics"] = _per_output(_metric, cfg["weighted_metrics"])
        model.compile(optimizer, loss, metrics=metrics, **extra)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot rebuild the file's compile settings ({exc}): "
                              "load with compile=False and compile the model yourself") from None
