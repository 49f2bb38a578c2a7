"""The research benchmark harness (``python bench/run.py``; development tool, not installed).

Built on the installed ``gpuprop.bench``: its workloads (models, FLOPs,
batches, initial weights), its timing method, its peer selection and its
trainers are reused as they are; the harness adds what a user's
``gpuprop bench`` does not need.

Method in one paragraph: every framework trains the *same* workload (layer
spec in ``workloads``; gpuprop's Glorot-uniform initial weights copied into
the peers; same batch, loss and optimizer; float32) on synthetic MNIST-shaped
batches already resident on the device, so data loading is not measured.
Each framework runs in its own worker process, a fresh one per workload, so
thread pools and memory pools of different frameworks (and the history of
earlier workloads) never interfere. A figure is the median over repeats of K
device-synchronised steps after an untimed warm-up (``timing``); step
workloads are timed in turns, one repeat of each framework after the other
(``paired``), and a peer's ratio is the median of the per-round ratios. Achieved GFLOP/s counts the step's matrix
products analytically (``workloads.flops_per_step``) and is compared with an
sgemm ceiling measured in the same run (``ceiling``). CPU figures disturbed
by other processes are flagged and measured again (``machine.OtherLoad``).

Modules: workloads, timing, stats, ceiling, worker, paired, runner, derived,
selection, epoch, memory, machine, report, scaling, profile, cli; the
trainers (gpuprop, torch, torch-compile, jax) are ``gpuprop.bench.peers``.
"""
