"""`gpuprop train`: fit a zoo model on MNIST or Fashion-MNIST, Keras-style output, resumable."""

import json
import math

import click
from click.core import ParameterSource
import numpy

from ..errors import GpupropError, TrainingError
from .errors import EXIT_INTERRUPTED, debug_option, debugging
from .options import check_input_shape, data_dir_option, dataset_option, device_option, ensure_parent, human_stream, \
    json_option, load_dataset
from .host_syncs import SyncCount
from .resume import checkpoint_dtype, interrupted, note_ignored, resume_batch_size, resume_dataset
from .report import describe_optimizer, position, read_metrics, require_matplotlib, rows_from_history, save_plot, \
    summary, summary_lines

# Keras' default learning rate of each optimizer; momentum is SGD(momentum=0.9).
LEARNING_RATES = {"sgd": 0.01, "momentum": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001}


def _hidden(ctx, param, value):
    from ..zoo import parse_hidden

    try:
        return parse_hidden(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


# --- the command ----------------------------------------------------------------------
@click.command()
@dataset_option(default=None, help="Dataset: its test split is the validation data [default: with --resume the "
                                   "checkpoint's, else mnist].")
@data_dir_option
@click.option("--model", "model_name", type=click.Choice(["softmax", "mlp", "cnn", "resnet"], case_sensitive=False),
              default="mlp", show_default=True,
              help="softmax regression, an MLP, Keras' MNIST convnet, or a small residual CNN (functional API).")
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
@click.option("--ranks", type=click.IntRange(min=1), default=None,
              help="Train data-parallel on N local MPI ranks (needs gpuprop[mpi]); --batch-size is then the global "
                   "batch. Under mpiexec the world size is used.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Float type of weights and activations (float64 for exactness checks); with --resume, the "
                   "checkpoint's unless given.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds initial weights, shuffling and dropout.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Save the model here (an .npz file) after every epoch (atomically) and on Ctrl-C.")
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
def train(ctx, dataset, data_dir, model_name, hidden, epochs, batch_size, lr, optimizer, device, ranks, dtype, seed,
          checkpoint, resume, metrics_path, plot, as_json, quiet):
    """Train a classifier on MNIST or Fashion-MNIST (Keras-style progress).

    \b
    Examples:
      gpuprop train --model softmax --optimizer sgd --lr 0.01 --batch-size 32
      gpuprop train --dataset fashion-mnist --model cnn --epochs 12 --checkpoint fm.npz
      gpuprop train --resume fm.npz --checkpoint fm.npz --epochs 20   # on fm.npz's dataset

    Ctrl-C stops after the current step; with --checkpoint the model is saved
    first, and --resume continues exactly where it stopped.

    --ranks N (or mpiexec -n N gpuprop train ...) trains on N ranks that each
    take 1/N of every batch; only rank 0 prints and writes files.
    """
    from .. import config, get_backend, load_model, optimizers, zoo
    from ..distributed import parallel_setup
    from ..training import DeviceDataset

    world, rank_device = parallel_setup(ctx, ranks, device)  # --ranks N: exits here once the N ranks are done
    rank0 = world.rank == 0
    quiet, as_json = quiet or not rank0, as_json and rank0
    if resume and ctx.get_parameter_source("dtype") is not ParameterSource.COMMANDLINE:
        dtype = checkpoint_dtype(resume) or dtype  # a float64 run resumes in float64 unless told otherwise
    config.set_floatx(dtype)
    out = human_stream(as_json)

    def say(msg):
        if not quiet:
            click.echo(msg, file=out)

    if not debugging(ctx):  # overflow warnings from NumPy would bury the one-line error
        ctx.with_resource(numpy.errstate(all="ignore"))
    if plot:
        require_matplotlib()
    for flag, path in (("--checkpoint", checkpoint), ("--resume", resume)):
        if path and not str(path).lower().endswith(".npz"):  # checked now, not after the first epoch
            raise GpupropError(f"{flag} {path}: training checkpoints are .npz files (only they hold the optimizer "
                               "state and the position in training): name it e.g. model.npz")
    for path in (checkpoint, metrics_path, plot) if rank0 else ():
        if path:
            ensure_parent(path)
    backend = get_backend(rank_device)
    say(f"device: {backend.describe()} - {backend.reason}")

    model = load_model(resume, device=backend) if resume else None
    if model is not None:
        dataset = resume_dataset(model, dataset, resume, say)
    dataset = dataset or "mnist"
    spec, (x_train, y_train), (x_test, y_test), folder = load_dataset(dataset, data_dir, quiet)
    say(f"data: {spec.title}, {len(x_train):,} training and {len(x_test):,} test images"
        + (f" from {folder}" if folder else "") + "; the test split is the validation data")

    if resume:
        if model.optimizer is None:
            raise GpupropError(f"{resume} holds no optimizer state (saved before compile); it cannot be resumed")
        note_ignored(ctx, say)
        check_input_shape(model, x_train, f"the model in {resume}")
        batch_size = resume_batch_size(ctx, model, batch_size, resume)
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
    if world.parallel:
        from ..distributed.launcher import describe as describe_ranks

        say(describe_ranks(world, batch_size))

    train_data = DeviceDataset(model, x_train, y_train, scale=1 / 255)
    val_data = DeviceDataset(model, x_test, y_test, scale=1 / 255)
    del x_train, x_test

    if metrics_path and not resume and rank0:
        open(metrics_path, "w").close()  # a fresh run starts a fresh log

    def after_epoch(epoch, logs, stats):
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:  # fit checks the training loss per step; weights can still overflow in the last one
            lr = model.optimizer.current_learning_rate()
            raise TrainingError(f"{' and '.join(bad)} became NaN or infinite in epoch {epoch + 1}: "
                                f"lower the learning rate (now {lr:g}, try {lr / 10:g})")
        if checkpoint and rank0:
            model.save(checkpoint)
        if metrics_path and rank0:
            row = {"epoch": epoch + 1, **{k: logs.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                   "time": stats["time"], "samples_per_sec": stats["samples_per_sec"]}
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    from ..training import TrainingInterrupted, evaluate

    syncs = SyncCount(model, backend)
    if model.epoch >= epochs:
        say(f"nothing to train: the model has done {model.epoch} epoch(s) and --epochs is {epochs}")
        history = None
        final = {"val_" + k: v for k, v in evaluate(model, val_data, batch_size=max(batch_size, 256)).items()}
    else:
        try:
            # --epochs is the total, as Keras' initial_epoch makes it: continue from the epochs already done
            with syncs.around_fit():
                history = model.fit(train_data, validation_data=(val_data, None), batch_size=batch_size,
                                    epochs=epochs, initial_epoch=model.epoch, verbose=0 if quiet else 1,
                                    callbacks=[after_epoch], log=out)
        except TrainingInterrupted as stop:
            if not rank0:
                ctx.exit(EXIT_INTERRUPTED)  # rank 0 saves and says so
            interrupted(ctx, model, stop, steps, checkpoint, dataset, data_dir, epochs, batch_size, device,
                         ["--ranks", str(world.size)] * world.parallel + ["--dtype", dtype] * (dtype != "float32"))
        final = {k: v[-1] for k, v in history.history.items()}

    result = summary(model, backend, history, final, dataset=dataset, batch_size=batch_size, checkpoint=checkpoint)
    result.update(syncs.report())
    for line in summary_lines(result, spec.title, len(y_test)):
        say(line)
    if result["host_syncs_per_step"] is not None:
        say(f"host syncs: {result['host_syncs_per_step']:g} per training step, "
            f"{result['host_syncs_per_epoch']:g} per epoch outside the steps ({backend.spec} counts them)")
    if plot and rank0:
        rows = read_metrics(metrics_path) if metrics_path else rows_from_history(history)
        save_plot(rows, plot, title=f"{model.name} on {spec.title}")
        say(f"plot: {plot}")
    if as_json:
        click.echo(json.dumps(result))


# --- reporting ------------------------------------------------------------------------
