"""Adjacent layers that the model runs as one step because together they are cheaper.

``fuse(steps)`` is called by the model on its list of steps when it is built;
it never changes a layer, so calling a layer on its own (``layer(x)``) still
computes exactly what its configuration says.
"""

from .conv import Conv2D
from .pooling import MaxPooling2D


class ConvReluPool:
    """Conv2D(activation='relu') then MaxPooling2D, with the ReLU moved after the pool.

    ReLU is monotone, so max(relu(y)) = relu(max(y)) for every window, and the
    gradients agree too: where the window's maximum is > 0 both send dy to its
    first maximum, and where it is ≤ 0 both send 0. After a 2×2 pool the ReLU
    (forward mask and backward multiply) touches a quarter of the elements.
    """

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self.name = f"{conv.name}+{pool.name}"
        self.kind = "conv+relu after pool"

    def forward(self, x, training=False):
        return self.pool.forward(self.conv.conv(x, training, relu=False), training, relu=True)

    def backward(self, dy):
        d = self.pool.backward(dy)
        return None if d is None else self.conv.backward(d)


def fuse(steps):
    """``steps`` with each Conv2D(relu) directly followed by a MaxPooling2D replaced by a ConvReluPool."""
    out, i = [], 0
    while i < len(steps):
        s = steps[i]
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if isinstance(s, Conv2D) and s._relu and type(nxt) is MaxPooling2D:
            out.append(ConvReluPool(s, nxt))
            i += 2
        else:
            out.append(s)
            i += 1
    return out
