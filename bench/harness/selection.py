"""What a run measures: which devices, which peers, which frameworks on each device."""

from gpuprop.backend import get_backend
from gpuprop.errors import BackendError

PEERS = ("torch", "torch-compile", "jax")


def parse_peers(spec):
    """'torch,jax' → ('torch', 'jax'); 'none' or '' → (). torch on a GPU adds torch-compile itself."""
    names = [p.strip().lower() for p in str(spec or "").split(",") if p.strip()]
    if names in (["none"], []):
        return ()
    bad = [p for p in names if p not in PEERS]
    if bad:
        raise ValueError(f"unknown peer(s) {', '.join(bad)}: use torch, torch-compile, jax or none")
    return tuple(dict.fromkeys(names))


def devices_for(spec):
    """'cpu' | 'gpu' | 'all' → list of device names, GPU first (it is the point); raises for a missing GPU."""
    spec = (spec or "all").lower()
    if spec == "cpu":
        return ["cpu"]
    if spec == "gpu":
        get_backend("gpu")  # raises BackendError with the reason
        return ["gpu"]
    try:
        get_backend("gpu")
        return ["gpu", "cpu"]
    except BackendError:
        return ["cpu"]


def frameworks_for(device, peers):
    out = ["gpuprop"]
    if "torch" in peers:
        out.append("torch")
    if ("torch" in peers and device == "gpu") or "torch-compile" in peers:
        out.append("torch-compile")
    if "jax" in peers:
        out.append("jax")
    return out


def peer_missing(framework, device, deep=True):
    """None when ``framework`` can run on ``device`` here, else the reason.

    ``deep=False`` only checks that the package is installed (no import: the
    runner leaves imports to the workers); the worker reports a missing device.
    """
    if not deep:
        import importlib.util

        pkg = "torch" if framework.startswith("torch") else framework
        return None if importlib.util.find_spec(pkg) else f"{pkg} is not installed (pip install {pkg})"
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
