"""Rescaling: multiply and shift inputs (pixel values 0..255 to 0..1), as Keras' preprocessing layer."""

from .base import Layer


class Rescaling(Layer):
    """y = x · scale + offset.  Backward: dx = dy · scale."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def forward(self, x, training=False):
        y = x * self.scale
        if self.offset:
            y += self.offset
        return y

    def backward(self, dy):
        if not self.need_input_grad:
            return None
        dy *= self.scale
        return dy

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
