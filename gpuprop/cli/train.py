"""`gpuprop train`: fit a zoo model on MNIST or Fashion-MNIST, Keras-style output, resumable.

Also holds the options the other subcommands share (dataset, device, --json).
"""

import json
import math
import os
import re
import shlex
import signal
import sys

import click
import numpy

from ..errors import GpupropError, TrainingError
from .errors import EXIT_INTERRUPTED, debug_option, debugging

# Keras' default learning rate of each optimizer; momentum is SGD(momentum=0.9).
LEARNING_RATES = {"sgd": 0.01, "momentum": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001}
_DEVICE_RE = re.compile(r"^(auto|cpu|gpu|cuda)(:\d+)?$")


# --- options shared with evaluate / predict -------------------------------------------
def _dataset_name(ctx, param, value):
    """Canonical dataset name; case, '-' and '_' are ignored (fashion_mnist works)."""
    if value is None:
        return None
    from .. import datasets

    try:
        module = datasets.get(value)
    except GpupropError:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(datasets.names())}") from None
    return next(name for name, m in datasets.DATASETS.items() if m is module)


def _device_spec(ctx, param, value):
    key = str(value).strip().lower()
    m = _DEVICE_RE.match(key)
    if not m or (m.group(2) and m.group(1) in ("auto", "cpu")):
        raise click.BadParameter(f"{value!r}: use auto, cpu, gpu or gpu:N")
    return key


def dataset_option(default="mnist", help="Dataset: its test split is the validation data."):
    return click.option("--dataset", default=default, callback=_dataset_name, show_default=default is not None,
                        metavar="mnist|fashion-mnist", help=help)


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Folder with the four IDX files [default: $GPUPROP_DATA_DIR, the cache, /usr/share/datasets, "
         "else download].")
device_option = click.option("--device", default="auto", show_default=True, callback=_device_spec,
                             metavar="auto|cpu|gpu|gpu:N",
                             help="Where to compute; auto takes the GPU when CuPy finds one.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout; human-readable output goes to stderr.")


def human_stream(as_json):
    """stdout, or stderr when stdout carries the JSON object."""
    return sys.stderr if as_json else sys.stdout


def load_dataset(name, data_dir, quiet=False):
    """``(spec, (x_train, y_train), (x_test, y_test), folder)`` as uint8 arrays; folder may be None."""
    from .. import datasets
    from ..datasets import sources

    module = datasets.get(name)
    train, test = module.load_data(data_dir=data_dir, progress=False if quiet else None)
    try:  # only to tell the user where the files came from
        folder = str(next(iter(sources.locate(module.SPEC, data_dir=data_dir, download=False).values())).parent)
    except GpupropError:
        folder = None
    return module.SPEC, train, test, folder


def check_input_shape(model, images, source):
    want = tuple(model.layers[0].input_shape or ())
    if tuple(images.shape[1:]) != want:
        raise GpupropError(f"{source} expects inputs of shape {want}, but the images are {tuple(images.shape[1:])}")


