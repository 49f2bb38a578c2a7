"""What a run measures: which devices, which peers, which frameworks on each device.

Peer names, the frameworks per device and the device choice are the
installed bench's (``gpuprop.bench.run``); the harness adds the lenient
spelling of ``--device`` and ``peer_missing``'s install hint and deep check.
"""

from gpuprop.bench import run as _bench
from gpuprop.bench.run import PEERS, frameworks_for, parse_peers  # noqa: F401 (re-exported)


def devices_for(spec):
    """'cpu' | 'gpu' | 'all' (any case; None = all) → device names, GPU first; raises for a missing GPU."""
    return _bench.devices_for((spec or "all").lower())


def peer_missing(framework, device, deep=True):
    """None when ``framework`` can run on ``device`` here, else the reason.

    ``deep=False`` only checks that the package is installed (no import: the
    runner leaves imports to the workers); the worker reports a missing device.
    """
    if not deep:
        why = _bench.missing(framework)
        pkg = "torch" if framework.startswith("torch") else framework
        return why and f"{why} (pip install {pkg})"
    if framework.startswith("torch"):
        try:
            import torch
        except ImportError:
            return "torch is not installed (pip install torch)"
        if device == "gpu" and not torch.cuda.is_available():
            return "torch sees no CUDA device"
    if framework == "jax":
        try:
            from gpuprop.bench.peers import jax_device

            jax_device(device)
        except ImportError:
            return "jax is not installed (pip install jax)"
        except RuntimeError as exc:
            return str(exc)
    return None
