"""Options and helpers the subcommands share: dataset, data folder, device, --json."""

import os
import re
import sys

import click

from ..errors import GpupropError

_DEVICE_RE = re.compile(r"^(auto|cpu|gpu|cuda|gpu-sim)(:\d+)?$")

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
    key = str(value).strip().lower().replace("gpu_sim", "gpu-sim")
    m = _DEVICE_RE.match(key)
    if not m or (m.group(2) and m.group(1) in ("auto", "cpu")):
        raise click.BadParameter(f"{value!r}: use auto, cpu, gpu, gpu:N or gpu-sim")
    return key


def dataset_option(default="mnist", help="Dataset: its test split is the validation data."):
    return click.option("--dataset", default=default, callback=_dataset_name, show_default=default is not None,
                        metavar="mnist|fashion-mnist", help=help)


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Folder with the four IDX files [default: $GPUPROP_DATA_DIR, the cache, /usr/share/datasets, "
         "else download].")
device_option = click.option("--device", default="auto", show_default=True, callback=_device_spec,
                             metavar="auto|cpu|gpu|gpu:N|gpu-sim",
                             help="Where to compute; auto takes the GPU when CuPy finds one. gpu-sim runs the "
                                  "GPU code on a CPU stand-in that counts host syncs (no speed, no CUDA).")
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
    try:
        train, test = module.load_data(data_dir=data_dir, progress=False if quiet else None)
    except GpupropError as exc:
        hint = _installed_instead(name, data_dir)
        if not hint:
            raise
        raise type(exc)(f"{exc}{hint}") from None
    try:  # only to tell the user where the files came from
        folder = str(next(iter(sources.locate(module.SPEC, data_dir=data_dir, download=False).values())).parent)
    except GpupropError:
        folder = None
    return module.SPEC, train, test, folder


def _installed_instead(name, data_dir):
    """'; or train on X, installed in DIR: add --dataset X' for each other dataset found on this machine."""
    from .. import datasets
    from ..datasets import sources

    if data_dir is not None or os.environ.get("GPUPROP_DATA_DIR"):
        return ""  # the user named the folder: other places are not looked at
    hints = []
    for other, module in datasets.DATASETS.items():
        if other == name:
            continue
        try:
            found = sources.locate(module.SPEC, download=False)
        except GpupropError:
            continue
        hints.append(f"; or use {module.SPEC.title}, installed in {next(iter(found.values())).parent}: "
                     f"add --dataset {other}")
    return "".join(hints)


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
