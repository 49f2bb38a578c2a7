"""Who am I in the job: world size, rank, local rank and the MPI communicator.

A process started by ``mpiexec`` (MPICH's hydra, Open MPI, PMIx launchers)
finds the launcher's variables in its environment and joins the MPI world
through mpi4py; any other process is a world of one and never imports mpi4py.
Joining a world larger than one installs an exception hook that prints the
rank and the cause on one line and aborts the world: MPI leaves the other
ranks blocked in their next collective otherwise (ChainerMN does the same).
"""

import os
import sys
import time

from ..errors import GpupropError

# Set by the launchers we know of in every process they start.
_LAUNCHER_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
INSTALL_HINT = "pip install 'gpuprop[mpi]' (mpi4py and the mpich wheel)"

_WORLD = None


class World:
    """``size`` ranks in all, this one ``rank``; ``local_rank`` of ``local_size`` on this machine.

    ``machines`` counts the hosts; ``comm`` is mpi4py's COMM_WORLD (None in a world of one); ``MPI`` its module.
    """

    def __init__(self, comm=None, MPI=None):
        self.comm, self.MPI = comm, MPI
        if comm is None:
            self.size, self.rank, self.local_rank, self.local_size, self.machines = 1, 0, 0, 1, 1
            return
        self.size, self.rank = comm.Get_size(), comm.Get_rank()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks that share this machine's memory
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.machines = len(set(comm.allgather(MPI.Get_processor_name())))

    @property
    def parallel(self):
        return self.size > 1

    def __repr__(self):
        return f"World(rank {self.rank} of {self.size}, local rank {self.local_rank} of {self.local_size})"

    # --- small collectives on host values (setup, checks, decisions) --------------------------
    def allgather(self, value):
        return [value] if self.comm is None else self.comm.allgather(value)

    def bcast(self, value, root=0):
        return value if self.comm is None else self.comm.bcast(value, root=root)

    def any(self, flag):
        """True on every rank when ``flag`` is true on any rank."""
        if self.comm is None:
            return bool(flag)
        return bool(self.comm.allreduce(bool(flag), op=self.MPI.LOR))

    def raise_once(self, error):
        """Raise ``error`` on rank 0 alone (one line for the user); the others wait for its abort."""
        if self.rank == 0:
            raise error
        self.comm.Barrier()  # rank 0 never arrives: its error handler aborts the world

    def abort(self, code=1):
        """End every rank of the job now (a no-op in a world of one)."""
        if self.comm is not None and self.size > 1:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - a closed pipe must not stop the abort
                    pass
            # MPICH's process manager forwards output asynchronously and drops what it has not yet read
            # when the abort kills the job: give it a moment to pass on the line just printed.
            time.sleep(0.5)
            self.comm.Abort(code)


def launched_by_mpi(environ=os.environ):
    """True when an MPI launcher started this process."""
    return any(name in environ for name in _LAUNCHER_VARS)


def world():
    """This process's World, created on the first call (joining MPI when a launcher started us)."""
    global _WORLD
    if _WORLD is None:
        if not launched_by_mpi() and "mpi4py.MPI" not in sys.modules:
            _WORLD = World()
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise GpupropError(f"this process was started by mpiexec but mpi4py is not installed: "
                                   f"{INSTALL_HINT}") from None
            _WORLD = World(MPI.COMM_WORLD, MPI)
            if _WORLD.parallel:
                _install_excepthook(_WORLD)
    return _WORLD


def prefix():
    """'rank R: ' in a world of several ranks (for error lines), '' otherwise."""
    w = _WORLD
    return f"rank {w.rank}: " if w is not None and w.parallel else ""


def abort_if_parallel(code=1):
    """Stop the other ranks (called after this rank has printed why it fails)."""
    if _WORLD is not None and _WORLD.parallel:
        _WORLD.abort(code)


def explain(exc):
    """One line for an MPI error, else None: mpi4py raises one in the survivors' next collective when a rank dies."""
    if type(exc).__module__.split(".")[0] != "mpi4py":
        return None
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kind = lines[0].split(",")[0] if lines else "MPI error"  # MPICH's error stack below it is cut at 1 KB
    return f"an MPI call failed ({kind}): another rank has most likely died; the job is stopped"


def _install_excepthook(w):
    previous = sys.excepthook

    def hook(kind, exc, tb):
        if issubclass(kind, KeyboardInterrupt):
            print(f"rank {w.rank}: interrupted", file=sys.stderr)
        elif os.environ.get("GPUPROP_DEBUG"):
            previous(kind, exc, tb)
        else:
            print(f"error: rank {w.rank}: {explain(exc) or f'{kind.__name__}: {exc}'}", file=sys.stderr)
        w.abort(130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = hook
