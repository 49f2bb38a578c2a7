"""gpu-sim: a strict CuPy stand-in on the CPU, so gpuprop's CuPy code runs (and is tested) without a GPU.

``get_backend('gpu-sim:N')`` is the real ``CupyBackend`` given this stand-in in
place of the cupy module. It behaves like CuPy where CuPy's behaviour breaks
code: device arrays refuse implicit host conversion and host arrays mixed into
device work; only CuPy's functions, methods and keyword arguments exist;
out-of-bounds integer-array indices wrap; every device-to-host read is counted
(``module().host_syncs()``); two devices exist and arrays of different devices
do not mix; ``ElementwiseKernel`` compiles its C++ operation with g++.

Modules: ``arrays`` (the ndarray), ``convert`` (crossing to NumPy), ``namespace``
(the module), ``random``, ``kernels``, ``devices``, ``names`` (CuPy's lists).
"""

from .devices import DEVICE_COUNT

__all__ = ["DEVICE_COUNT", "module"]


def module():
    """The stand-in cupy module (imported on first use, so ``python -m gpuprop.backend.sim.names`` runs clean)."""
    from .namespace import module as build

    return build()
