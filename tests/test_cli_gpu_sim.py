"""`gpuprop train`, `evaluate` and `predict` end to end on --device gpu-sim, each checked against the CPU.

Real subprocesses of the CLI on fake MNIST files. The oracle for evaluate and
predict is the same checkpoint run with --device cpu; for train, the host-sync
counts that gpuprop/training.py documents (0 per step; per epoch 3 for training
and 2 for validation, with --quiet so no progress bar reads in between). Some
runs use the second simulated device, gpu-sim:1, where an array made outside the
model's device (on device 0, CuPy's default) is refused as CUDA would.
"""

import json

import numpy
import pytest

from tests.conftest import require_cxx
from tests.test_cli import error_line, run_cli

pytestmark = pytest.mark.usefixtures("isolated_data_env")
SIM = ("--device", "gpu-sim")


@pytest.fixture(autouse=True, scope="module")
def _compiler():
    """gpu-sim runs the fused kernels' C++ through g++ (as tests/test_sim_kernels.py: CI sets GPUPROP_REQUIRE_CXX)."""
    require_cxx()


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A checkpoint trained on gpu-sim, and the --json object of that run."""
    ckpt = tmp_path_factory.mktemp("sim") / "m.npz"
    proc = run_cli("train", "--data-dir", data_dir, *SIM, "--model", "mlp", "--hidden", "32", "--epochs", "2",
                   "--batch-size", "64", "--optimizer", "adam", "--lr", "0.01", "--checkpoint", ckpt, "--json",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    return ckpt, json.loads(proc.stdout)


def test_train_on_gpu_sim_reports_zero_host_syncs_per_step(trained):
    ckpt, result = trained
    assert result["host_syncs_per_step"] == 0
    # 3 per epoch in training, 2 in validation; the checkpoint saved after each epoch reads every
    # weight and optimizer slot back, which the counter sees too: at least that, and no per-step growth.
    assert result["host_syncs_per_epoch"] >= 3 + 2
    assert result["val_accuracy"] >= 0.5  # it learned (fake MNIST is easy)
    assert ckpt.exists()


def test_train_json_on_cpu_has_no_sync_count(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--model", "softmax", "--epochs", "1",
                   "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["host_syncs_per_step"] is None and result["host_syncs_per_epoch"] is None


def test_train_without_checkpoint_counts_exactly_the_documented_syncs(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, "--device", "gpu-sim:1", "--model", "softmax", "--epochs", "2",
                   "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["host_syncs_per_step"], result["host_syncs_per_epoch"]) == (0, 3 + 2)


def test_train_on_gpu_sim_prints_the_count(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, *SIM, "--model", "softmax", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("device: gpu-sim")
    assert "host syncs: 0 per training step" in proc.stdout


def test_evaluate_on_gpu_sim_equals_cpu(trained, data_dir):
    ckpt, _ = trained
    got = {}
    for device in ("cpu", "gpu-sim:1"):
        proc = run_cli("evaluate", ckpt, "--data-dir", data_dir, "--device", device, "--json")
        assert proc.returncode == 0, proc.stderr
        got[device] = json.loads(proc.stdout)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in got["cpu"]:
            assert got["gpu-sim:1"][key] == pytest.approx(got["cpu"][key], rel=1e-5), key


def test_predict_on_gpu_sim_equals_cpu(trained, tmp_path):
    ckpt, _ = trained
    images = numpy.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=numpy.uint8)
    path = tmp_path / "five.npy"
    numpy.save(path, images)
    got = {}
    for device in ("cpu", "gpu-sim:1"):
        proc = run_cli("predict", ckpt, path, "--device", device, "--json")
        assert proc.returncode == 0, proc.stderr
        got[device] = json.loads(proc.stdout)
    assert json.dumps(got["cpu"]).count("class") == json.dumps(got["gpu-sim:1"]).count("class") > 0
    _assert_close(got["gpu-sim:1"], got["cpu"])


def _assert_close(a, b, path="$"):
    """Same structure; numbers within float32 rounding, everything else equal (device names aside)."""
    if isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in b:
            if k != "device":
                _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7), path
    else:
        assert a == b, path


def test_bad_gpu_sim_ordinal_is_one_clear_line(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, "--device", "gpu-sim:9", "--model", "softmax", "--epochs", "1")
    assert proc.returncode == 1
    assert "gpu-sim" in error_line(proc)
