"""Ready-made classifiers for 28×28 images (MNIST, Fashion-MNIST), as in Keras' examples.

Each builder returns an uncompiled model (``Sequential``, or a functional
``Model`` for the resnet) that ends in a 10-way softmax, so it pairs with
``sparse_categorical_crossentropy``:

- ``softmax``: multinomial logistic regression, Flatten → Dense(10, softmax).
- ``mlp``: Flatten → Dense(w, relu) for each hidden width → Dense(10, softmax).
- ``cnn``: Keras' ``mnist_convnet``: two Conv2D(3×3, relu) + MaxPooling2D(2)
  stages → Flatten → Dense(128, relu) → Dense(10, softmax).
- ``resnet``: a small residual CNN (functional API): two stages of
  Conv2D(3×3, same, relu) + MaxPooling2D(2) each followed by a residual block
  relu(x + conv(relu(conv(x)))) joined with ``Add``, then
  GlobalAveragePooling2D → Dense(10, softmax); about 28k parameters.
"""

from .errors import GpupropError
from .layers import Dense, Flatten, Reshape
from .models import Sequential

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
DEFAULT_HIDDEN = (512, 512)


def softmax(device="auto", seed=None, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES):
    """p = softmax(x·W + b) on the flattened image."""
    return Sequential([Flatten(input_shape=input_shape), Dense(num_classes, activation="softmax")],
                      name="softmax", device=device, seed=seed)


def mlp(hidden=DEFAULT_HIDDEN, device="auto", seed=None, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES):
    """h_{k+1} = relu(h_k·W_k + b_k) for each width in ``hidden``, then a softmax layer."""
    hidden = parse_hidden(hidden)
    layers = [Flatten(input_shape=input_shape)]
    layers += [Dense(w, activation="relu") for w in hidden]
    layers.append(Dense(num_classes, activation="softmax"))
    return Sequential(layers, name="mlp", device=device, seed=seed)


def cnn(device="auto", seed=None, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES):
    """Keras' MNIST convnet (about 225k parameters for 28×28 inputs)."""
    # Imported here so softmax and mlp work in builds without the convolution layers.
    from . import layers

    missing = [n for n in ("Conv2D", "MaxPooling2D") if not hasattr(layers, n)]
    if missing:
        raise GpupropError(f"the cnn model needs {' and '.join(missing)}, which this gpuprop build lacks; "
                           "use --model mlp or softmax")
    Conv2D, MaxPooling2D = layers.Conv2D, layers.MaxPooling2D
    return Sequential([
        Reshape((*input_shape, 1), input_shape=input_shape),
        Conv2D(32, 3, activation="relu"),
        MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ], name="cnn", device=device, seed=seed)


def _residual(x, filters):
    """relu(x + conv(relu(conv(x)))): the skip connection adds the block's input to its output."""
    from .layers import Add, Conv2D, ReLU

    y = Conv2D(filters, 3, padding="same", activation="relu")(x)
    y = Conv2D(filters, 3, padding="same")(y)
    return ReLU()(Add()([x, y]))


def resnet(device="auto", seed=None, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, widths=(16, 32)):
    """A small residual CNN built with the functional API (``Add`` skip connections)."""
    from .layers import Conv2D, GlobalAveragePooling2D, Input, MaxPooling2D
    from .models import Model

    inputs = Input(shape=input_shape)
    h = Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs
    for width in widths:
        h = Conv2D(width, 3, padding="same", activation="relu")(h)
        h = MaxPooling2D(2)(h)
        h = _residual(h, width)
    outputs = Dense(num_classes, activation="softmax")(GlobalAveragePooling2D()(h))
    return Model(inputs, outputs, name="resnet", device=device, seed=seed)


MODELS = {"softmax": softmax, "mlp": mlp, "cnn": cnn, "resnet": resnet}


def parse_hidden(hidden):
    """Hidden widths from ``'512,512'``, an int or a sequence of ints; each must be positive."""
    if isinstance(hidden, str):
        parts = [p.strip() for p in hidden.replace(" ", ",").split(",") if p.strip()]
        try:
            hidden = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"hidden widths must be integers separated by commas, like 512,512; got {hidden!r}") from None
    elif isinstance(hidden, int):
        hidden = [hidden]
    hidden = tuple(int(w) for w in hidden)
    if any(w <= 0 for w in hidden):
        raise ValueError(f"hidden widths must be positive, got {','.join(map(str, hidden))}")
    return hidden


def build(name, hidden=None, device="auto", seed=None):
    """The model called ``name`` ('softmax', 'mlp', 'cnn' or 'resnet'); ``hidden`` only applies to mlp."""
    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(MODELS)}")
    if key == "mlp":
        return mlp(DEFAULT_HIDDEN if hidden is None else hidden, device=device, seed=seed)
    return MODELS[key](device=device, seed=seed)


def describe(model):
    """The architecture on one line: ``Flatten → Dense(512, relu) → Dense(10, softmax)``."""
    parts = []
    for layer in model.layers:
        cfg = layer.get_config()
        args = [str(cfg[k]) for k in ("units", "filters", "rate") if k in cfg]
        if "kernel_size" in cfg:
            k = cfg["kernel_size"]
            args.append("x".join(map(str, k)) if isinstance(k, (list, tuple)) else str(k))
        if "pool_size" in cfg:
            p = cfg["pool_size"]
            args.append("x".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p))
        if "target_shape" in cfg:
            args.append("x".join(map(str, cfg["target_shape"])))
        if cfg.get("strides") not in (None, 1, [1, 1], (1, 1)) and "filters" in cfg:
            args.append(f"stride {cfg['strides']}")
        if cfg.get("activation") not in (None, "linear"):
            args.append(cfg["activation"])
        parts.append(type(layer).__name__ + (f"({', '.join(args)})" if args else ""))
    return " → ".join(parts)
