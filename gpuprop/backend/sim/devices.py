"""Two simulated CUDA devices, CuPy's per-thread current device, and the host-sync counter.

As in CuPy, new arrays are allocated on the thread's current device (device 0
until ``Device(i).use()`` or ``with Device(i):`` moves it), and an operation
whose arrays live on another device than the current one raises.
"""

import threading

DEVICE_COUNT = 2
TOTAL_MEMORY = 16 * 2**30  # what memGetInfo reports; the simulation allocates host memory
_state = threading.local()
_syncs = [0]
_syncs_lock = threading.Lock()


def current_id():
    """The thread's current device ordinal (CuPy starts every thread on device 0)."""
    return getattr(_state, "device", 0)


def _set_current(i):
    _state.device = i


def _stack():
    if not hasattr(_state, "stack"):
        _state.stack = []
    return _state.stack


def count_sync():
    """Record one device-to-host synchronisation (a value read on the host)."""
    with _syncs_lock:
        _syncs[0] += 1


def host_syncs():
    """Device-to-host synchronisations since the process started."""
    return _syncs[0]


class Device:
    """``cupy.cuda.Device``: ``with Device(i):`` makes i current and restores the previous one on exit."""

    def __init__(self, device=None):
        i = current_id() if device is None else int(device)
        if not 0 <= i < DEVICE_COUNT:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {i}")
        self.id = i

    def __enter__(self):
        _stack().append(current_id())  # per thread, like the device itself: one Device may be entered anywhere
        _set_current(self.id)
        return self

    def __exit__(self, *exc):
        _set_current(_stack().pop())

    def use(self):
        _set_current(self.id)

    def synchronize(self):
        """Work runs eagerly here, so there is nothing to wait for (and no value crosses to the host)."""

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


def check_same_device(arrays):
    """Raise as CuPy does when an operation meets an array that is not on the current device."""
    cur = current_id()
    for a in arrays:
        if a.device.id != cur:
            raise ValueError(f"Array device must be same as the current device: array device = {a.device.id} "
                             f"while current = {cur}")


class _Runtime:
    """The ``cupy.cuda.runtime`` calls gpuprop makes, answered for the simulated devices."""

    class CUDARuntimeError(RuntimeError):
        pass

    @staticmethod
    def getDeviceCount():
        return DEVICE_COUNT

    @staticmethod
    def getDevice():
        return current_id()

    @staticmethod
    def memGetInfo():
        return TOTAL_MEMORY, TOTAL_MEMORY

    @staticmethod
    def driverGetVersion():
        return 12090

    @staticmethod
    def runtimeGetVersion():
        return 12090

    @staticmethod
    def getDeviceProperties(i):
        Device(i)  # raises for an ordinal that does not exist
        return {"name": b"CuPy stand-in on the CPU", "totalGlobalMem": TOTAL_MEMORY, "multiProcessorCount": 1,
                "major": 9, "minor": 0}


runtime = _Runtime()
