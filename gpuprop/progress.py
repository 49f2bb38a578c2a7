"""Keras-style epoch lines and a live progress bar.

verbose=1: a bar redrawn in place (only when the stream is a terminal)
and one line per epoch; verbose=2: one line per epoch; verbose=0: nothing.
"""

import sys

_WIDTH = 30


def _fmt_time(seconds):
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"


def format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" if abs(v) > 1e-3 else f"{k}: {v:.4e}" for k, v in logs.items())


def per_unit(seconds, unit="step"):
    """Keras' time per step: whole seconds, ms or us."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    return f"{seconds * 1e3:.0f}ms/{unit}" if seconds >= 1e-3 else f"{seconds * 1e6:.0f}us/{unit}"


def keras_line(step, steps, wall, logs):
    """Keras' verbose=2 line: ``8/8 - 0s - 8ms/step - accuracy: 0.5352 - loss: 0.7174``."""
    count = f"{step:{len(str(steps))}d}/{steps}"
    tail = f" - {format_logs(logs)}" if logs else ""
    return f"{count} - {wall:.0f}s - {per_unit(wall / max(step, 1))}{tail}"


class EpochProgress:
    def __init__(self, epoch, epochs, steps, verbose=1, stream=None):
        """``epoch`` None: no 'Epoch k/N' line (evaluate, predict)."""
        self.stream = stream or sys.stdout
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.steps = steps
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.live = self.verbose == 1 and tty
        if self.verbose and epoch is not None:
            self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")
            self.stream.flush()

    def _bar(self, step):
        done = int(_WIDTH * step / max(self.steps, 1))
        return "━" * done + "─" * (_WIDTH - done)

    def update(self, step, logs):
        self.stream.write(f"\r{step}/{self.steps} {self._bar(step)} - {format_logs(logs)}\x1b[K")
        self.stream.flush()

    def close(self, step, logs, wall, interrupted=False):
        if not self.verbose:
            return
        per_step = wall / max(step, 1)
        tail = " (interrupted)" if interrupted else ""
        self.stream.write(f"\r{step}/{self.steps} {self._bar(step)} {_fmt_time(wall)} "
                          f"{per_step * 1000:.0f}ms/step - {format_logs(logs)}{tail}\x1b[K\n"
                          if self.live else f"{keras_line(step, self.steps, wall, logs)}{tail}\n")
        self.stream.flush()