def ensure_parent(path):
    """Create the folder that will hold ``path``, so a save after the first epoch cannot fail on it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise GpupropError(f"cannot create the folder {folder} for {path} ({exc.strerror or exc})") from None


def _hidden(ctx, param, value):
    from ..zoo import parse_hidden

    try:
        return parse_hidden(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


# --- the command ----------------------------------------------------------------------
@click.command()
@dataset_option()
@data_dir_option
@click.option("--model", "model_name", type=click.Choice(["softmax", "mlp", "cnn"], case_sensitive=False),
              default="mlp", show_default=True, help="softmax regression, an MLP, or Keras' MNIST convnet.")
@click.option("--hidden", default="512,512", show_default=True, callback=_hidden, metavar="W[,W...]",
              help="Hidden layer widths of --model mlp.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Total epochs; with --resume those already done count (Keras' initial_epoch).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Samples per gradient step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate; by default Keras' for the optimizer: 0.01 for sgd and momentum, 0.001 for the others.")
@click.option("--optimizer", type=click.Choice(list(LEARNING_RATES), case_sensitive=False), default="adam",
              show_default=True, help="momentum is SGD with momentum 0.9.")
@device_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds initial weights, shuffling and dropout.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Save the model here after every epoch (atomically) and on Ctrl-C.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from this checkpoint; model and optimizer come from it.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), default=None,
              help="Write one JSON line per epoch here (appended to with --resume).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save loss and accuracy curves to this PNG (needs matplotlib).")
@json_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors (and the --json object).")
@debug_option
@click.pass_context
def train(ctx, dataset, data_dir, model_name, hidden, epochs, batch_size, lr, optimizer, device, seed,
          checkpoint, resume, metrics_path, plot, as_json, quiet):
    """Train a classifier on MNIST or Fashion-MNIST (Keras-style progress).

    \b
    Examples:
      gpuprop train --model softmax --optimizer sgd --lr 0.01 --batch-size 32
      gpuprop train --dataset fashion-mnist --model cnn --epochs 12 --checkpoint fm.npz
      gpuprop train --resume fm.npz --checkpoint fm.npz --epochs 20

    Ctrl-C stops after the current step; with --checkpoint the model is saved
    first, and --resume continues exactly where it stopped.
    """
    from .. import get_backend, load_model, optimizers, zoo
    from ..training import DeviceDataset

    out = human_stream(as_json)

    def say(msg):
        if not quiet:
            click.echo(msg, file=out)

    if not debugging(ctx):  # overflow warnings from NumPy would bury the one-line error
        ctx.with_resource(numpy.errstate(all="ignore"))
    if plot:
        require_matplotlib()
    for path in (checkpoint, metrics_path, plot):
        if path:
            ensure_parent(path)
    backend = get_backend(device)
    say(f"device: {backend.describe()} - {backend.reason}")

    spec, (x_train, y_train), (x_test, y_test), folder = load_dataset(dataset, data_dir, quiet)
    say(f"data: {spec.title}, {len(x_train):,} training and {len(x_test):,} test images"
        + (f" from {folder}" if folder else "") + "; the test split is the validation data")

    if resume:
        model = load_model(resume, device=backend)
        if model.optimizer is None:
            raise GpupropError(f"{resume} holds no optimizer state (saved before compile); it cannot be resumed")
        _note_ignored(ctx, say)
        check_input_shape(model, x_train, f"the model in {resume}")
        batch_size = _resume_batch_size(ctx, model, batch_size, resume)
    else:
        model = zoo.build(model_name, hidden=hidden, device=backend, seed=seed)
        opt = optimizers.get(optimizer.lower(), learning_rate=lr or LEARNING_RATES[optimizer.lower()])
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.build()
    model.metadata.update(dataset=dataset, batch_size=batch_size)
    steps = -(-len(x_train) // batch_size)
    if model.step_in_epoch >= steps:  # stopped after an epoch's last step, before its validation
        model.epoch, model.step_in_epoch = model.epoch + 1, 0

    say(f"model: {model.name}: {zoo.describe(model)}; {model.count_params():,} parameters")
    say(f"training: {describe_optimizer(model.optimizer)}, batch size {batch_size}, seed {model.seed}"
        + (f"; resuming from {resume} at {position(model, steps)}" if resume else ""))

    train_data = DeviceDataset(model, x_train, y_train, scale=1 / 255)
    val_data = DeviceDataset(model, x_test, y_test, scale=1 / 255)
    del x_train, x_test

    if metrics_path and not resume:
        open(metrics_path, "w").close()  # a fresh run starts a fresh log

    def after_epoch(epoch, logs, stats):
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:  # fit checks the training loss per step; weights can still overflow in the last one
            lr = model.optimizer.current_learning_rate()
            raise TrainingError(f"{' and '.join(bad)} became NaN or infinite in epoch {epoch + 1}: "
                                f"lower the learning rate (now {lr:g}, try {lr / 10:g})")
        if checkpoint:
            model.save(checkpoint)
        if metrics_path:
            row = {"epoch": epoch + 1, **{k: logs.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                   "time": stats["time"], "samples_per_sec": stats["samples_per_sec"]}
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    from ..training import TrainingInterrupted, evaluate

    if model.epoch >= epochs:
        say(f"nothing to train: the model has done {model.epoch} epoch(s) and --epochs is {epochs}")
        history = None
        final = {"val_" + k: v for k, v in evaluate(model, val_data, batch_size=max(batch_size, 256)).items()}
    else:
        try:
            history = model.fit(train_data, validation_data=(val_data, None), batch_size=batch_size, epochs=epochs,
                                verbose=0 if quiet else 1, callbacks=[after_epoch], log=out)
        except TrainingInterrupted as stop:
            _interrupted(ctx, model, stop, steps, checkpoint, dataset, data_dir, epochs, batch_size, device)
        final = {k: v[-1] for k, v in history.history.items()}

    result = summary(model, backend, history, final, dataset=dataset, batch_size=batch_size, checkpoint=checkpoint)
    for line in summary_lines(result, spec.title, len(y_test)):
        say(line)
    if plot:
        rows = read_metrics(metrics_path) if metrics_path else rows_from_history(history)
        save_plot(rows, plot, title=f"{model.name} on {spec.title}")
        say(f"plot: {plot}")
    if as_json:
        click.echo(json.dumps(result))


def _resume_batch_size(ctx, model, batch_size, resume):
    """Mid-epoch, the step count only means something at the batch size it was counted in."""
    from click.core import ParameterSource

    saved = model.metadata.get("batch_size")
    if saved is None:
        return batch_size
    if ctx.get_parameter_source("batch_size") is not ParameterSource.COMMANDLINE:
        return saved
    if batch_size != saved and model.step_in_epoch:
        raise GpupropError(f"{resume} stopped mid-epoch at batch size {saved}: resume with --batch-size {saved} "
                           "(or without --batch-size)")
    return batch_size


def _note_ignored(ctx, say):
    """Flags that a checkpoint overrides are noted, not silently dropped."""
    from click.core import ParameterSource

    fixed = [f"--{p.replace('_name', '').replace('_', '-')}" for p in ("model_name", "hidden", "optimizer", "lr", "seed")
             if ctx.get_parameter_source(p) is ParameterSource.COMMANDLINE]
    if fixed:
        say(f"note: {', '.join(fixed)} ignored with --resume: the checkpoint fixes the model, optimizer and seed")


def _interrupted(ctx, model, stop, steps, checkpoint, dataset, data_dir, epochs, batch_size, device):
    where = f"epoch {stop.epoch + 1} after step {stop.step}/{steps}"
    if not checkpoint:
        click.echo(f"interrupted in {where}; nothing saved (pass --checkpoint PATH to be able to resume)", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    if model.step_in_epoch >= steps:  # every step of the epoch ran: resume at the next one
        model.epoch, model.step_in_epoch = model.epoch + 1, 0
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
    click.echo(f"interrupted in {where}; saved to {checkpoint}; resume with: {shlex.join(cmd)}", err=True)
    ctx.exit(EXIT_INTERRUPTED)


# --- reporting ------------------------------------------------------------------------
def describe_optimizer(opt):
    name = type(opt).__name__.lower()
    if getattr(opt, "momentum", 0) and name == "sgd":
        name += f" with momentum {opt.momentum:g}"
    lr = opt.learning_rate
    return f"{name}, learning rate {lr:g}" if isinstance(lr, (int, float)) else f"{name}, {type(lr).__name__} schedule"


def position(model, steps):
    if model.step_in_epoch:
        return f"epoch {model.epoch + 1}, step {model.step_in_epoch}/{steps}"
    return f"the end of epoch {model.epoch}"


def steady_throughput(stats):
    """(samples/s over the epochs after the first, whether the first was left out); all epochs when only one."""
    used = stats[1:] if len(stats) >= 2 else stats
    seconds = sum(s["time"] for s in used)
    samples = sum(s["samples_per_sec"] * s["time"] for s in used)
    return (samples / seconds if seconds > 0 else None), len(stats) >= 2


def summary(model, backend, history, final, dataset, batch_size, checkpoint):
    """The run's outcome as plain JSON values (what --json prints)."""
    from ..zoo import describe

    stats = history.stats if history is not None else []
    speed, excluded = steady_throughput(stats) if stats else (None, False)
    opt = model.optimizer
    lr = opt.learning_rate
    return {
        "dataset": dataset, "model": model.name, "architecture": describe(model), "params": model.count_params(),
        "device": backend.spec, "device_description": backend.describe(), "device_reason": backend.reason,
        "optimizer": type(opt).__name__.lower(), "momentum": getattr(opt, "momentum", None),
        "learning_rate": lr if isinstance(lr, (int, float)) else None, "batch_size": batch_size, "seed": model.seed,
        "epochs": model.epoch, "epochs_run": len(stats),
        **{k: final.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
        "samples_per_sec": speed, "first_epoch_excluded": excluded,
        "train_time": sum(s["time"] for s in stats),
        "epoch_times": [s["time"] for s in stats], "epoch_samples_per_sec": [s["samples_per_sec"] for s in stats],
        "history": history.history if history is not None else {},
        "checkpoint": checkpoint,
    }


def summary_lines(s, title, n_test):
    lines = []
    if s["val_accuracy"] is not None:
        lines.append(f"final: val_accuracy {s['val_accuracy']:.4f} - val_loss {s['val_loss']:.4f} "
                     f"on the {title} test split ({n_test:,} images)")
    if s["samples_per_sec"] is not None:
        n = s["epochs_run"]
        which = (f"epochs 2-{n} of this run; epoch 1 left out as warm-up" if n > 2 else
                 "epoch 2 of this run; epoch 1 left out as warm-up" if n == 2 else "a single epoch, warm-up included")
        lines.append(f"throughput: {s['samples_per_sec']:,.0f} samples/s on {s['device']}, "
                     f"training steps only ({which})")
    if s["checkpoint"]:
        lines.append(f"checkpoint: {s['checkpoint']} ({s['epochs']} epoch(s) done)")
    return lines


def require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise GpupropError("--plot needs matplotlib, which is not installed: pip install 'gpuprop[plot]'") from None


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def rows_from_history(history):
    if history is None:
        return []
    return [{"epoch": e + 1, **{k: v[i] for k, v in history.history.items()}} for i, e in enumerate(history.epoch)]


def save_plot(rows, path, title):
    """Loss and accuracy per epoch, training and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "training"), ("val_", "validation (test split)")):
            values = [r.get(prefix + key) for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, "o-", label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
