"""The NumPy backend, and the interface every backend offers.

A ``Backend`` is chosen once (``get_backend('auto'|'cpu'|'gpu'|'gpu:N')``) and
kept on the model. Layers, losses and optimizers only use ``backend.xp`` (the
array module) and ``backend.ops`` (hot operations that a GPU backend may fuse);
they never import numpy or cupy themselves.
"""

import contextlib

import numpy

from ..ops import Ops


class Backend:
    """An array module plus the device it computes on.

    Attributes: ``name`` ('cpu' or 'gpu'), ``xp`` (numpy or cupy), ``device_id``
    (GPU ordinal, None on CPU), ``reason`` (why ``auto`` picked it), ``ops``.
    """

    is_gpu = False

    def __init__(self, reason="asked for"):
        self.name = "cpu"
        self.xp = numpy
        self.device_id = None
        self.reason = reason
        self.ops = Ops(self.xp)

    def __repr__(self):
        return f"Backend({self.spec!r})"

    @property
    def spec(self):
        return self.name if self.device_id is None else f"{self.name}:{self.device_id}"

    # --- moving data ------------------------------------------------------
    def asarray(self, x, dtype=None):
        """``x`` as an array on this device (no copy when it already is)."""
        return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x):
        """``x`` as a host NumPy array."""
        return numpy.asarray(x)

    def synchronize(self):
        """Wait until queued device work is done (timing needs it; the CPU is always done)."""

    def scope(self):
        """A context in which new arrays land on this backend's device (nothing to do on the CPU)."""
        return contextlib.nullcontext()

    def host_syncs(self):
        """Device-to-host synchronisations so far, where the backend can count them (the gpu-sim); else None."""
        return None

    def scalar(self, x):
        """A device scalar as a Python float: on a GPU this waits for the device."""
        return float(x)

    # --- randomness -------------------------------------------------------
    def rng(self, seed):
        """A generator on this device. ``seed`` may be an int or a tuple of ints."""
        return self.xp.random.default_rng(_seed_words(seed))

    def permutation(self, seed, n):
        """A random permutation of range(n) on this device, fixed by ``seed``."""
        return self.rng(seed).permutation(n)

    # --- views for convolution --------------------------------------------
    def windows(self, x, kh, kw, sh, sw):
        """Sliding ``kh×kw`` windows of NHWC ``x`` with strides ``(sh, sw)`` as a view.

        Returns shape ``(N, Ho, Wo, kh, kw, C)``; no data is copied.
        """
        n, h, w, c = x.shape
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        s0, s1, s2, s3 = x.strides
        return self._as_strided(x, (n, ho, wo, kh, kw, c), (s0, s1 * sh, s2 * sw, s1, s2, s3))

    def _as_strided(self, x, shape, strides):
        return numpy.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)

    # --- reporting ----------------------------------------------------------
    def memory_info(self):
        """``{'used': bytes, 'total': bytes}`` for the device, or None where unknown."""
        return None

    def describe(self):
        """One line naming the device, for the CLI's 'device:' line."""
        return f"cpu (NumPy {numpy.__version__})"

    def runtime_versions(self):
        """Driver/runtime facts for ``gpuprop info``: empty on the CPU."""
        return {}


def _seed_words(seed):
    if seed is None:
        return None
    return list(seed) if isinstance(seed, (tuple, list)) else [int(seed)]


def _seed_int(seed):
    """CuPy's generator takes one int: fold a tuple through NumPy's SeedSequence."""
    if seed is None:
        return None
    return int(numpy.random.SeedSequence(_seed_words(seed)).generate_state(1, numpy.uint64)[0] >> 1)


