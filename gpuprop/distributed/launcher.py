"""``gpuprop train --ranks N``: start N local ranks through the mpiexec of the mpich wheel.

The launcher re-runs the same command line without ``--ranks`` under
``mpiexec -n N``, with each rank's BLAS given cores ÷ N threads (N ranks each
running a BLAS with every core's worth of threads are several times slower).
mpiexec runs in its own process group so that a terminal's Ctrl-C reaches it
once, through us: it forwards SIGINT to every rank, and the ranks agree on the
step to stop after. MPICH's own notices (the forwarded Ctrl-C, MPI_Abort's
line, the "BAD TERMINATION" banner) are dropped from the ranks' output: the failing rank
has already printed its one line, and a rank killed by a signal is reported
here in one line instead.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading

from ..errors import GpupropError
from .world import INSTALL_HINT, launched_by_mpi

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
EXPECTED_VAR = "GPUPROP_RANKS"  # the launcher tells the ranks how many they should be
_NOISE = re.compile(r"^(\[mpiexec@|\[proxy:|Abort\(\d+\) on node|=+$|=   |YOUR APPLICATION TERMINATED|"
                    r"This typically refers|Please see the FAQ|[A-Za-z_]\w*\(\d+\)\.*:|Fatal error in )")
_LOST_PEER = re.compile(r"error: rank \d+: an MPI call failed ")
_SIGNAL = re.compile(r"EXIT STRING: (.*) \(signal (\d+)\)")


def cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def check_ranks(n, gpus):
    """Raise unless ``n`` local ranks fit this machine: one core each, or one GPU each when training on GPUs."""
    try:
        import mpi4py  # noqa: F401 - the package alone: MPI itself starts in the ranks
    except ImportError:
        raise GpupropError(f"--ranks {n} needs mpi4py, which is not installed: {INSTALL_HINT}") from None
    if gpus:
        if n > gpus:
            raise GpupropError(f"--ranks {n} is more than the {gpus} GPU(s) here (one rank per GPU): use --ranks "
                               f"{gpus} or fewer, or mpiexec with a hostfile to add machines")
    elif n > cores():
        raise GpupropError(f"--ranks {n} is more than the {cores()} CPU core(s) here (each rank needs one): use "
                           f"--ranks {cores()} or fewer, or mpiexec with a hostfile to add machines")


def find_mpiexec():
    """The mpiexec beside this Python (where the mpich wheel installs it), else the one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.access(here, os.X_OK) else shutil.which("mpiexec")
    if not found:
        raise GpupropError(f"--ranks needs an mpiexec and none was found beside {sys.executable} or on PATH: "
                           f"{INSTALL_HINT}")
    return found


