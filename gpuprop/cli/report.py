"""What `gpuprop train` reports at the end: summary lines, --json fields, --metrics rows, --plot."""

import json


from ..errors import GpupropError

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
