"""``gpuprop bench``: training-step speed on each device beside PyTorch and JAX, on standard workloads.

Every framework trains the same model (``workloads``: one layer spec, built
by each; gpuprop's initial weights copied into the peers; same batch, loss,
optimizer, float32) on synthetic MNIST-shaped batches already on the device,
so data loading is not timed. Each (device, framework) runs in a fresh
process (``run``) so thread and memory pools of different frameworks never
meet. A figure is the median over repeats of K device-synchronised steps
after an untimed warm-up. The research harness (paired rounds, ceilings,
memory, scaling, profiles) is ``bench/`` in the source tree, not installed.
"""
