"""Data-parallel training across processes and machines on MPI (mpi4py), NCCL between GPUs.

``world()`` tells a process its rank, the world size, its rank on this machine
and the communicator; ``fit`` trains data-parallel whenever the world holds
more than one rank (``mpiexec -n N python script.py``, or ``gpuprop train
--ranks N``). See README, "Scaling out".
"""

from .parallel import DataParallel, active
from .world import INSTALL_HINT, World, launched_by_mpi, world

__all__ = ["DataParallel", "INSTALL_HINT", "World", "active", "launched_by_mpi", "world", "size", "rank",
           "local_rank", "comm"]


def size():
    """Ranks in the job (1 without MPI)."""
    return world().size


def rank():
    """This process's rank, 0 .. size-1."""
    return world().rank


def local_rank():
    """This process's rank among those on its machine (its GPU, with one rank per GPU)."""
    return world().local_rank


def comm():
    """mpi4py's COMM_WORLD, or None in a world of one."""
    return world().comm


def parallel_setup(ctx, ranks, device):
    """See ``launcher.parallel_setup`` (imported late: the launcher is only for the CLI)."""
    from .launcher import parallel_setup as setup

    return setup(ctx, ranks, device)
