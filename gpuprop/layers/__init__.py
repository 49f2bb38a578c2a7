"""Layers with hand-written forward and backward passes (Keras names and layouts)."""

from .activation import Activation, ReLU, Softmax
from .base import Layer
from .core import Dropout, Flatten, Reshape
from .dense import Dense

__all__ = ["Layer", "Activation", "ReLU", "Softmax", "Dense", "Dropout", "Flatten", "Reshape"]
