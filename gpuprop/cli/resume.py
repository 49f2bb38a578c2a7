"""`gpuprop train --resume` and Ctrl-C: what a checkpoint fixes, and saving an interrupted run with the command
that resumes it."""

import shlex
import signal

import click
from click.core import ParameterSource
import numpy

from ..errors import GpupropError
from .errors import EXIT_INTERRUPTED


def checkpoint_dtype(path):
    """The float type of a checkpoint's weights, or None (load_model reports an unreadable file)."""
    try:
        with numpy.load(path, allow_pickle=False) as f:
            name = str(f[next(k for k in f.files if k.startswith("weight_"))].dtype)
    except Exception:  # noqa: BLE001 - only a hint; the real load below says what is wrong
        return None
    return name if name in ("float32", "float64") else None


def resume_batch_size(ctx, model, batch_size, resume):
    """Mid-epoch, the step count only means something at the batch size it was counted in."""
    saved = model.metadata.get("batch_size")
    if saved is None:
        return batch_size
    if ctx.get_parameter_source("batch_size") is not ParameterSource.COMMANDLINE:
        return saved
    if batch_size != saved and model.step_in_epoch:
        raise GpupropError(f"{resume} stopped mid-epoch at batch size {saved}: resume with --batch-size {saved} "
                           "(or without --batch-size)")
    return batch_size


def resume_dataset(model, dataset, resume, say):
    """The checkpoint's dataset unless --dataset names one; a different one is said, never silent."""
    saved = model.metadata.get("dataset")
    if dataset and saved and dataset != saved:
        say(f"note: {resume} was trained on {saved}; continuing on {dataset} as --dataset asks")
    return dataset or saved


def note_ignored(ctx, say):
    """Flags that a checkpoint overrides are noted, not silently dropped."""
    fixed = [f"--{p.replace('_name', '').replace('_', '-')}" for p in ("model_name", "hidden", "optimizer", "lr", "seed")
             if ctx.get_parameter_source(p) is ParameterSource.COMMANDLINE]
    if fixed:
        say(f"note: {', '.join(fixed)} ignored with --resume: the checkpoint fixes the model, optimizer and seed")


def interrupted(ctx, model, stop, steps, checkpoint, dataset, data_dir, epochs, batch_size, device, extra=()):
    where = f"epoch {stop.epoch + 1} after step {stop.step}/{steps}"
    if not checkpoint:
        click.echo(f"interrupted in {where}; nothing saved (pass --checkpoint PATH to be able to resume)", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save short
    try:
        model.save(checkpoint)
    finally:
        signal.signal(signal.SIGINT, old)
    cmd = ["gpuprop", "train", "--resume", checkpoint, "--checkpoint", checkpoint, "--epochs", str(epochs),
           "--dataset", dataset, "--batch-size", str(batch_size)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if device != "auto":
        cmd += ["--device", device]
    cmd += extra
    click.echo(f"interrupted in {where}; saved to {checkpoint}; resume with: {shlex.join(cmd)}", err=True)
    ctx.exit(EXIT_INTERRUPTED)
