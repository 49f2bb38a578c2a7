"""`gpuprop gradcheck`: every layer and loss against float64 central differences, as a table."""

import json

import click
import numpy

from .errors import debug_option
from .options import device_option, json_option


# --- gradcheck ----------------------------------------------------------------------------
def _layer_cases():
    """(name, factory, input shape) for every layer type this build has; the conv family only when present."""
    from .. import layers
    from ..layers.activation import names as activation_names

    cases = [(f"Dense({a})", lambda a=a: layers.Dense(4, activation=a), (3, 5)) for a in activation_names()]
    cases += [("Flatten", lambda: layers.Flatten(), (2, 3, 4)),
              ("Reshape", lambda: layers.Reshape((4, 3)), (2, 3, 4)),
              ("Dropout(0.5)", lambda: layers.Dropout(0.5, seed=1), (4, 6))]
    optional = [("Conv2D(valid)", "Conv2D", dict(filters=3, kernel_size=3), (2, 6, 6, 2)),
                ("Conv2D(same)", "Conv2D", dict(filters=3, kernel_size=3, padding="same"), (2, 6, 6, 2)),
                ("Conv2D(stride 2)", "Conv2D", dict(filters=3, kernel_size=3, strides=2), (2, 7, 7, 2)),
                ("MaxPooling2D", "MaxPooling2D", dict(pool_size=2), (2, 6, 6, 2)),
                ("AveragePooling2D", "AveragePooling2D", dict(pool_size=2), (2, 6, 6, 2)),
                ("BatchNormalization", "BatchNormalization", {}, (8, 5))]
    for name, cls_name, kwargs, shape in optional:
        cls = getattr(layers, cls_name, None)
        if cls is not None:
            cases.append((name, lambda cls=cls, kw=kwargs: cls(**kw), shape))
    return cases


def _loss_cases(rng):
    """(name, loss class, y_true, y_pred, from_logits) for every loss, in each form it has."""
    from .. import losses

    classes = [c for c in vars(losses).values()
               if isinstance(c, type) and issubclass(c, losses.Loss) and c is not losses.Loss]
    for cls in classes:
        for logits in (False, True) if cls.fuses_with else (False,):
            z = rng.standard_normal((4, 5))
            if cls.name == "sparse_categorical_crossentropy":
                y = rng.integers(0, 5, 4)
            elif cls.name == "categorical_crossentropy":
                y = numpy.eye(5)[rng.integers(0, 5, 4)]
            elif cls.name == "binary_crossentropy":
                y = rng.integers(0, 2, (4, 5)).astype(numpy.float64)
            else:
                y = rng.standard_normal((4, 5))
            if not logits and cls.fuses_with == "softmax":
                z = numpy.exp(z) / numpy.exp(z).sum(axis=1, keepdims=True)
            elif not logits and cls.fuses_with == "sigmoid":
                z = rng.uniform(0.1, 0.9, z.shape)
            yield cls.name + (" (from logits)" if logits else ""), cls, y, z, logits


def run_gradchecks(backend, seed=0):
    """One row per layer and loss: {'name', 'error' (max relative error, None when it failed to run), ...}."""
    from .. import config
    from ..gradcheck import check_layer, check_loss

    rng = numpy.random.default_rng(seed)
    old = config.floatx()
    config.set_floatx("float64")
    rows = []
    try:
        jobs = [(name, lambda f=factory, s=shape: check_layer(f(), rng.standard_normal(s), backend=backend))
                for name, factory, shape in _layer_cases()]
        jobs += [(name, lambda c=cls, y=y, z=z, lg=lg: check_loss(c(), y, z, backend=backend, from_logits=lg))
                 for name, cls, y, z, lg in _loss_cases(rng)]
        for name, job in jobs:
            try:
                errors = job()
                worst = max(errors, key=errors.get)
                rows.append({"name": name, "error": errors[worst], "worst": worst, "errors": errors})
            except Exception as exc:  # noqa: BLE001 - a layer that cannot even run fails its row
                rows.append({"name": name, "error": None, "problem": f"{type(exc).__name__}: {exc}"})
    finally:
        config.set_floatx(old)
    return rows


@click.command()
@device_option
@click.option("--tolerance", type=float, default=1e-6, show_default=True, help="Largest relative error that passes.")
@json_option
@debug_option
@click.pass_context
def gradcheck(ctx, device, tolerance, as_json):
    """Check every layer's and loss's backward against float64 central differences."""
    from .. import get_backend

    backend = get_backend(device)
    rows = run_gradchecks(backend)
    failed = [r for r in rows if r["error"] is None or r["error"] > tolerance]
    if as_json:
        click.echo(json.dumps({"device": backend.spec, "tolerance": tolerance, "checks": rows,
                               "failed": len(failed)}))
    else:
        width = max(len(r["name"]) for r in rows)
        click.echo(f"{'check'.ljust(width)}  max rel. error  result")
        for r in rows:
            err = f"{r['error']:.2e}" if r["error"] is not None else "-"
            verdict = "pass" if r not in failed else "FAIL" + (f" ({r['problem']})" if r.get("problem") else "")
            click.echo(f"{r['name'].ljust(width)}  {err:<14}  {verdict}")
        click.echo(f"{len(rows) - len(failed)} of {len(rows)} checks pass at {tolerance:g} "
                   f"(float64 on {backend.describe()})")
    if failed:
        click.echo(f"error: {len(failed)} of {len(rows)} gradient checks failed at {tolerance:g}", err=True)
        ctx.exit(1)
