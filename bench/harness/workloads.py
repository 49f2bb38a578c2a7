"""The research workloads: the installed bench's workloads plus what only the harness times.

Every model, its FLOP count (``gemms``, ``flops_per_step``), its synthetic
batches (``host_batches``) and its gpuprop build and initial weights
(``build_gpuprop``, ``reference_weights``) are ``gpuprop.bench.workloads``'s,
so the harness and ``gpuprop bench`` time the same models from the same
weights; see that module for the layer-spec language and the FLOP method.
This module adds what the harness needs on top: per-workload flags for how
it is timed (``kind``, ``needs``, ``paired_ceiling``), the ``epoch``
workload (``model.fit`` over ``EPOCH_SAMPLES`` from ``epoch_data``), the
scaling sweeps' models (``scaling_mlp``, ``get``) and ``count_params``.
"""

from dataclasses import dataclass, fields

import numpy

from gpuprop.bench import workloads as base
from gpuprop.bench.workloads import (  # noqa: F401 (re-exported: the harness uses these as they are)
    build_gpuprop, flops_per_step, gemms, host_batches, reference_weights, shapes)

EPOCH_SAMPLES = 60000


@dataclass(frozen=True)
class Workload(base.Workload):
    kind: str = "step"  # "step": time train_step; "epoch": time model.fit over EPOCH_SAMPLES
    needs: str = ""  # gpuprop layer classes the workload needs ("conv": Conv2D, MaxPooling2D)
    paired_ceiling: bool = False  # judged against the sgemm ceiling: time that product in its turns too


def _harness(workload, **flags):
    """The package's workload, unchanged, with the harness's flags."""
    return Workload(**{f.name: getattr(workload, f.name) for f in fields(base.Workload)}, **flags)


_FLAGS = {"wide": {"paired_ceiling": True}, "cnn": {"needs": "conv"}}
_MLP = base.WORKLOADS["mlp"]

WORKLOADS = {w.name: w for w in (
    *(_harness(w, **_FLAGS.get(w.name, {})) for w in base.WORKLOADS.values()),
    Workload("epoch", _MLP.layers, _MLP.input_shape, _MLP.batch, _MLP.optimizer, _MLP.lr,
             "one epoch of 60000 through DeviceDataset + model.fit, MLP 784-512-512-10, batch 128",
             quick=True, kind="epoch"),
)}


def names():
    return list(WORKLOADS)


def scaling_mlp(width=512, batch=128):
    """The scaling sweeps' model: 784-width-width-10 ReLU at ``batch``, SGD momentum 0.9."""
    return Workload(f"mlp{width}-b{batch}", base._mlp(width), (784,), batch, "momentum", 0.01,
                    f"MLP 784-{width}-{width}-10, batch {batch}")


def get(name):
    """A named workload, or a scaling point named as ``scaling_mlp`` names it (``mlp512-b32``)."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    width, sep, batch = name.removeprefix("mlp").partition("-b")
    if name.startswith("mlp") and sep and width.isdigit() and batch.isdigit():
        return scaling_mlp(int(width), int(batch))
    raise KeyError(f"unknown workload {name!r}")


def select(spec=None, quick=False):
    """Workloads named in ``spec`` (names or comma lists), default all (or the --quick subset), from this table."""
    return base.select(spec, quick, table=WORKLOADS)


def count_params(workload):
    shape, total = tuple(workload.input_shape), 0
    for spec, after in zip(workload.layers, shapes(workload)):
        if spec[0] == "dense":
            total += shape[-1] * spec[1] + spec[1]
        elif spec[0] == "conv":
            total += spec[2] * spec[2] * shape[-1] * spec[1] + spec[1]
        shape = after
    return total


def epoch_data(workload, n=EPOCH_SAMPLES, seed=0):
    """60000 synthetic uint8 images and int64 labels, as a dataset file would give them."""
    rng = numpy.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *workload.input_shape), dtype=numpy.uint8)
    return x, rng.integers(0, 10, size=n).astype(numpy.int64)


def available(workload):
    """(True, '') or (False, reason) for whether gpuprop can build this workload here."""
    from gpuprop import layers

    if workload.needs == "conv" and not (hasattr(layers, "Conv2D") and hasattr(layers, "MaxPooling2D")):
        return False, "gpuprop has no Conv2D/MaxPooling2D"
    return True, ""
