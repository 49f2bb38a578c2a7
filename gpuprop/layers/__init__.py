"""Layers with hand-written forward and backward passes (Keras names and layouts)."""

from .activation import Activation, ReLU, Softmax
from .base import Layer
from .conv import Conv2D
from .core import Dropout, Flatten, Reshape
from .dense import Dense
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D

__all__ = ["Layer", "Activation", "ReLU", "Softmax", "Dense", "Dropout", "Flatten", "Reshape",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "BatchNormalization"]
