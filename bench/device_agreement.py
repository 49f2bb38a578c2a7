"""Train every zoo model a few steps in float64 on two devices from the same weights and batches; compare.

    python bench/device_agreement.py [--devices gpu,gpu-sim] [--steps 4] [--rtol 1e-9]

Both devices start from the same initial weights (drawn on the host) and take the
same batches (drawn on the host, no shuffling), so the weights after the last step
may differ only by rounding: cuBLAS and NumPy sum in different orders, which in
float64 is ~1e-15 per operation. One line per model and optimizer: the largest
difference relative to each weight's scale, and on gpu-sim the host syncs per
step. Exit 1 when any pair differs by more than --rtol. bench/gpu_check.sh runs it
with gpu against gpu-sim; without a GPU, cpu against gpu-sim checks the plumbing.
"""

import argparse
import os
import sys

import numpy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpuprop import config, get_backend, optimizers, zoo  # noqa: E402
from gpuprop.models.network import cast_input  # noqa: E402

OPTIMIZERS = {"sgd": 0.05, "momentum": 0.05, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01}  # name: learning rate


def run(device, model_name, opt_name, steps, batch=16, seed=0):
    """Weights (host) after ``steps`` train_steps, and host syncs per step where the device counts them."""
    backend = get_backend(device)
    model = zoo.build(model_name, hidden=(32,), device=backend, seed=seed)
    model.compile(optimizers.get(opt_name, learning_rate=OPTIMIZERS[opt_name]), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.build()
    rng = numpy.random.default_rng(seed)
    batches = [(rng.random((batch, *zoo.INPUT_SHAPE)), rng.integers(0, zoo.NUM_CLASSES, batch))
               for _ in range(steps)]
    count = getattr(backend, "host_syncs", lambda: None)
    syncs = 0
    for x, y in batches:
        xb, yb = cast_input(backend, x), backend.asarray(y, dtype="int64")
        before = count()
        model.train_step(xb, yb)
        if before is not None:
            syncs += count() - before
    return model.get_weights(), (syncs / steps if count() is not None else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="gpu,gpu-sim", help="two devices, comma-separated")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rtol", type=float, default=1e-9)
    args = ap.parse_args(argv)
    a, b = [d.strip() for d in args.devices.split(",")]
    config.set_floatx("float64")
    worst_all = 0.0
    for model_name in zoo.MODELS:
        for opt_name in OPTIMIZERS:
            wa, sa = run(a, model_name, opt_name, args.steps)
            wb, sb = run(b, model_name, opt_name, args.steps)
            worst = max(float(numpy.abs(x - y).max() / max(numpy.abs(y).max(), 1e-300)) for x, y in zip(wa, wb))
            worst_all = max(worst_all, worst)
            syncs = ", ".join(f"{d} {s:g} host syncs/step" for d, s in ((a, sa), (b, sb)) if s is not None)
            flag = "ok" if worst <= args.rtol else "DIFFERS"
            print(f"{model_name:8s} {opt_name:9s} max |{a} − {b}| / scale = {worst:.2e}  {flag}"
                  + (f"  ({syncs})" if syncs else ""))
    ok = worst_all <= args.rtol
    print(f"{'agree' if ok else 'DISAGREE'}: {a} and {b}, float64, worst {worst_all:.2e} (limit {args.rtol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