def strip_ranks(argv):
    """``argv`` without its ``--ranks N`` / ``--ranks=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--ranks":
            skip = True
        elif not arg.startswith("--ranks="):
            out.append(arg)
    return out


def rank_environment(n, environ=os.environ):
    """The environment of each rank: BLAS threads = cores ÷ ranks unless the user chose them."""
    env = dict(environ)
    threads = str(max(1, cores() // n))
    for var in THREAD_VARS:
        env.setdefault(var, threads)
    env[EXPECTED_VAR] = str(n)
    return env


def parallel_setup(ctx, ranks, device):
    """For ``gpuprop train``: (world, device of this rank); with ``--ranks N`` outside MPI, run N ranks and exit."""
    from .world import world as get_world

    if ranks is not None and ranks > 1 and not launched_by_mpi():
        check_ranks(ranks, _gpus(device))
        ctx.exit(launch(ranks, sys.argv[1:]))
    w = get_world()
    expected = os.environ.get(EXPECTED_VAR) if launched_by_mpi() else None
    want = ranks or (int(expected) if expected else None)
    if want is not None and want != w.size:
        w.raise_once(GpupropError(f"--ranks {want} but mpiexec started {w.size} rank(s): give mpiexec -n {want}, "
                                  "or leave --ranks out under mpiexec"))
    return w, rank_device(device, w)


def describe(w, batch_size):
    """The line ``gpuprop train`` prints about the ranks."""
    library = " ".join(w.MPI.Get_library_version().split("\n")[0].replace("Version:", "").split()[:2])
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    return (f"ranks: {w.size} on {w.machines} machine(s), {library}, OMP_NUM_THREADS {threads}; "
            f"batch size {batch_size} = {w.size} × {batch_size // w.size} per rank")


def rank_device(device, w):
    """One GPU per rank: 'auto' and 'gpu' become gpu:<local rank> when several ranks share a machine."""
    if w.parallel and device == "gpu-sim":  # the stand-in's simulated GPUs, one per rank while they last
        from ..backend import sim

        return f"gpu-sim:{w.local_rank}" if w.local_rank < sim.DEVICE_COUNT else device
    if not w.parallel or device not in ("auto", "gpu", "cuda"):
        return device
    from ..backend import get_backend

    return f"gpu:{w.local_rank}" if get_backend(device).is_gpu else device


def _gpus(device):
    """GPUs the ranks would train on (0 when they would train on the CPU)."""
    if device == "cpu":
        return 0
    from ..backend import get_backend

    backend = get_backend(device)
    return backend.xp.cuda.runtime.getDeviceCount() if backend.is_gpu else 0


def launch(n, argv):
    """Run ``python -m gpuprop <argv>`` as ``n`` MPI ranks; return the exit code to exit with."""
    if launched_by_mpi():
        raise GpupropError("--ranks starts its own mpiexec: under mpiexec, leave --ranks out")
    cmd = [find_mpiexec(), "-n", str(n), sys.executable, "-m", "gpuprop", *strip_ranks(argv)]
    proc = subprocess.Popen(cmd, env=rank_environment(n), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            process_group=0)
    killed, said = [], {"error": False, "dropped": [], "lost": []}
    pumps = [threading.Thread(target=_filter, args=(pipe, dest, killed, said), daemon=True)
             for pipe, dest in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
    for pump in pumps:
        pump.start()
    old = signal.signal(signal.SIGINT, lambda *_: proc.send_signal(signal.SIGINT))
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
    for pump in pumps:  # the pipes close when mpiexec's last process does; a loaded machine can be slow
        pump.join(timeout=30)
    if killed:  # the survivors' "an MPI call failed" lines are this, seen from the other side
        name, number = killed[0]
        sys.stderr.write(f"error: a rank was killed by signal {number} ({name}); mpiexec stopped the others\n")
        return 128 + int(number)
    sys.stderr.writelines(said["lost"])
    if code not in (0, 130) and not said["error"] and not said["lost"]:
        if code > 128:  # a rank ended by a signal and mpiexec said no more (it can exit before its banner)
            sys.stderr.write(f"error: a rank ended by signal {code - 128} ({_signal_name(code - 128)}); mpiexec "
                             "stopped the job\n")
        else:  # mpiexec itself failed: its own words, first line
            why = next((line for line in said["dropped"] if line.startswith("[mpiexec@")), "no message")
            sys.stderr.write(f"error: mpiexec exited with code {code}: {why}\n")
    return code


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _filter(pipe, dest, killed, said=None):
    """Copy the ranks' output to ``dest``, dropping MPICH's notices; progress bars ('\\r') pass at once."""
    fd, pending, state = pipe.fileno(), b"", {"said": said if said is not None else {"error": False, "dropped": [], "lost": []}}
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        pieces = re.split(rb"(?<=[\r\n])", pending)
        pending = pieces.pop()  # an unfinished line waits for its end
        for piece in pieces:
            _emit(piece.decode("utf-8", "replace"), dest, killed, state)
    if pending:
        _emit(pending.decode("utf-8", "replace"), dest, killed, state)


def _emit(text, dest, killed, state):
    """Write ``text`` unless it is MPICH's; blank lines wait to see whether a banner follows them."""
    found = _SIGNAL.search(text)
    if found:
        killed.append(found.groups())
    if not text.strip():
        state["blank"] = state.get("blank", "") + text
        return
    held, state["blank"] = state.get("blank", ""), ""
    said = state["said"]
    if _NOISE.match(text.strip()):
        said["dropped"].append(text.strip())
        return
    said["error"] = said["error"] or text.startswith(("error: ", "interrupted"))
    if _LOST_PEER.match(text):  # a survivor's view of a dead rank: said at the end unless the signal says more
        said["lost"].append(text)
        return
    dest.write(held + text)
    dest.flush()
