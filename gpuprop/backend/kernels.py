"""Fused CUDA kernels that override the reference ops on CuPy.

Each override computes exactly the function of its ``Ops`` counterpart in one
pass over memory instead of several; ``tests/test_ops_kernels.py`` holds both
to a float64 formula on every GPU backend present. The kernels are built from
the cupy module the backend was given (the real CuPy compiles them with NVRTC on
first use; the gpu-sim stand-in compiles the same operation strings with the
host's C++ compiler), so this module never imports cupy itself.
"""

from ..ops import Ops

# name -> (in_params, out_params, operation), exactly as handed to cupy.ElementwiseKernel
KERNELS = {
    "gpuprop_relu_backward": ("T y", "T dy", "dy = y > (T)0 ? dy : (T)0"),
    "gpuprop_sigmoid": ("T x", "T y", "y = (T)0.5 * (tanh((T)0.5 * x) + (T)1)"),
    "gpuprop_sigmoid_backward": ("T y", "T dy", "dy = dy * y * ((T)1 - y)"),
    "gpuprop_tanh_backward": ("T y", "T dy", "dy = dy * ((T)1 - y * y)"),
    # Exact GELU, y = x·Φ(x), Φ(x) = ½·erfc(−x/√2) from the device math library (erfc, not 1 + erf: no
    # cancellation for x < 0); with it, for training, the slope s = Φ(x) + x·e^(−x²/2)/√(2π) (the backward: dy·s).
    "gpuprop_gelu": ("T x", "T y", "y = x * ((T)0.5 * erfc(x * (T)-0.70710678118654752))"),
    "gpuprop_gelu_with_slope": (
        "T x",
        "T y, T s",
        """
    const T cdf = (T)0.5 * erfc(x * (T)-0.70710678118654752);
    y = x * cdf;
    s = cdf + x * (T)0.39894228040143268 * exp((T)-0.5 * x * x);
    """,
    ),
    # Adam/AdamW in one pass: m, v and the parameter updated in place. 1 − β arrives
    # computed in double precision: (T)1 − (T)0.999 in float32 is off by 1.3e-5.
    "gpuprop_adam_update": (
        "T g, T lr_t, T b1, T c1, T b2, T c2, T eps_t, T decay",
        "T p, T m, T v",
        """
    p = p * decay;
    m = b1 * m + c1 * g;
    v = b2 * v + c2 * g * g;
    p = p - lr_t * m / (sqrt(v) + eps_t);
    """,
    ),
}

_BUILT = {}  # id(cupy module) -> {name: ElementwiseKernel}; CuPy caches compiled code per kernel object


def elementwise_kernels(cupy):
    """Every kernel of ``KERNELS`` as ``cupy.ElementwiseKernel`` objects of the given cupy module."""
    key = id(cupy)
    if key not in _BUILT:
        _BUILT[key] = {name: cupy.ElementwiseKernel(inp, out, op, name) for name, (inp, out, op) in KERNELS.items()}
    return _BUILT[key]


class CupyOps(Ops):
    """``Ops`` with the hottest element-wise steps fused into single kernels."""

    def __init__(self, xp):
        super().__init__(xp)
        k = elementwise_kernels(xp)
        self._relu_backward, self._sigmoid = k["gpuprop_relu_backward"], k["gpuprop_sigmoid"]
        self._sigmoid_backward, self._tanh_backward = k["gpuprop_sigmoid_backward"], k["gpuprop_tanh_backward"]
        self._adam_update = k["gpuprop_adam_update"]
        self._gelu, self._gelu_with_slope = k["gpuprop_gelu"], k["gpuprop_gelu_with_slope"]

    def relu_backward(self, dy, y):
        return self._relu_backward(y, dy)

    def sigmoid(self, x, out=None):
        return self._sigmoid(x) if out is None else self._sigmoid(x, out)

    def sigmoid_backward(self, dy, y):
        return self._sigmoid_backward(y, dy)

    def tanh_backward(self, dy, y):
        return self._tanh_backward(y, dy)

    def gelu(self, x):
        return self._gelu(x) if x.dtype.itemsize >= 4 else super().gelu(x)  # float16: through float32

    def gelu_with_slope(self, x):
        return self._gelu_with_slope(x) if x.dtype.itemsize >= 4 else super().gelu_with_slope(x)

    def adam_update(self, p, g, m, v, lr_t, b1, b2, eps_t, decay):
        """Fused form of ``Adam.update_step``; see there for the formula."""
        dt = p.dtype.type
        self._adam_update(g, dt(lr_t), dt(b1), dt(1 - b1), dt(b2), dt(1 - b2), dt(eps_t), dt(decay), p, m, v)
