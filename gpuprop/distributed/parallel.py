"""Data-parallel training: each rank takes its slice of every global batch, gradients are averaged.

Exact by construction. Every rank draws the same global permutation from the
seed and takes a contiguous slice of each global batch; parameters start equal
(checked: ``verify`` compares a digest of weights, optimizer state and layer
configs across ranks); after the backward, one allreduce over the flat gradient
buffer (``models/packing.py``) turns each rank's gradient into the global one:

    g = Σ_r (n_r / n) · g_r,   g_r = mean-loss gradient over rank r's n_r samples,

which is the mean-loss gradient over all n samples, so N ranks compute what one
process does up to summation order. Full batches split evenly (the global
batch size must divide by the ranks); an epoch's last, partial batch is split
as evenly as it goes and weighted by sample counts as above, except when it
holds fewer samples than there are ranks: then every rank skips it (a rank
with no sample cannot take part in a batch statistic), and ``fit`` says so.
"""

import hashlib
import json

import numpy

from ..errors import GpupropError
from . import collective as collective_mod

_ACTIVE = None


def active():
    """The DataParallel of the ``fit`` running now, or None (one process, or outside fit)."""
    return _ACTIVE


class DataParallel:
    """The sharding, gradient averaging and agreement of one data-parallel ``fit``."""

    def __init__(self, model, batch_size, world):
        if batch_size % world.size:
            world.raise_once(GpupropError(f"batch size {batch_size} does not split evenly across {world.size} ranks: "
                                          f"it is the global batch, use a multiple of {world.size}"))
        self.world, self.rank, self.size = world, world.rank, world.size
        self.model = model
        self.collective = collective_mod.for_backend(world, model.backend)
        self.count, self.total = batch_size // world.size, batch_size

    # --- which samples are mine -------------------------------------------------------------
    def steps(self, n, batch_size):
        """Global steps per epoch: a last batch smaller than the number of ranks is skipped."""
        full, rest = divmod(n, batch_size)
        return full + (rest >= self.size)

    def shard(self, lo, hi):
        """This rank's contiguous slice of the global rows ``lo:hi``, as evenly split as possible."""
        per, extra = divmod(hi - lo, self.size)
        start = lo + self.rank * per + min(self.rank, extra)
        self.count, self.total = per + (self.rank < extra), hi - lo
        return start, start + self.count

    @property
    def weight(self):
        """n_r / n: this rank's share of the current global batch."""
        return self.count / self.total

    # --- reductions ---------------------------------------------------------------------------
    def reduce_gradients(self, model):
        """The step's hook between backward and update: local gradients become the global mean gradient."""
        grads = [model.packed.grads] if model.packed is not None else model.grads
        even = self.count * self.size == self.total
        for g in grads:
            if not even:
                g *= self.count
            self.collective.allreduce_sum_(g)
            g *= 1.0 / (self.size if even else self.total)

    def allreduce_sum_(self, array):
        """Sum a device array over the ranks in place (synchronised batch statistics)."""
        return self.collective.allreduce_sum_(array)

    def totals(self, *values):
        """Host floats summed over the ranks (loss and correct-count sums)."""
        buf = numpy.array([float(v) for v in values], dtype="float64")
        self.world.comm.Allreduce(self.world.MPI.IN_PLACE, buf, op=self.world.MPI.SUM)
        return [float(v) for v in buf]

    def reduce_accumulator(self, acc):
        """Sum an epoch's (or a validation's) loss, metric and sample sums over the ranks, in place."""
        totals = self.totals(acc.loss_sum, *acc.sums, acc.seen)
        acc.loss_sum, acc.sums, acc.seen = totals[0], totals[1:-1], int(round(totals[-1]))

    def agree(self, *flags):
        """Each flag true on every rank when true on any (one small allreduce, ~12 µs here): Ctrl-C and
        stop_training then stop every rank after the same step."""
        buf = numpy.array([bool(f) for f in flags], dtype="int32")
        self.world.comm.Allreduce(self.world.MPI.IN_PLACE, buf, op=self.world.MPI.MAX)
        return [bool(f) for f in buf]

    def any(self, flag):
        return self.agree(flag)[0]

    # --- agreement ----------------------------------------------------------------------------
    def verify(self, when):
        """Raise (on rank 0) unless every rank holds the same model, weights and optimizer state."""
        digests = self.world.allgather(model_digest(self.model))
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            self.world.raise_once(GpupropError(
                f"ranks disagree on the model {when}: rank {differ[0]}'s layers, weights or optimizer state differ "
                "from rank 0's; start every rank from the same seed or the same checkpoint"))

    def __enter__(self):
        global _ACTIVE
        _ACTIVE = self
        self.model.gradient_reducer = self.reduce_gradients
        return self

    def __exit__(self, *exc):
        global _ACTIVE
        _ACTIVE = None
        self.model.gradient_reducer = None


def data_parallel(model, batch_size, n, verbose, log):
    """The DataParallel of a ``fit`` when this process is one of several MPI ranks, else None."""
    from .world import world

    w = world()
    if not w.parallel:
        return None
    dp = DataParallel(model, batch_size, w)
    dp.verify("at the start of training")
    rest = n % batch_size
    if 0 < rest < w.size and verbose and w.rank == 0:
        print(f"note: the last batch of each epoch ({rest} samples) is smaller than the {w.size} ranks "
              "and is skipped", file=log)
    return dp


def model_digest(model):
    """SHA-256 over layer configs, trainable weights and optimizer state (host bytes)."""
    h = hashlib.sha256()
    for layer in model.layers:
        h.update(json.dumps([type(layer).__name__, layer.get_config()], sort_keys=True, default=str).encode())
    to_host = model.backend.to_host
    for p in ([model.packed.params] if model.packed is not None else model.params):
        h.update(numpy.ascontiguousarray(to_host(p)).tobytes())
    opt = model.optimizer
    if opt is not None:
        h.update(json.dumps([opt.get_config(), opt.iterations], sort_keys=True, default=str).encode())
        for v in opt.variables():
            h.update(numpy.ascontiguousarray(to_host(v)).tobytes())
    return h.hexdigest()


def shard_rows(n, world):
    """This rank's contiguous share of ``n`` rows (validation is split, not repeated)."""
    per, extra = divmod(n, world.size)
    start = world.rank * per + min(world.rank, extra)
    return start, start + per + (world.rank < extra)
