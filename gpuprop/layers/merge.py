"""Layers that merge several tensors into one: Add, Subtract, Multiply, Average, Maximum, Concatenate.

Each takes a list of arrays and its backward returns a list of gradients, one
per input, in the same order. Every gradient is an array of its own: the
layers that produced the inputs may scale theirs in place (ReLU, Dropout).
"""

from .base import Layer


class _Merge(Layer):
    """Shared shape checks: every input has the same per-sample shape (Concatenate relaxes this)."""

    multi_input = True

    def symbolic_output_shapes(self, input_shapes):
        if not isinstance(input_shapes, list) or len(input_shapes) < 2:
            raise ValueError(f"{type(self).__name__} takes a list of at least 2 tensors, e.g. "
                             f"{type(self).__name__}()([a, b])")
        return [tuple(self.compute_output_shape([tuple(s) for s in input_shapes]))]

    def compute_output_shape(self, input_shapes):
        first = tuple(input_shapes[0])
        for s in input_shapes[1:]:
            if tuple(s) != first:
                raise ValueError(f"{type(self).__name__} needs inputs of one shape, got "
                                 f"{', '.join(str((None, *x)) for x in input_shapes)}")
        return first

    def build(self, input_shape, backend, rng):
        return super().build([tuple(s) for s in input_shape], backend, rng)


class Add(_Merge):
    """y = Σ_i x_i.  Backward: dx_i = dy for every i."""

    def forward(self, xs, training=False):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        if training:
            self._n = len(xs)
        return y

    def backward(self, dy):
        return [dy] + [dy.copy() for _ in range(self._n - 1)]


class Subtract(_Merge):
    """y = x₀ − x₁ (exactly two inputs).  Backward: dx₀ = dy, dx₁ = −dy."""

    def symbolic_output_shapes(self, input_shapes):
        if isinstance(input_shapes, list) and len(input_shapes) != 2:
            raise ValueError(f"Subtract takes exactly 2 tensors, got {len(input_shapes)}")
        return super().symbolic_output_shapes(input_shapes)

    def forward(self, xs, training=False):
        return xs[0] - xs[1]

    def backward(self, dy):
        return [dy, -dy]


class Multiply(_Merge):
    """y = Π_i x_i.  Backward: dx_i = dy · Π_{j≠i} x_j.  Keeps the inputs."""

    def forward(self, xs, training=False):
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y *= x
        if training:
            self._xs = list(xs)
        return y

    def backward(self, dy):
        xs, self._xs = self._xs, None
        grads = []
        for i in range(len(xs)):
            g = dy.copy()
            for j, x in enumerate(xs):
                if j != i:
                    g *= x
            grads.append(g)
        return grads


class Average(_Merge):
    """y = (1/n) Σ_i x_i.  Backward: dx_i = dy / n."""

    def forward(self, xs, training=False):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        y *= 1.0 / len(xs)
        if training:
            self._n = len(xs)
        return y

    def backward(self, dy):
        share = dy * (1.0 / self._n)
        return [share] + [share.copy() for _ in range(self._n - 1)]


class Maximum(_Merge):
    """y = max_i x_i element-wise.  Backward: dx_i = dy · [x_i is the first maximum] (ties: the first input wins).

    Keeps the index of the winning input per element.
    """

    def forward(self, xs, training=False):
        y = xs[0].copy()
        if training:
            self._winner = self.xp.zeros(y.shape, dtype="int8")
        for i, x in enumerate(xs[1:], 1):
            if training:
                self._winner[x > y] = i
            self.xp.maximum(y, x, out=y)
        if training:
            self._n = len(xs)
        return y

    def backward(self, dy):
        winner, self._winner = self._winner, None
        return [dy * (winner == i) for i in range(self._n)]


class Concatenate(_Merge):
    """y = [x₀, x₁, …] joined along ``axis`` (a per-sample axis; −1: the last).

    Backward: dx_i = the slice of dy that x_i filled.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)
        if self.axis == 0:
            raise ValueError("Concatenate cannot join along the batch axis (axis=0): use a per-sample axis")

    def _sample_axis(self, rank):
        """The axis index within a per-sample shape of ``rank`` dimensions."""
        a = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= a < rank:
            raise ValueError(f"Concatenate axis {self.axis} is out of range for samples of rank {rank}")
        return a

    def compute_output_shape(self, input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        a = self._sample_axis(len(shapes[0]))
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or s[:a] + s[a + 1:] != shapes[0][:a] + shapes[0][a + 1:]:
                raise ValueError(f"Concatenate(axis={self.axis}) needs inputs equal except along that axis, got "
                                 f"{', '.join(str((None, *x)) for x in shapes)}")
        return (*shapes[0][:a], sum(s[a] for s in shapes), *shapes[0][a + 1:])

    def forward(self, xs, training=False):
        a = self._sample_axis(xs[0].ndim - 1) + 1
        if training:
            self._sizes = [int(x.shape[a]) for x in xs]
        return self.xp.concatenate(xs, axis=a)

    def backward(self, dy):
        a = self._sample_axis(dy.ndim - 1) + 1
        grads, lo = [], 0
        for size in self._sizes:
            index = [slice(None)] * dy.ndim
            index[a] = slice(lo, lo + size)
            grads.append(dy[tuple(index)].copy())
            lo += size
        return grads

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
