"""Summing an array across ranks, in place: MPI for host arrays, NCCL (or host MPI) for GPU arrays.

All ranks must call ``allreduce_sum_`` in the same order with arrays of the
same size and dtype. MPICH reduces every element in one fixed order and sends
the result to all ranks (recursive doubling, or reduce-scatter + allgather for
large buffers), so every rank receives bitwise the same sum: parameters that
start equal stay equal. The data-parallel checks (``parallel.verify``) would
catch a library that broke that.
"""


class HostMPI:
    """MPI on host arrays; device arrays are staged through a host copy (what to do without NCCL)."""

    name = "mpi"

    def __init__(self, world, backend):
        self.world, self.backend = world, backend
        self._in_place = world.MPI.IN_PLACE
        self._sum = world.MPI.SUM

    def allreduce_sum_(self, array):
        """Replace ``array`` by its sum over the ranks."""
        if not self.backend.is_gpu:
            self.world.comm.Allreduce(self._in_place, array, op=self._sum)
            return array
        host = self.backend.to_host(array).copy()
        self.world.comm.Allreduce(self._in_place, host, op=self._sum)
        array[...] = self.backend.asarray(host)
        return array


class NCCL:
    """NCCL through CuPy (``cupy.cuda.nccl``), one rank per GPU; its unique id travels over MPI.

    Not run on a GPU yet (see README, "Scaling out"): the calls follow CuPy's
    documented ``NcclCommunicator`` API and are kept to the few below.
    """

    name = "nccl"

    def __init__(self, world, backend, nccl):
        self.backend, self._nccl = backend, nccl
        uid = nccl.get_unique_id() if world.rank == 0 else None
        uid = world.bcast(uid)
        with backend.device:
            self.comm = nccl.NcclCommunicator(world.size, uid, world.rank)
        self._types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64, "float16": nccl.NCCL_FLOAT16}

    def allreduce_sum_(self, array):
        stream = self.backend.xp.cuda.get_current_stream()
        ptr = array.data.ptr
        self.comm.allReduce(ptr, ptr, array.size, self._types[str(array.dtype)], self._nccl.NCCL_SUM, stream.ptr)
        return array


def for_backend(world, backend):
    """NCCL when every rank has a GPU model and CuPy's NCCL, else MPI (staging GPU arrays through the host)."""
    nccl = backend.nccl()
    if all(world.allgather(nccl is not None)):
        return NCCL(world, backend, nccl)
    return HostMPI(world, backend)
