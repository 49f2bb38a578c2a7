"""The one place that knows whether arrays live in NumPy (CPU) or CuPy (GPU).

``get_backend`` picks a backend once; the model keeps it. Unlike Keras 3 nothing
here is global, so one process can hold a CPU model and a GPU model at once.
``cpu`` is NumPy, ``gpu:N`` CuPy on CUDA device N, and ``gpu-sim:N`` the same
CuPy code running on ``gpuprop.backend.sim``, a strict CuPy stand-in on the CPU.
"""

from .. import config as _config
from ..errors import BackendError
from .cpu import Backend
from .cupy import CupyBackend, _import_cupy, cuda_failure

__all__ = ["Backend", "CupyBackend", "available_backends", "cuda_failure", "epsilon", "floatx", "get_backend",
           "image_data_format", "set_epsilon", "set_floatx"]

# Keras' ``keras.backend`` helpers, so ``from gpuprop import backend as K`` code runs: the numeric policy is
# gpuprop.config's (these delegate to it), and the image layout is fixed.
floatx, set_floatx, epsilon, set_epsilon = _config.floatx, _config.set_floatx, _config.epsilon, _config.set_epsilon


def image_data_format():
    """'channels_last': images are (batch, height, width, channels), the only layout gpuprop's layers take."""
    return "channels_last"

_CACHE = {}

def get_backend(spec="auto"):
    """The backend for ``spec``: ``'auto'``, ``'cpu'``, ``'gpu'``, ``'gpu:N'``, ``'gpu-sim'`` or ``'gpu-sim:N'``.

    A ``Backend`` passed in is returned as is. ``auto`` takes the GPU when CuPy
    imports and a device answers, else the CPU; ``backend.reason`` says why.
    """
    if isinstance(spec, Backend):
        return spec
    key = str(spec or "auto").strip().lower()
    if key == "cuda" or key.startswith("cuda:"):
        key = "gpu" + key[4:]  # lenient: PyTorch users type cuda
    if key in ("gpu", "gpu-sim"):
        key += ":0"  # one backend object per device
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
    elif key == "gpu-sim" or key.startswith("gpu-sim:"):
        backend = _sim_backend(spec, key[8:])
    elif key == "gpu" or key.startswith("gpu:"):
        ordinal = key[4:]
        if not ordinal.isdigit():
            raise BackendError(f"bad device {spec!r}: use auto, cpu, gpu or gpu:N with N a number")
        cupy, count = _import_cupy()
        if int(ordinal) >= count:
            raise BackendError(f"no GPU {ordinal}: this machine has {count} (gpu:0..gpu:{count - 1})")
        backend = CupyBackend(cupy, int(ordinal), "asked for")
    else:
        raise BackendError(f"unknown device {spec!r}: use auto, cpu, gpu, gpu:N or gpu-sim[:N]")
    _CACHE[key] = backend
    return backend


def _sim_backend(spec, ordinal):
    from . import sim

    if not ordinal.isdigit():
        raise BackendError(f"bad device {spec!r}: use gpu-sim or gpu-sim:N with N a number")
    if int(ordinal) >= sim.DEVICE_COUNT:
        raise BackendError(f"no simulated GPU {ordinal}: gpu-sim has {sim.DEVICE_COUNT} "
                           f"(gpu-sim:0..gpu-sim:{sim.DEVICE_COUNT - 1})")
    return CupyBackend(sim.module(), int(ordinal), "asked for", name="gpu-sim")


def available_backends():
    """Specs of the backends usable here, CPU first (tests run over each of them).

    The gpu-sim stand-in is always usable but never listed: it is asked for by name.
    """
    specs = ["cpu"]
    try:
        get_backend("gpu")
        specs.append("gpu")
    except BackendError:
        pass
    return specs
