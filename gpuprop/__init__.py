"""gpuprop: neural networks with backpropagation written out by hand, on CuPy or NumPy."""

__version__ = "0.1.0"

from . import (activations, callbacks, config, datasets, initializers, layers, losses, metrics,  # noqa: E402
               optimizers, utils)
from .backend import available_backends, get_backend  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential, load_model  # noqa: E402

__all__ = ["activations", "callbacks", "config", "datasets", "initializers", "layers", "losses", "metrics",
           "optimizers", "utils", "models", "get_backend", "available_backends", "gradcheck", "Input", "Model",
           "Sequential", "load_model", "__version__"]
