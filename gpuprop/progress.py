"""Keras-style epoch lines and a live progress bar.

verbose=1: a bar redrawn in place (only when the stream is a terminal)
and one line per epoch; verbose=2: one line per epoch; verbose=0: nothing.
The live bar shows the time spent and the time left (ETA), and is cut to
the terminal's width: a redraw longer than the terminal would wrap, and
``\\r`` only returns to the start of the last wrapped row, so every redraw
would add a line.
"""

import os
import sys
import time

_WIDTH = 30
_MIN_BAR = 10


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


def keras_line(step, steps, wall, logs, ran=None):
    """Keras' verbose=2 line: ``8/8 - 0s - 8ms/step - accuracy: 0.5352 - loss: 0.7174``."""
    count = f"{step:{len(str(steps))}d}/{steps}"
    tail = f" - {format_logs(logs)}" if logs else ""
    return f"{count} - {wall:.0f}s - {per_unit(wall / max(step if ran is None else ran, 1))}{tail}"


def terminal_columns(stream, default=80):
    """Columns of the terminal behind ``stream`` ($COLUMNS wins, as in shutil), else ``default``."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (AttributeError, OSError, ValueError):
        return default


class EpochProgress:
    def __init__(self, epoch, epochs, steps, verbose=1, stream=None, first_step=0):
        self.stream = stream or sys.stdout
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.steps = steps
        self.first_step = first_step  # a resumed epoch starts here: the ETA counts only steps run now
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.live = self.verbose == 1 and tty
        self.t0 = time.perf_counter()
        if self.verbose and epoch is not None:  # None: no 'Epoch k/N' line (evaluate, predict, Keras' N = 1)
            self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")
            self.stream.flush()

    def _bar(self, step, width=_WIDTH):
        done = int(width * step / max(self.steps, 1))
        return "━" * done + "─" * (width - done)

    def update(self, step, logs):
        """Redraw the live line: steps, bar, time spent and left, running loss and accuracy."""
        elapsed = time.perf_counter() - self.t0
        ran = step - self.first_step
        eta = elapsed / ran * (self.steps - step) if ran > 0 else 0.0
        counter = f"{step}/{self.steps}"
        tail = f" {_fmt_time(elapsed)} ETA {_fmt_time(eta)} - {format_logs(logs)}"
        room = terminal_columns(self.stream) - 1  # the last column would wrap on some terminals
        bar = max(_MIN_BAR, min(_WIDTH, room - len(counter) - len(tail) - 1))
        line = f"{counter} {self._bar(step, bar)}{tail}"
        self.stream.write(f"\r{line[:room]}\x1b[K")
        self.stream.flush()

    def close(self, step, logs, wall, interrupted=False, note=""):
        if not self.verbose:
            return
        per_step = wall / max(step - self.first_step, 1)
        tail = (" (interrupted)" if interrupted else "") + (f" {note}" if note else "")
        if self.live:
            self.stream.write(f"\r{step}/{self.steps} {self._bar(step)} {_fmt_time(wall)} "
                              f"{per_step * 1000:.0f}ms/step{' - ' if logs else ''}{format_logs(logs)}{tail}\x1b[K\n")
        else:
            self.stream.write(f"{keras_line(step, self.steps, wall, logs, ran=step - self.first_step)}{tail}\n")
        self.stream.flush()
