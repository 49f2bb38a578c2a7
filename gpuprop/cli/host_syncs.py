"""Host syncs counted around ``gpuprop train``'s training steps (gpu-sim counts them) for --json."""

import contextlib


class SyncCount:
    """Device-to-host syncs inside ``model.train_step`` and around it, where the backend counts them (gpu-sim).

    ``train_step`` is wrapped on this model object only, so the count covers
    exactly the training steps ``fit`` takes; the rest of ``fit`` (per-epoch
    reads, validation, checkpoints) is reported per epoch.
    """

    def __init__(self, model, backend):
        self.count = getattr(backend, "host_syncs", lambda: None)
        self.in_steps = self.steps = self.total = self.epochs = 0
        self.counting = self.count() is not None
        if self.counting:
            inner = model.train_step

            def counted(x, y):
                before = self.count()
                result = inner(x, y)
                self.in_steps += self.count() - before
                self.steps += 1
                return result

            model.train_step = counted
        self.model = model

    @contextlib.contextmanager
    def around_fit(self):
        before, epoch = self.count(), self.model.epoch
        try:
            yield
        finally:
            if self.counting:
                self.total += self.count() - before
                self.epochs += self.model.epoch - epoch

    def report(self):
        """``host_syncs_per_step`` and ``host_syncs_per_epoch`` for --json: None where not counted."""
        if not self.counting or not self.steps:
            return {"host_syncs_per_step": None, "host_syncs_per_epoch": None}
        outside = self.total - self.in_steps
        return {"host_syncs_per_step": self.in_steps / self.steps,
                "host_syncs_per_epoch": outside / self.epochs if self.epochs else None}
