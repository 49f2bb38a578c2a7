"""Keras' one data iterator across the epochs of a ``fit`` call: which batch of which shuffle each step trains on."""


RAN_OUT = ("the data ran out before steps_per_epoch={steps} steps: {n} samples make {batches} batches of "
           "{batch_size}, so this epoch ended early and the next starts a new pass over the data (as in Keras); "
           "for epochs of equal length pass a steps_per_epoch that divides {batches}, or leave it out")


class DataPasses:
    """Keras' one data iterator across the epochs of a ``fit`` call (``steps_per_epoch``).

    A pass is one shuffle of the data, ``batches`` batches long. Without
    ``steps_per_epoch`` every epoch is one whole pass. With it, an epoch takes
    the next ``steps_per_epoch`` batches of the current pass, ends early when
    the pass runs out, and the next epoch starts a new pass. Each pass is
    shuffled by (seed, the epoch that began it); ``offset`` is the batch of
    the pass at which ``model.epoch`` begins. The state lives in
    ``model.metadata['data_pass']`` while a fit runs, so a checkpoint taken
    mid-fit resumes the same pass exactly; a fit that ends normally clears
    it, and the next fit starts a new pass, as each Keras ``fit`` does.
    """

    def __init__(self, model, batches):
        self.model, self.batches = model, batches
        saved = model.metadata.get("data_pass") if hasattr(model, "metadata") else None
        if saved and saved.get("batches") == batches and saved.get("epoch") == model.epoch:
            self.shuffle_epoch, self.offset = int(saved["shuffle_epoch"]), int(saved["offset"])
        else:
            self.shuffle_epoch, self.offset = model.epoch, 0
        self._save()

    def steps_now(self, steps):
        """The steps the current epoch gets: ``steps``, or what is left of the pass if that is fewer."""
        return min(steps, self.batches - self.offset)

    def end_epoch(self, done):
        """The current epoch ran ``done`` steps: move to the next epoch, and to a new pass if this one is used up."""
        model = self.model
        model.epoch, model.step_in_epoch = model.epoch + 1, 0
        self.offset += done
        if self.offset >= self.batches:
            self.shuffle_epoch, self.offset = model.epoch, 0
        self._save()

    def finish(self):
        getattr(self.model, "metadata", {}).pop("data_pass", None)

    def _save(self):
        if hasattr(self.model, "metadata"):
            self.model.metadata["data_pass"] = {"batches": self.batches, "epoch": self.model.epoch,
                                                "shuffle_epoch": self.shuffle_epoch, "offset": self.offset}
