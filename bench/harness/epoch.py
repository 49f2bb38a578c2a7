"""The ``epoch`` workload: one real epoch through the path ``gpuprop train`` uses.

60000 synthetic uint8 MNIST-shaped images go to the device once through
``DeviceDataset(model, x_uint8, y, scale=1/255)``; the figure is the wall time
of ``model.fit(dataset, epochs=1, batch_size=128, verbose=0)``, device-synced,
median over repeats (a short fit on 2048 samples warms up first). Right after
each epoch: as many of the same model's ``train_step`` calls on pre-gathered
batches, scaled to the epoch's 60000/128 = 468.75 full-batch equivalents (the
last batch holds 96). The median of the per-round differences is what the
loop costs on top of the steps: shuffling, gathering each batch on the
device, accumulating loss and accuracy.
"""

import math
import time

from gpuprop.training import DeviceDataset
from . import workloads
from .stats import median, relative_spread
from gpuprop.bench.peers import GpupropTrainer


def measure_epoch(workload, device, epoch_repeats=3):
    """A record dict (without the runner's common fields) for the epoch workload on ``device``."""
    model = workloads.build_gpuprop(workload, device, seed=0, metrics=["accuracy"])
    backend = model.backend
    x, y = workloads.epoch_data(workload)
    data = DeviceDataset(model, x, y, scale=1 / 255)
    warm = DeviceDataset(model, x[:2048], y[:2048], scale=1 / 255)
    model.fit(warm, epochs=1, batch_size=workload.batch, verbose=0, initial_epoch=0)
    steps = math.ceil(data.n / workload.batch)
    t = GpupropTrainer(workload, device)
    t.load(workloads.host_batches(workload))
    t.model = model  # same model, same weights layout: only the loop differs
    for _ in range(3):
        t.step()
    # Each round times an epoch and then as many bare steps, back to back, so the loop's cost
    # is a difference of two figures taken at the same moment of a noisy machine.
    times, per_step = [], []
    for _ in range(epoch_repeats):
        backend.synchronize()
        t0 = time.perf_counter()
        model.fit(data, epochs=1, batch_size=workload.batch, verbose=0, initial_epoch=0)
        backend.synchronize()
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(steps):
            t.step()
        t.sync()
        per_step.append((time.perf_counter() - t0) / steps)
    epoch_s = median(times)
    full_batches = data.n / workload.batch
    overheads = [e - s * full_batches for e, s in zip(times, per_step)]
    steps_sum_s = median(per_step) * full_batches
    return {
        "ms_per_step": epoch_s * 1000.0 / steps,
        "samples_per_s": data.n / epoch_s,
        "epoch_s": epoch_s,
        "epoch_repeat_s": times,
        "spread": relative_spread(times),
        "steps": steps,
        "step_ms": median(per_step) * 1000.0,
        "steps_sum_s": steps_sum_s,
        "loop_overhead_s": median(overheads),
        "loop_overhead_pct": 100.0 * median(overheads) / epoch_s,
        "note": "model.fit over DeviceDataset(60000 uint8, scale=1/255), metrics=['accuracy']",
    }
