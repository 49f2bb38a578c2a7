"""gpuprop's side of a benchmark: a model and pre-gathered device batches behind one ``step()``.

Every framework's trainer has the same small interface, so the runner and the
memory probe treat them alike:

    t = Trainer(workload, device)   # imports, picks the device
    t.load(batches)                 # host (x, y) batches → device-resident
    t.build(weights)                # model + optimizer from gpuprop's host weights
    loss = t.step()                 # one training step on the next batch (no host sync)
    t.sync()                        # wait for queued device work
    t.loss_value(loss)              # a step's loss as a float (syncs)

gpuprop's step is exactly ``model.train_step(xb, yb)``, what ``fit`` runs per batch.
"""

from ..backend import get_backend
from . import workloads


class GpupropTrainer:
    framework = "gpuprop"

    def __init__(self, workload, device):
        self.workload = workload
        self.backend = get_backend(device)
        self.device = "gpu" if self.backend.is_gpu else "cpu"
        self.batches, self.model, self._i = [], None, 0
        self.note = ""

    def load(self, batches):
        self.batches = [(self.backend.asarray(x), self.backend.asarray(y)) for x, y in batches]

    def build(self, weights):
        self.model = workloads.build_gpuprop(self.workload, self.backend, seed=0)
        self.model.set_weights(weights)

    def step(self):
        x, y = self.batches[self._i % len(self.batches)]
        self._i += 1
        loss, _ = self.model.train_step(x, y)
        return loss

    def sync(self):
        self.backend.synchronize()

    def loss_value(self, loss):
        return self.backend.scalar(loss)

    def weights(self):
        """Current weights as host arrays in gpuprop order (for parity checks)."""
        return self.model.get_weights()


def make(framework, workload, device, **options):
    """A trainer for ``framework`` ('gpuprop', 'torch', 'torch-compile', 'jax') on 'cpu' or 'gpu'."""
    if framework == "gpuprop":
        return GpupropTrainer(workload, device)
    if framework in ("torch", "torch-compile"):
        from .peers_torch import TorchTrainer

        return TorchTrainer(workload, device, compiled=framework == "torch-compile", **options)
    if framework == "jax":
        from .peers_jax import JaxTrainer

        return JaxTrainer(workload, device)
    raise ValueError(f"unknown framework {framework!r}")
