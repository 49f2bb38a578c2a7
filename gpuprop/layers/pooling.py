"""2-D max and average pooling (channels_last), Keras arguments and 'same' padding.

Both loop over the ph·pw positions of the pooling window (4 for 2×2), each a
strided slice of the whole batch, so no Python loop ever runs per pixel. When
the windows tile the input (strides = pool_size, Keras' default) backward
instead treats the input as one (N, Ho, ph, Wo, pw, C) view and makes single
passes over it.
"""

from .base import Layer
from .conv import Scratch, geometry, normalize_padding, normalize_tuple, output_size, padded, window_slice


class _Pooling2D(Layer):
    """Shared geometry: windows ``pool_size`` moved by ``strides`` (default: pool_size)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"gpuprop's {type(self).__name__} is channels_last (NHWC) only")
        self.pool_size = normalize_tuple(pool_size, "pool_size")
        self.strides = normalize_tuple(strides if strides is not None else self.pool_size, "strides")
        self.padding = normalize_padding(padding)
        self._scratch = Scratch()
        self._kept = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} expects (height, width, channels) samples, got {input_shape}")
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        ho, wo = output_size(input_shape[0], ph, sh, self.padding), output_size(input_shape[1], pw, sw, self.padding)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"pool {self.pool_size} does not fit input {tuple(input_shape)} with 'valid' padding")
        return (ho, wo, input_shape[2])

    def _geometry(self, x):
        return geometry(x.shape, self.pool_size, self.strides, self.padding)

    def _padded(self, x, g, fill, training):
        # training's copy is kept for backward, so an inference pass in between must not reuse it
        return padded(self._scratch, self.xp, x, g, ("xpad", training), fill)

    def _taps(self, arr, g):
        """The ph·pw strided slices of ``arr`` (padded-input sized), one per window position, row-major."""
        ho, wo = g[8], g[9]
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return [arr[:, window_slice(i, ho, sh), window_slice(j, wo, sw), :] for i in range(ph) for j in range(pw)]

    def _grad_buffer(self, g, dtype):
        """dx in padded coordinates (reused), zero wherever the windows will not write it.

        The caller's backward may have scribbled on last step's dx, so the zeros are
        rewritten each time: all of it when windows overlap or leave gaps, else only the
        rows and columns beyond the last window (Keras' 'valid' drops them).
        """
        n, h, w, c, _, _, hp, wp, ho, wo = g
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        dxp = self._scratch.get(self.xp, "dx", (n, hp, wp, c), dtype)
        if (ph, pw) != (sh, sw):
            dxp.fill(0)
        else:
            dxp[:, ho * ph:] = 0
            dxp[:, :, wo * pw:] = 0
        return dxp

    def _blocks(self, arr, g):
        """When the windows tile (strides = pool_size): ``arr`` as an (N, Ho, ph, Wo, pw, C) view.

        Every window position is then one axis pair of a single array, so a pass over the
        whole batch is one call reading memory in order, instead of ph·pw strided calls.
        """
        n, _, _, c, _, _, _, _, ho, wo = g
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if (ph, pw) != (sh, sw):
            return None
        return arr[:, :ho * ph, :wo * pw, :].reshape(n, ho, ph, wo, pw, c)

    def _overlap(self):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return sh < ph or sw < pw

    def _crop(self, dxp, g):
        _, h, w, _, pt, pl, hp, wp, _, _ = g
        return dxp if (hp, wp) == (h, w) else dxp[:, pt:pt + h, pl:pl + w, :]

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """y = max over each window ('same' padding never wins: it is −∞).

    Backward: dx = dy at the window's first maximum (row-major, as PyTorch),
    0 elsewhere, so a tie passes the gradient on once, not twice.
    """

    def forward(self, x, training=False, relu=False):
        """``relu``: return max(y, 0), for ``fused.ConvReluPool`` (ReLU after the pool equals ReLU before it)."""
        g = self._geometry(x)
        xpad = self._padded(x, g, float("-inf"), training)
        taps = self._taps(xpad, g)
        y = self._scratch.output(self.xp, taps[0].shape, x.dtype, training)
        y[...] = taps[0]
        for t in taps[1:]:
            self.xp.maximum(y, t, out=y)
        if relu:
            self.xp.maximum(y, 0, out=y)
        if training:
            self._kept = (xpad, y, g, relu)
        return y

    def backward(self, dy):
        xp = self.xp
        xpad, y, g, relu = self._kept
        self._kept = None
        if not self.need_input_grad:
            return None
        if relu:  # where the pooled maximum was ≤ 0 the ReLU passed nothing back
            dy *= y > 0
        dxp = self._grad_buffer(g, dy.dtype)
        blocks = self._blocks(xpad, g)
        if blocks is not None:
            hit = self._scratch.get(xp, "hit", blocks.shape, bool)
            xp.equal(blocks, y[:, :, None, :, None, :], out=hit)
            if self._has_ties(hit, y):
                self._first_only(self._taps_of_blocks(hit))
            xp.multiply(dy[:, :, None, :, None, :], hit, out=self._blocks(dxp, g))
            return self._crop(dxp, g)
        hits = [xp.equal(t, y) for t in self._taps(xpad, g)]
        self._first_only(hits)
        overlap = self._overlap()
        for hit, d in zip(hits, self._taps(dxp, g)):
            if overlap:
                d += dy * hit
            else:
                xp.multiply(dy, hit, out=d)
        return self._crop(dxp, g)

    def _taps_of_blocks(self, blocks):
        ph, pw = self.pool_size
        return [blocks[:, :, i, :, j, :] for i in range(ph) for j in range(pw)]

    def _has_ties(self, hit, y):
        """Whether some window's maximum occurs twice: only then must ties be broken.

        On a CPU, counting the hits is one fast pass over booleans and float data
        rarely ties, so the tie-breaking passes are usually skipped. On a GPU the
        count would stall the queue for a host read, so ties are always broken.
        """
        return self.backend.is_gpu or int(self.xp.count_nonzero(hit)) != y.size

    def _first_only(self, hits):
        """Keep, per window, only the first (row-major) position equal to the maximum, in place."""
        xp = self.xp
        free = xp.logical_not(hits[0])  # windows whose maximum is not yet claimed
        for k, hit in enumerate(hits[1:], 1):
            xp.logical_and(hit, free, out=hit)
            if k < len(hits) - 1:
                xp.logical_xor(free, hit, out=free)


class AveragePooling2D(_Pooling2D):
    """y = mean over each window's valid (unpadded) elements, as Keras/TF.

    Backward: every element of a window receives dy / count, count being the
    number of valid elements of that window (ph·pw unless 'same' padding cuts it).
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(pool_size, strides, padding, **kwargs)
        self._inv = {}  # geometry -> 1/count per output position

    def forward(self, x, training=False):
        g = self._geometry(x)
        taps = self._taps(self._padded(x, g, 0, training), g)
        y = self._scratch.output(self.xp, taps[0].shape, x.dtype, training)
        y[...] = taps[0]
        for t in taps[1:]:
            y += t
        y *= self._inv_count(g, x.dtype)
        if training:
            self._kept = g
        return y

    def _inv_count(self, g, dtype):
        """1/count per output position: a scalar without padding, else an (Ho, Wo, 1) array."""
        _, h, w, _, pt, pl, hp, wp, ho, wo = g
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if (hp, wp) == (h, w):
            return 1.0 / (ph * pw)
        key = (g[1:], str(dtype))
        inv = self._inv.get(key)
        if inv is None:  # computed once per geometry
            xp = self.xp
            top, left = xp.arange(ho) * sh, xp.arange(wo) * sw
            rows = xp.minimum(top + ph, pt + h) - xp.maximum(top, pt)
            cols = xp.minimum(left + pw, pl + w) - xp.maximum(left, pl)
            inv = self._inv[key] = (1.0 / (rows[:, None, None] * cols[None, :, None])).astype(dtype)
        return inv

    def backward(self, dy):
        g = self._kept
        self._kept = None
        if not self.need_input_grad:
            return None
        share = dy * self._inv_count(g, dy.dtype)
        dxp = self._grad_buffer(g, dy.dtype)
        blocks = self._blocks(dxp, g)
        if blocks is not None:
            blocks[...] = share[:, :, None, :, None, :]
            return self._crop(dxp, g)
        overlap = self._overlap()
        for d in self._taps(dxp, g):
            if overlap:
                d += share
            else:
                d[...] = share
        return self._crop(dxp, g)
