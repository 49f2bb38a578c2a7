"""`gpuprop train` on several MPI ranks (real mpiexec subprocesses) equals one process with the same global batch.

The oracle is the single-process run of the same command: in float64 an N-rank
run may differ from it only in summation order (1e-10 relative on the final
weights and on every logged metric). Every subprocess has a timeout.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from tests.idx_files import N_TRAIN
from tests.test_cli import REPO, cli_env, run_cli
from tests.test_cli_train import checkpoint_arrays

pytestmark = pytest.mark.usefixtures("isolated_data_env")
TIMEOUT = 120
MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.fixture(scope="module")
def mpi():
    pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'gpuprop[mpi]'")
    if not MPIEXEC.exists():
        pytest.skip(f"mpi4py is installed but no mpiexec beside {sys.executable} (pip install mpich)")
    return str(MPIEXEC)


def rank_env():
    env = cli_env()
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def mpiexec(mpi, n, *args, timeout=TIMEOUT):
    """``mpiexec -n N python -m gpuprop ARGS`` (or MPMD ``:``-separated groups when ``args`` holds ':')."""
    return subprocess.run([mpi, "-n", str(n), sys.executable, "-m", "gpuprop", *map(str, args)], cwd=REPO,
                          env=rank_env(), capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def assert_close_checkpoints(a, b, rtol=1e-10):
    """Same position and same weights/optimizer state up to ``rtol`` relative to each array's largest entry."""
    ha, wa = checkpoint_arrays(a)
    hb, wb = checkpoint_arrays(b)
    assert (ha["epoch"], ha["step_in_epoch"]) == (hb["epoch"], hb["step_in_epoch"])
    assert ha["compile"]["iterations"] == hb["compile"]["iterations"]
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert wa[k].dtype == wb[k].dtype, k
        scale = max(float(numpy.max(numpy.abs(wa[k]))), 1e-300)
        assert float(numpy.max(numpy.abs(wa[k] - wb[k]))) <= rtol * scale, k


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def assert_close_metrics(a, b, rtol):
    ra, rb = read_jsonl(a), read_jsonl(b)
    assert [r["epoch"] for r in ra] == [r["epoch"] for r in rb]
    for x, y in zip(ra, rb):
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert x[k] == pytest.approx(y[k], rel=rtol, abs=1e-12), (k, x, y)


COMMON = ("--device", "cpu", "--hidden", "32", "--optimizer", "adam", "--seed", "3")


def test_two_ranks_equal_one_rank_in_float64(mpi, data_dir, tmp_path):
    """--ranks 2 through the launcher: weights, optimizer state, loss, accuracy and validation as in one process."""
    args = ("train", "--data-dir", data_dir, *COMMON, "--dtype", "float64", "--epochs", "2", "--batch-size", "48")
    one = run_cli(*args, "--checkpoint", tmp_path / "one.npz", "--metrics", tmp_path / "one.jsonl", timeout=TIMEOUT)
    assert one.returncode == 0, one.stderr
    two = run_cli(*args, "--ranks", "2", "--checkpoint", tmp_path / "two.npz", "--metrics", tmp_path / "two.jsonl",
                  env=cli_env(), timeout=TIMEOUT)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("Epoch 1/2") == 1 and two.stdout.count("final:") == 1  # rank 0 alone prints
    assert "ranks: 2 on 1 machine(s)" in two.stdout and "OMP_NUM_THREADS" in two.stdout
    assert "batch size 48 = 2 × 24 per rank" in two.stdout
    assert two.stderr == ""
    assert_close_checkpoints(tmp_path / "one.npz", tmp_path / "two.npz")
    assert_close_metrics(tmp_path / "one.jsonl", tmp_path / "two.jsonl", rtol=1e-10)
    rows = read_jsonl(tmp_path / "two.jsonl")  # one writer: two epochs, two lines
    assert len(rows) == 2
    # throughput counts every rank's samples: the whole training split per epoch
    assert rows[1]["samples_per_sec"] == pytest.approx(N_TRAIN / rows[1]["time"], rel=1e-6)


