"""Layers with hand-written forward and backward passes (Keras names and layouts)."""

from .activation import Activation, LeakyReLU, ReLU, Softmax
from .base import Layer
from .conv import Conv2D
from .core import Dropout, Flatten, Reshape
from .dense import Dense
from .global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D
from .input import Input, InputLayer, KerasTensor
from .merge import Add, Average, Concatenate, Maximum, Multiply, Subtract
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D
from .rescaling import Rescaling

__all__ = ["Layer", "Activation", "ReLU", "LeakyReLU", "Softmax", "Dense", "Dropout", "Flatten", "Reshape",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "BatchNormalization", "Rescaling", "Input", "InputLayer", "KerasTensor",
           "Add", "Subtract", "Multiply", "Average", "Maximum", "Concatenate"]
