"""All of a model's parameters in one array, and all their gradients in another.

Every optimizer update is element-wise, so running it once over one flat
array computes exactly what running it per parameter does, in one set of
array calls instead of one per parameter: on a CPU that is the Python and
dispatch cost of a small model's step (softmax regression spends a fifth of
its step there), on a GPU it is one kernel launch instead of one per tensor
(as torch's ``foreach`` and apex's multi-tensor apply do).

Each layer's ``params[name]`` and ``grads[name]`` become views into the flat
arrays, so layers, ``get_weights``/``set_weights`` and checkpoints see the
same per-parameter arrays as before. Layers must therefore write gradients
into ``grads[name]`` in place (``out=`` or ``[...] =``), never rebind them;
``tests/test_packing.py`` checks every layer type for that.
"""

import operator

# Each view starts on a 64-byte boundary (a cache line; what BLAS and cuBLAS like).
_ALIGN_BYTES = 64


class Packed:
    """The flat parameter and gradient arrays, and the per-parameter views into them."""

    def __init__(self, params, grads, views):
        self.params = params
        self.grads = grads
        self.views = views  # [(offset, size, shape)] in model order
        self.param_views = self.split(params)
        self.grad_views = self.split(grads)

    def holds(self, params, grads):
        """True when ``params`` and ``grads`` are exactly these views, in order (then one flat update covers them)."""
        mine = self.param_views
        if params is mine and grads is self.grad_views:  # the model's own lists: no per-view check
            return True
        return (len(params) == len(mine) and len(grads) == len(mine)
                and all(map(operator.is_, params, mine)) and all(map(operator.is_, grads, self.grad_views)))

    def split(self, flat):
        """Per-parameter views of another flat array laid out like the parameters (optimizer slots)."""
        return [flat[o:o + n].reshape(shape) for o, n, shape in self.views]


def pack(layers, backend):
    """Move every layer's parameters and gradients into two flat arrays; None if they cannot share one.

    Parameters of different dtypes cannot share an array: such a model keeps
    its separate arrays and the optimizer updates them one by one.
    """
    entries = [(layer, name) for layer in layers for name in layer.params]
    if not entries:
        return None
    dtypes = {layer.params[name].dtype for layer, name in entries}
    if len(dtypes) != 1:
        return None
    dtype = dtypes.pop()
    align = max(1, _ALIGN_BYTES // dtype.itemsize)
    views, offset = [], 0
    for layer, name in entries:
        arr = layer.params[name]
        views.append((offset, int(arr.size), tuple(arr.shape)))
        offset += -(-int(arr.size) // align) * align
    xp = backend.xp
    # Zeros between views stay zero: their gradient is zero, and every update maps (p, g) = (0, 0) to 0.
    flat_p = xp.zeros(offset, dtype=dtype)
    flat_g = xp.zeros(offset, dtype=dtype)
    packed = Packed(flat_p, flat_g, views)
    for (layer, name), p_view, g_view in zip(entries, packed.param_views, packed.grad_views):
        p_view[...] = layer.params[name]
        g_view[...] = layer.grads[name]
        layer.params[name] = p_view
        layer.grads[name] = g_view
    # Another model may share these layers (Keras' encoder beside its autoencoder): its flat arrays no longer hold
    # the live weights. Models compare this counter before each step and then re-link (Network._select_trainable).
    from ..layers import base as base_layers

    base_layers.TRAINABLE_CHANGES += 1
    return packed
