"""`gpuprop evaluate`, `predict` and `info` (`gradcheck` lives in its own module)."""

import json
import os
import platform

import click
import numpy

from ..errors import GpupropError
from .errors import debug_option
from .options import check_input_shape, data_dir_option, dataset_option, device_option, human_stream, json_option, \
    load_dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@dataset_option(default=None, help="Dataset whose test split to use [default: the one the checkpoint was trained on, "
                                   "else mnist].")
@data_dir_option
@device_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@json_option
@debug_option
def evaluate(checkpoint, dataset, data_dir, device, batch_size, as_json):
    """Loss and accuracy of a checkpoint on a dataset's test split."""
    from .. import get_backend, load_model, training

    out = human_stream(as_json)
    backend = get_backend(device)
    model = load_model(checkpoint, device=backend)
    if model.loss is None:  # saved before compile: the zoo's loss is the only sensible guess
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    dataset = dataset or model.metadata.get("dataset", "mnist")
    spec, _, (x_test, y_test), _ = load_dataset(dataset, data_dir, quiet=as_json)
    check_input_shape(model, x_test, f"the model in {checkpoint}")
    data = training.DeviceDataset(model, x_test, y_test, scale=1 / 255)
    logs = training.evaluate(model, data, batch_size=batch_size)
    result = {"checkpoint": checkpoint, "dataset": dataset, "split": "test", "samples": data.n,
              "device": backend.spec, "epochs": model.epoch, **logs}
    click.echo(f"device: {backend.describe()} - {backend.reason}", file=out)
    click.echo(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
               + f"  ({spec.title} test split, {data.n:,} images; {model.name} after {model.epoch} epoch(s))", file=out)
    if as_json:
        click.echo(json.dumps(result))


# --- predict ------------------------------------------------------------------------------
def _read_image(path, invert):
    try:
        from PIL import Image
    except ImportError:
        raise GpupropError(f"reading {path} needs Pillow, which is not installed: pip install 'gpuprop[images]' "
                           "(or pass .npy arrays)") from None
    try:
        with Image.open(path) as img:
            gray = img.convert("L")
            if gray.size != (28, 28):
                gray = gray.resize((28, 28), getattr(Image, "Resampling", Image).LANCZOS)
            pixels = numpy.asarray(gray, dtype=numpy.uint8)
    except OSError as exc:
        raise GpupropError(f"{path} is not a readable image ({exc})") from None
    return 255 - pixels if invert else pixels


