"""CuPy on one CUDA device: the only module besides ``sim`` that touches a cupy module.

``CupyBackend`` takes the cupy module as an argument, so the same class runs on
the real CuPy (``gpu:N``) and on the CPU stand-in ``gpuprop.backend.sim``
(``gpu-sim:N``), which is how this code is exercised on machines without a GPU.
"""

import os

import numpy

from ..errors import BackendError
from .cpu import Backend, _seed_int


class CupyBackend(Backend):
    """CuPy (or its stand-in) on one CUDA device.

    CuPy allocates on its *current* device, which is per-thread global state;
    this backend never changes it behind the caller's back. Code that allocates
    for a model runs inside ``backend.scope()`` (the model's entry points do).
    """

    is_gpu = True

    def __init__(self, cupy, device_id, reason="asked for", name="gpu"):
        self.name = name
        self.xp = cupy
        self.device_id = device_id
        self.reason = reason
        self.device = cupy.cuda.Device(device_id)
        from .kernels import CupyOps

        self.ops = CupyOps(cupy)

    def scope(self):
        return self.device

    def host_syncs(self):
        counter = getattr(self.xp, "host_syncs", None)  # only the stand-in can count them
        return None if counter is None else counter()

    def asarray(self, x, dtype=None):
        with self.device:
            if isinstance(x, self.xp.ndarray) and x.device.id != self.device_id:
                x = x.copy()  # CuPy copies another device's array onto the current one; asarray would not
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
        with self.device:
            return self.xp.argsort(self.rng(seed).random(n))

    def _as_strided(self, x, shape, strides):
        return self.xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)

    def memory_info(self):
        with self.device:
            free, total = self.xp.cuda.runtime.memGetInfo()
        return {"used": total - free, "total": total}

    def runtime_versions(self):
        rt = self.xp.cuda.runtime

        return {"CUDA driver": _cuda_version(rt.driverGetVersion()),
                "CUDA runtime": _cuda_version(rt.runtimeGetVersion()), "GPU count": str(rt.getDeviceCount())}

    def describe(self):
        props = self.xp.cuda.runtime.getDeviceProperties(self.device_id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"{self.spec} ({name}, CuPy {self.xp.__version__})"


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