def test_three_ranks_with_an_uneven_last_batch_under_mpiexec(mpi, data_dir, tmp_path):
    """512 = 10·48 + 32: the last batch splits 11/11/10 and is weighted by sample counts; plain mpiexec -n 3."""
    args = ("train", "--data-dir", data_dir, *COMMON, "--dtype", "float64", "--epochs", "2", "--batch-size", "48")
    one = run_cli(*args, "--checkpoint", tmp_path / "one.npz", "--metrics", tmp_path / "one.jsonl", timeout=TIMEOUT)
    assert one.returncode == 0, one.stderr
    three = mpiexec(mpi, 3, *args, "--checkpoint", tmp_path / "three.npz", "--metrics", tmp_path / "three.jsonl")
    assert three.returncode == 0, three.stderr
    assert three.stdout.count("Epoch 2/2") == 1 and "ranks: 3" in three.stdout
    assert_close_checkpoints(tmp_path / "one.npz", tmp_path / "three.npz")
    assert_close_metrics(tmp_path / "one.jsonl", tmp_path / "three.jsonl", rtol=1e-10)


def test_float32_curves_stay_within_noise(mpi, data_dir, tmp_path):
    args = ("train", "--data-dir", data_dir, *COMMON, "--epochs", "3", "--batch-size", "64")
    one = run_cli(*args, "--metrics", tmp_path / "one.jsonl", "--checkpoint", tmp_path / "one.npz", timeout=TIMEOUT)
    two = mpiexec(mpi, 2, *args, "--metrics", tmp_path / "two.jsonl", "--checkpoint", tmp_path / "two.npz")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert_close_metrics(tmp_path / "one.jsonl", tmp_path / "two.jsonl", rtol=1e-4)
    assert_close_checkpoints(tmp_path / "one.npz", tmp_path / "two.npz", rtol=1e-4)
    assert checkpoint_arrays(tmp_path / "two.npz")[1]["weight_0"].dtype == numpy.float32


def test_last_batch_smaller_than_the_ranks_is_skipped_and_said(mpi, data_dir, tmp_path):
    """512 = 2·255 + 2 with 3 ranks: the 2-sample batch is skipped (a note says so), 2 steps an epoch."""
    proc = mpiexec(mpi, 3, "train", "--data-dir", data_dir, *COMMON, "--epochs", "1", "--batch-size", "255")
    assert proc.returncode == 0, proc.stderr
    assert "note: the last batch of each epoch (2 samples) is smaller than the 3 ranks and is skipped" in proc.stdout
    assert "2/2 - " in proc.stdout


def test_a_global_batch_that_does_not_divide_is_one_clear_error(mpi, data_dir):
    proc = run_cli("train", "--data-dir", data_dir, *COMMON, "--epochs", "1", "--batch-size", "63", "--ranks", "2",
                   timeout=TIMEOUT)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: rank 0: batch size 63 does not split evenly across 2 ranks: it is the global batch, use a multiple "
        "of 2"], proc.stderr


