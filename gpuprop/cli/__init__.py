"""The ``gpuprop`` command: train, evaluate, predict, info, gradcheck and bench.

``main`` is the click group (the console script ``gpuprop``, ``python -m gpuprop``
and ``python cli.py`` all run it). Errors become one ``error: ...`` line and
exit status 1; ``--debug`` (on the group or any subcommand) adds the traceback.
"""

import click

from .. import __version__
from .bench import bench
from .commands import evaluate, gradcheck, info, predict
from .errors import Group, debug_option
from .train import train


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpuprop")
@debug_option
def main():
    """Neural networks trained by hand-written backpropagation, on the GPU (CuPy) or the CPU (NumPy).

    \b
    Quick start:
      gpuprop train                                   # MLP on MNIST, 5 epochs
      gpuprop train --dataset fashion-mnist --model cnn --checkpoint fm.npz
      gpuprop evaluate fm.npz --dataset fashion-mnist
      gpuprop info                                    # versions and devices
    """


for _command in (train, evaluate, predict, info, gradcheck):
    main.add_command(_command)
main.add_command(bench)

__all__ = ["main"]
