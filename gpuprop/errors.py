"""User-facing errors.

Anything a user can cause (bad data, a GPU asked for that is not there, a
corrupt checkpoint) raises a subclass of ``GpupropError`` whose message is one
line naming the cause and the fix. The CLI prints that line and exits 1; a
traceback appears only with ``--debug``.
"""


class GpupropError(Exception):
    """Base class of errors whose message is meant for the user as is."""


class BackendError(GpupropError):
    """The requested device cannot be used (CuPy missing, no GPU, old driver).

    ``reason`` is the cause alone, without the fix: what ``auto`` reports when it
    falls back to the CPU (the whole message when none is given).
    """

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


class DataError(GpupropError):
    """A dataset file is missing, corrupt or of the wrong shape."""


class CheckpointError(GpupropError):
    """A checkpoint file is missing, corrupt or not a gpuprop checkpoint."""


class TrainingError(GpupropError):
    """Training cannot go on (non-finite loss, out of device memory)."""