def test_ctrl_c_stops_every_rank_once_and_resumes_on_another_rank_count(mpi, data_dir, tmp_path):
    """SIGINT to `--ranks 2`: exit 130, one message, one checkpoint; resuming it on 1 rank equals an unbroken run."""
    from tests.test_cli_train import interrupt_after_first_epoch_line

    args = ["train", "--data-dir", str(data_dir), *COMMON, "--dtype", "float64", "--batch-size", "8"]
    folder = tmp_path / "run"
    ck = folder / "ck.npz"
    proc = subprocess.Popen([sys.executable, "-m", "gpuprop", *args, "--epochs", "1000", "--ranks", "2",
                             "--checkpoint", str(ck)], cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")
    rc, out, err = interrupt_after_first_epoch_line(proc, timeout=TIMEOUT)
    assert rc == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted in epoch "), err
    assert "--ranks 2" in lines[0] and "--dtype float64" in lines[0]
    assert "Sending Ctrl-C" not in out + err  # MPICH's notice is not passed on
    assert os.listdir(folder) == ["ck.npz"]
    header, _ = checkpoint_arrays(ck)
    total = header["epoch"] + 1
    resumed, straight = tmp_path / "resumed.npz", tmp_path / "straight.npz"
    again = run_cli(*args, "--resume", ck, "--epochs", total, "--checkpoint", resumed, "-q", timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    whole = run_cli(*args, "--epochs", total, "--checkpoint", straight, "-q", timeout=TIMEOUT)
    assert whole.returncode == 0, whole.stderr
    assert_close_checkpoints(straight, resumed)


def test_resume_from_one_rank_on_two(mpi, data_dir, tmp_path):
    args = ("train", "--data-dir", data_dir, *COMMON, "--dtype", "float64", "--batch-size", "64")
    first = run_cli(*args, "--epochs", "1", "--checkpoint", tmp_path / "a.npz", "-q", timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr
    resumed = mpiexec(mpi, 2, *args, "--resume", tmp_path / "a.npz", "--epochs", "2", "--checkpoint",
                      tmp_path / "b.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("Epoch 2/2") == 1 and "Epoch 1/2" not in resumed.stdout
    straight = run_cli(*args, "--epochs", "2", "--checkpoint", tmp_path / "c.npz", "-q", timeout=TIMEOUT)
    assert straight.returncode == 0, straight.stderr
    assert_close_checkpoints(tmp_path / "c.npz", tmp_path / "b.npz")


def test_dtype_flag_and_a_float64_checkpoint_resumes_in_float64(data_dir, tmp_path):
    args = ("train", "--data-dir", data_dir, *COMMON, "--batch-size", "64", "-q")
    assert run_cli(*args, "--epochs", "1", "--dtype", "float64", "--checkpoint", tmp_path / "a.npz").returncode == 0
    assert checkpoint_arrays(tmp_path / "a.npz")[1]["weight_0"].dtype == numpy.float64
    proc = run_cli(*args, "--epochs", "2", "--resume", tmp_path / "a.npz", "--checkpoint", tmp_path / "b.npz")
    assert proc.returncode == 0, proc.stderr
    assert checkpoint_arrays(tmp_path / "b.npz")[1]["weight_0"].dtype == numpy.float64  # not cast to the default
    proc = run_cli(*args, "--epochs", "2", "--resume", tmp_path / "a.npz", "--dtype", "float32", "--checkpoint",
                   tmp_path / "c.npz")
    assert proc.returncode == 0, proc.stderr
    assert checkpoint_arrays(tmp_path / "c.npz")[1]["weight_0"].dtype == numpy.float32  # asked for


# --- the launcher's pieces, without MPI ---------------------------------------------------------
def test_launcher_drops_ranks_and_sets_threads_per_rank(monkeypatch):
    from gpuprop.distributed import launcher

    assert launcher.strip_ranks(["train", "--ranks", "2", "--epochs", "3", "--ranks=4", "-q"]) == \
        ["train", "--epochs", "3", "-q"]
    for var in launcher.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    cores = len(os.sched_getaffinity(0))
    env = launcher.rank_environment(2)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == str(max(1, cores // 2))
    assert env["GPUPROP_RANKS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the user's own choice stands
    assert launcher.rank_environment(2)["OMP_NUM_THREADS"] == "7"


def test_launcher_filter_keeps_the_ranks_lines_and_drops_mpich_notices(tmp_path):
    """Fed MPICH 5's real banner (as printed when a rank is killed) between two lines of ours."""
    import io

    from gpuprop.distributed import launcher

    mpich = ("\n===================================================================================\n"
             "=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID 6668 RUNNING AT vm\n"
             "=   EXIT CODE: 9\n=   CLEANING UP REMAINING PROCESSES\n=   YOU CAN IGNORE THE BELOW CLEANUP MESSAGES\n"
             "===================================================================================\n"
             "YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)\n"
             "This typically refers to a problem with your application.\n"
             "Please see the FAQ page for debugging suggestions\n"
             "[mpiexec@vm] Sending Ctrl-C to processes as requested\n"
             "Abort(1) on node 1 (rank 1 in comm 0): application called MPI_Abort(MPI_COMM_WORLD, 1) - process 1\n")
    lost = "error: rank 0: an MPI call failed (Other MPI error): another rank has most likely died; the job is stopped\n"
    ours = "Epoch 1/2\n\n3/8 - loss: 0.5\r8/8 - loss: 0.4\n" + lost + mpich + "final: done\n"
    path = tmp_path / "stream"
    path.write_bytes(ours.encode())
    out, killed, said = io.StringIO(), [], {"error": False, "dropped": [], "lost": []}
    with open(path, "rb") as pipe:
        launcher._filter(pipe, out, killed, said)
    assert out.getvalue() == "Epoch 1/2\n\n3/8 - loss: 0.5\r8/8 - loss: 0.4\nfinal: done\n"
    assert killed == [("Killed", "9")]
    assert said["lost"] == [lost]  # held back: the launcher prints it only when no signal explains it
