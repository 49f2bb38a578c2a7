"""The one place that knows whether arrays live in NumPy (CPU) or CuPy (GPU).

A ``Backend`` is chosen once (``get_backend('auto'|'cpu'|'gpu'|'gpu:N')``) and
kept on the model. Layers, losses and optimizers only use ``backend.xp`` (the
array module) and ``backend.ops`` (hot operations that a GPU backend may fuse);
they never import numpy or cupy themselves. Unlike Keras 3 nothing here is
global, so one process can hold a CPU model and a GPU model at once.
"""

import os

import numpy

from .errors import BackendError
from .ops import Ops

_CACHE = {}


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

    def nccl(self):
        """CuPy's NCCL module for gradient allreduce across GPUs (gpuprop.distributed); None on the CPU."""
        return None


class CupyBackend(Backend):
    """CuPy on one CUDA device. Only this class and ``kernels_gpu`` import cupy."""

    is_gpu = True

    def __init__(self, cupy, device_id, reason="asked for"):
        self.name = "gpu"
        self.xp = cupy
        self.device_id = device_id
        self.reason = reason
        self.device = cupy.cuda.Device(device_id)
        self.device.use()
        from .kernels_gpu import CupyOps

        self.ops = CupyOps(cupy)

    def asarray(self, x, dtype=None):
        with self.device:
            return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x):
        if isinstance(x, self.xp.ndarray):
            return self.xp.asnumpy(x)
        return numpy.asarray(x)

    def synchronize(self):
        self.device.synchronize()

    def rng(self, seed):
        with self.device:
            return self.xp.random.default_rng(_seed_int(seed))

    def permutation(self, seed, n):
        # CuPy's Generator has no permutation(); ranking uniform draws gives one on the device.
        return self.xp.argsort(self.rng(seed).random(n))

    def _as_strided(self, x, shape, strides):
        return self.xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)

    def memory_info(self):
        free, total = self.xp.cuda.runtime.memGetInfo()
        return {"used": total - free, "total": total}

    def runtime_versions(self):
        rt = self.xp.cuda.runtime

        return {"CUDA driver": _cuda_version(rt.driverGetVersion()),
                "CUDA runtime": _cuda_version(rt.runtimeGetVersion()), "GPU count": str(rt.getDeviceCount())}

    def nccl(self):
        """``cupy.cuda.nccl`` when CuPy finds the NCCL library, else None (then MPI stages through the host)."""
        import warnings

        with warnings.catch_warnings():  # CuPy warns when NCCL is missing: the caller falls back and says so
            warnings.simplefilter("ignore")
            try:
                from cupy.cuda import nccl
            except ImportError:
                return None
        return nccl if getattr(nccl, "available", False) else None

    def describe(self):
        props = self.xp.cuda.runtime.getDeviceProperties(self.device_id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"gpu:{self.device_id} ({name}, CuPy {self.xp.__version__})"


def _seed_words(seed):
    if seed is None:
        return None
    return list(seed) if isinstance(seed, (tuple, list)) else [int(seed)]


def _seed_int(seed):
    """CuPy's generator takes one int: fold a tuple through NumPy's SeedSequence."""
    if seed is None:
        return None
    return int(numpy.random.SeedSequence(_seed_words(seed)).generate_state(1, numpy.uint64)[0] >> 1)


def _import_cupy():
    """CuPy and a CUDA device count, or a BackendError saying which part is missing."""
    if os.environ.get("GPUPROP_DISABLE_GPU"):
        raise BackendError("GPU disabled by GPUPROP_DISABLE_GPU; unset it to use the GPU",
                           reason="GPU disabled by GPUPROP_DISABLE_GPU")
    try:
        import cupy
    except ImportError:
        raise BackendError(
            "CuPy is not installed: pip install 'gpuprop[gpu]' (CUDA 12) or 'gpuprop[gpu-cuda13]', or use --device cpu",
            reason="CuPy is not installed") from None
    except Exception as exc:  # a broken CUDA install fails at import with many types
        raise BackendError(f"CuPy failed to import ({_first_line(exc)}); use --device cpu",
                           reason="CuPy failed to import") from None
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        raise cuda_failure(_first_line(exc), _version_or_none(runtime.driverGetVersion),
                           _version_or_none(runtime.runtimeGetVersion)) from None
    if count == 0:
        raise BackendError("no CUDA device found; use --device cpu", reason="no CUDA device found")
    return cupy, count


def cuda_failure(msg, driver, runtime):
    """The BackendError for a CUDA runtime that would not count its devices.

    ``driver`` and ``runtime`` are CUDA's version numbers (12090 = 12.9) or None where
    unknown. CUDA reports a missing driver as an "insufficient" one; its driver
    version is then 0, which is how the two are told apart here.
    """
    if driver == 0:
        return BackendError(f"no NVIDIA driver is installed, so CuPy cannot reach a GPU ({msg}): use --device cpu "
                            "(auto does), or install the NVIDIA driver if this machine has an NVIDIA GPU",
                            reason="no NVIDIA driver is installed")
    if "stub" in msg.lower():  # containers that mount the toolkit's libcuda stub instead of the real driver
        return BackendError(f"only the CUDA driver's stub library was found ({msg}): run with the NVIDIA driver "
                            "available (in a container: the NVIDIA container toolkit, --gpus all), or use --device cpu",
                            reason="only the CUDA driver's stub library was found")
    if "insufficient" in msg.lower():
        versions = (f"; the driver supports CUDA {_cuda_version(driver)}, this CuPy needs {_cuda_version(runtime)}"
                    if driver and runtime else "")
        return BackendError(f"the NVIDIA driver is too old for this CuPy build ({msg}{versions}): update the driver "
                            "or install the CuPy wheel for your CUDA version ('gpuprop[gpu]' is CUDA 12, "
                            "'gpuprop[gpu-cuda13]' CUDA 13), or use --device cpu",
                            reason="the NVIDIA driver is too old for this CuPy build")
    return BackendError(f"no CUDA device answers ({msg}); use --device cpu", reason="no CUDA device answers")


def _version_or_none(call):
    try:
        return int(call())
    except Exception:  # a half-installed CUDA can fail here too; the message then goes without versions
        return None


def _cuda_version(v):
    return f"{v // 1000}.{(v % 1000) // 10}"


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def get_backend(spec="auto"):
    """The backend for ``spec``: ``'auto'``, ``'cpu'``, ``'gpu'`` or ``'gpu:N'``.

    A ``Backend`` passed in is returned as is. ``auto`` takes the GPU when CuPy
    imports and a device answers, else the CPU; ``backend.reason`` says why.
    """
    if isinstance(spec, Backend):
        return spec
    key = str(spec or "auto").strip().lower()
    if key == "cuda" or key.startswith("cuda:"):
        key = "gpu" + key[4:]  # lenient: PyTorch users type cuda
    if key in _CACHE:
        return _CACHE[key]
    if key == "cpu":
        backend = Backend("asked for")
    elif key == "auto":
        try:
            cupy, _ = _import_cupy()
            backend = CupyBackend(cupy, 0, "auto: CuPy imported and a CUDA device answered")
        except BackendError as exc:
            backend = Backend(f"auto: {exc.reason}")
    elif key == "gpu" or key.startswith("gpu:"):
        ordinal = key[4:] or "0"
        if not ordinal.isdigit():
            raise BackendError(f"bad device {spec!r}: use auto, cpu, gpu or gpu:N with N a number")
        cupy, count = _import_cupy()
        if int(ordinal) >= count:
            raise BackendError(f"no GPU {ordinal}: this machine has {count} (gpu:0..gpu:{count - 1})")
        backend = CupyBackend(cupy, int(ordinal), "asked for")
    else:
        raise BackendError(f"unknown device {spec!r}: use auto, cpu, gpu or gpu:N")
    _CACHE[key] = backend
    return backend


def available_backends():
    """Specs of the backends usable here, CPU first (tests run over each of them)."""
    specs = ["cpu"]
    try:
        get_backend("gpu")
        specs.append("gpu")
    except BackendError:
        pass
    return specs
