"""Models: the Keras-style ``Sequential`` and checkpoint loading."""

from .network import Network
from .saving import load_model, save_model
from .sequential import Sequential

__all__ = ["Network", "Sequential", "load_model", "save_model"]