def _read_inputs(path, shape, invert):
    """(images as float in [0, 1], one name per image) from a .npy file or an image file."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        try:
            arr = numpy.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise GpupropError(f"{path} is not a readable .npy array ({str(exc).splitlines()[0]})") from None
        if invert and arr.dtype.kind in "ub":
            arr = 255 - arr.astype(numpy.int64)
    elif suffix in IMAGE_SUFFIXES:
        arr = _read_image(path, invert)
    else:
        raise GpupropError(f"{path}: expected a .npy array or an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if tuple(arr.shape) == shape:
        arr, names = arr[None], [path]
    elif tuple(arr.shape[1:]) == shape:
        names = [f"{path}[{i}]" for i in range(arr.shape[0])]
    else:
        want = "x".join(map(str, shape))
        raise GpupropError(f"{path} has shape {tuple(arr.shape)}; the model takes {want} images, "
                           f"one ({want}) or a stack (N, {want.replace('x', ', ')})")
    if arr.dtype.kind in "iub":  # pixels 0..255, scaled as in training
        arr = arr.astype(numpy.float32) / 255.0
    elif arr.dtype.kind != "f":
        raise GpupropError(f"{path} holds {arr.dtype} values; expected uint8 pixels or floats in [0, 1]")
    return arr, names


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@device_option
@dataset_option(default=None, help="Name the classes after this dataset's labels (Fashion-MNIST: Sneaker, Bag, ...) "
                                   "[default: the one the checkpoint was trained on].")
@click.option("--invert", is_flag=True, help="Invert pixels (for dark strokes on a light background).")
@json_option
@debug_option
def predict(checkpoint, files, device, dataset, invert, as_json):
    """Predicted class and probability for each image in FILES.

    FILES are .npy arrays of shape (28, 28) or (N, 28, 28), uint8 pixels or
    floats in [0, 1], or image files (needs Pillow), made grayscale and
    resized to 28x28. uint8 pixels are divided by 255, as in training.
    """
    from .. import datasets, get_backend, load_model

    out = human_stream(as_json)
    backend = get_backend(device)
    model = load_model(checkpoint, device=backend, compile=False)
    dataset = dataset or model.metadata.get("dataset")  # as evaluate: the checkpoint knows its data
    class_names = datasets.get(dataset).SPEC.class_names if dataset else None
    shape = tuple(model.layers[0].input_shape)
    results = []
    for path in files:
        x, names = _read_inputs(path, shape, invert)
        if x.size and float(numpy.nanmax(x)) > 1.5:
            click.echo(f"note: {path} holds values up to {float(numpy.nanmax(x)):g}, but the model was trained on "
                       "pixels in [0, 1]: save uint8 pixels or divide by 255", err=True)
        probs = model.predict(x, batch_size=256, verbose=0)
        for name, p in zip(names, probs):
            k = int(numpy.argmax(p))
            row = {"input": name, "class": k, "probability": float(p[k]), "probabilities": [float(v) for v in p]}
            if class_names and k < len(class_names):
                row["label"] = class_names[k]
            results.append(row)
            label = f" {row['label']}" if "label" in row else ""
            click.echo(f"{name}: {k}{label} (p={row['probability']:.3f})", file=out)
    if as_json:
        click.echo(json.dumps({"checkpoint": checkpoint, "device": backend.spec, "predictions": results}))


# --- info ---------------------------------------------------------------------------------
def _dist_version(*names):
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cupy_version():
    from importlib import metadata

    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name == "cupy" or name.startswith("cupy-cuda") or name.startswith("cupy-rocm"):
            return f"{dist.version} ({name})"
    return None


def _blas():
    try:
        deps = numpy.show_config(mode="dicts")["Build Dependencies"]
        blas = deps["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - NumPy < 1.26 has no mode='dicts'
        return "unknown"


def _gpu_rows(backend):
    rows = [("GPU", backend.describe())]
    mem = backend.memory_info()
    if mem:
        rows.append(("GPU memory", f"{mem['used'] / 2**30:.1f} GiB used of {mem['total'] / 2**30:.1f} GiB"))
    try:
        rows.extend(backend.runtime_versions().items())
    except Exception:  # noqa: BLE001 - a ROCm build or an older CuPy may lack these
        pass
    return rows


@click.command()
@json_option
@debug_option
def info(as_json):
    """Versions, devices and the BLAS in use (paste this into bug reports)."""
    import gpuprop
    from ..backend import available_backends, get_backend
    from ..errors import BackendError

    rows = [("gpuprop", gpuprop.__version__),
            ("Python", f"{platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}"),
            ("NumPy", numpy.__version__), ("BLAS", _blas()),
            ("CuPy", _cupy_version() or "not installed"), ("click", _dist_version("click") or "unknown"),
            ("matplotlib", _dist_version("matplotlib") or "not installed (needed by train --plot)"),
            ("Pillow", _dist_version("pillow", "Pillow") or "not installed (needed by predict on image files)"),
            ("CPUs", str(os.cpu_count())), ("backends", ", ".join(available_backends()))]
    try:
        rows += _gpu_rows(get_backend("gpu"))
    except BackendError as exc:
        rows.append(("GPU", f"none: {exc}"))
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            rows.append(("thread pool", f"{pool.get('internal_api')} {pool.get('version') or ''} "
                                        f"{pool.get('num_threads')} threads ({pool.get('filepath')})"))
    except ImportError:
        rows.append(("thread pool", "threadpoolctl not installed"))
    if as_json:
        merged = {}
        for k, v in rows:
            merged[k] = v if k not in merged else (merged[k] if isinstance(merged[k], list) else [merged[k]]) + [v]
        click.echo(json.dumps(merged))
        return
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k.ljust(width)}  {v}")


from .gradcheck import gradcheck  # noqa: E402,F401  (re-exported: the group registers it from here)
