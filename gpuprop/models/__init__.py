"""Models: Keras' ``Sequential`` and functional ``Model``, and checkpoint loading."""

from .functional import Model
from .network import Network
from .saving import load_model, save_model
from .sequential import Sequential

__all__ = ["Network", "Sequential", "Model", "load_model", "save_model"]
