"""The `gpuprop` command line, run as a real subprocess on small generated IDX files.

Every test runs ``python -m gpuprop`` from the repository root with
PYTHONPATH pointing at it, so nothing needs to be installed, and with every
data location isolated (``isolate_data_env``) so no real dataset or network
is touched. Training tests live in test_cli_train.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from gpuprop import available_backends, layers
from tests.idx_files import N_TEST, N_TRAIN, fake_mnist_arrays

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated_data_env")


def cli_env(*extra_paths):
    """The current environment with the checkout (after ``extra_paths``) on PYTHONPATH."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_paths), str(REPO)])
    return env


def run_cli(*args, env=None, timeout=180):
    """``python -m gpuprop ARGS`` in the repository root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "gpuprop", *map(str, args)], cwd=REPO, env=env or cli_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def error_line(proc):
    """The single ``error: ...`` line a failing command must print, and nothing else on stderr."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    return lines[0]


def shadow_package(root, name):
    """A folder that makes ``import name`` fail as when the package is not installed."""
    pkg = Path(root) / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"raise ImportError(\"No module named '{name}'\")\n")
    return Path(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """A 2-epoch MLP checkpoint on the fake data, with the run's --json summary."""
    folder = tmp_path_factory.mktemp("trained")
    ck = folder / "mlp.npz"
    env = cli_env()
    for var in ("XDG_CACHE_HOME", "GPUPROP_SYSTEM_DATA_DIR"):
        env[var] = str(folder / var)
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--hidden", "32", "--epochs", "2",
                   "--checkpoint", ck, "--json", "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    return ck, json.loads(proc.stdout)


# --- entry points and usage errors ------------------------------------------------------
def test_cli_py_help_from_checkout():
    proc = subprocess.run([sys.executable, "cli.py", "--help"], cwd=REPO, capture_output=True, text=True,
                          env=cli_env(), encoding="utf-8")
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "evaluate", "predict", "info", "gradcheck", "bench"):
        assert command in proc.stdout


def test_module_entry_point_shows_train_help_and_version():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    for flag in ("--dataset", "--model", "--hidden", "--epochs", "--batch-size", "--lr", "--optimizer", "--device",
                 "--seed", "--checkpoint", "--resume", "--metrics", "--plot", "--json", "--quiet", "--debug"):
        assert flag in proc.stdout
    import gpuprop

    version = run_cli("--version")
    assert version.returncode == 0 and gpuprop.__version__ in version.stdout


@pytest.mark.parametrize("args", [["--epochs", "abc"], ["--epochs", "0"], ["--device", "tpu"],
                                  ["--dataset", "cifar10"], ["--hidden", "0,32"], ["--model", "resnet"],
                                  ["--optimizer", "lbfgs"]])
def test_bad_flags_are_usage_errors(args):
    proc = run_cli("train", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Usage:" in proc.stderr and "Traceback" not in proc.stderr
    assert args[0] in proc.stderr


# --- user errors: one line, exit 1 ------------------------------------------------------------
def test_missing_data_dir_is_one_line(tmp_path):
    missing = tmp_path / "no-such-folder"
    proc = run_cli("train", "--data-dir", missing, "--device", "cpu")
    assert proc.returncode == 1
    assert str(missing) in error_line(proc)


def test_data_found_nowhere_says_how_to_fix():
    proc = run_cli("train", "--dataset", "fashion_mnist", "--device", "cpu")  # lenient name; mirror is closed
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot load Fashion-MNIST")
    assert "--data-dir" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif("gpu" in available_backends(), reason="this machine has a GPU")
def test_absent_gpu_is_one_line(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, "--device", "gpu")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "CuPy" in line or "GPU" in line or "CUDA" in line


@pytest.mark.parametrize("kind", ["random-bytes", "foreign-npz", "missing"])
@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_bad_checkpoint_is_one_line(tmp_path, data_dir, kind, command):
    path = tmp_path / "model.npz"
    if kind == "random-bytes":
        path.write_bytes(numpy.random.default_rng(0).bytes(4096))
    elif kind == "foreign-npz":
        numpy.savez(path, weights=numpy.ones((3, 3)))
    args = ["evaluate", path] if command == "evaluate" else ["train", "--resume", path]
    proc = run_cli(*args, "--data-dir", data_dir, "--device", "cpu")
    assert proc.returncode == 1
    assert str(path) in error_line(proc)


@pytest.mark.parametrize("where", ["group", "subcommand"])
def test_debug_shows_the_traceback(tmp_path, where):
    missing = tmp_path / "nowhere"
    args = ["--debug", "train", "--data-dir", missing] if where == "group" else ["train", "--data-dir", missing, "--debug"]
    proc = run_cli(*args, "--device", "cpu")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


def test_plot_without_matplotlib_fails_before_training(tmp_path, data_dir):
    env = cli_env(shadow_package(tmp_path / "shadow", "matplotlib"))
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--plot", tmp_path / "curves.png", env=env)
    assert proc.returncode == 1
    assert "pip install 'gpuprop[plot]'" in error_line(proc)
    assert "Epoch" not in proc.stdout


# --- evaluate and predict on a real checkpoint ---------------------------------------------------
def test_evaluate_reproduces_the_final_validation_metrics(trained, data_dir):
    ck, summary = trained
    proc = run_cli("evaluate", ck, "--data-dir", data_dir, "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["samples"] == N_TEST and result["epochs"] == 2
    assert result["accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-12)
    assert result["loss"] == pytest.approx(summary["val_loss"], rel=1e-6)
    human = run_cli("evaluate", ck, "--data-dir", data_dir, "--device", "cpu")
    assert human.returncode == 0 and f"accuracy: {summary['val_accuracy']:.4f}" in human.stdout


def test_predict_npy_files(trained, tmp_path):
    ck, _ = trained
    _, (x, y) = fake_mnist_arrays(N_TRAIN, N_TEST, seed=0)
    numpy.save(tmp_path / "one.npy", x[0])
    numpy.save(tmp_path / "stack.npy", x[:20])
    numpy.save(tmp_path / "floats.npy", x[:3].astype(numpy.float64) / 255.0)
    proc = run_cli("predict", ck, tmp_path / "one.npy", tmp_path / "stack.npy", tmp_path / "floats.npy",
                   "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    preds = json.loads(proc.stdout)["predictions"]
    assert len(preds) == 1 + 20 + 3
    classes = [p["class"] for p in preds]
    # uint8 pixels are scaled as in training, so they agree with the same images given as floats
    assert classes[0] == classes[1] and classes[1:4] == classes[21:24]
    assert numpy.mean(numpy.array(classes[1:21]) == y[:20]) >= 0.9
    for p in preds:
        assert p["probability"] == max(p["probabilities"]) and abs(sum(p["probabilities"]) - 1) < 1e-4
    human = run_cli("predict", ck, tmp_path / "one.npy", "--device", "cpu", "--dataset", "fashion-mnist")
    assert human.returncode == 0
    assert human.stdout.startswith(f"{tmp_path / 'one.npy'}: {classes[0]} ")


def test_predict_rejects_wrong_shape(trained, tmp_path):
    ck, _ = trained
    numpy.save(tmp_path / "bad.npy", numpy.zeros((3, 32, 32), numpy.uint8))
    proc = run_cli("predict", ck, tmp_path / "bad.npy", "--device", "cpu")
    assert proc.returncode == 1
    assert "(3, 32, 32)" in error_line(proc)


def test_predict_image_file(trained, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    ck, _ = trained
    _, (x, y) = fake_mnist_arrays(N_TRAIN, N_TEST, seed=0)
    # a 56x56 RGB file: predict must make it grayscale and 28x28 again
    Image.fromarray(x[5]).resize((56, 56), Image.NEAREST).convert("RGB").save(tmp_path / "digit.png")
    proc = run_cli("predict", ck, tmp_path / "digit.png", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predictions"][0]["class"] == int(y[5])


def test_predict_image_without_pillow_is_one_line(trained, tmp_path):
    ck, _ = trained
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    env = cli_env(shadow_package(tmp_path / "shadow", "PIL"))
    proc = run_cli("predict", ck, tmp_path / "digit.png", "--device", "cpu", env=env)
    assert proc.returncode == 1
    assert "pip install 'gpuprop[images]'" in error_line(proc)


# --- info and gradcheck ---------------------------------------------------------------------------
def test_info_lists_versions_and_backends():
    proc = run_cli("info")
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split(None, 1) if " " in line else (line, "") for line in proc.stdout.splitlines())
    assert rows["NumPy"].strip() == numpy.__version__
    assert rows["backends"].strip().startswith("cpu")
    for key in ("gpuprop", "Python", "BLAS", "CuPy", "click", "GPU"):
        assert key in rows


def test_gradcheck_table_passes():
    proc = run_cli("gradcheck", "--device", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = {}
    for line in proc.stdout.splitlines()[1:-1]:
        name, err, verdict = line.rsplit(None, 2)
        table[name] = (float(err), verdict)
    expected = ["Dense(relu)", "Dense(softmax)", "Dense(sigmoid)", "Flatten", "Dropout(0.5)",
                "sparse_categorical_crossentropy", "sparse_categorical_crossentropy (from logits)",
                "mean_squared_error", "binary_crossentropy (from logits)"]
    if hasattr(layers, "Conv2D"):
        expected += ["Conv2D(valid)", "Conv2D(same)", "Conv2D(stride 2)"]
    for name in ("MaxPooling2D", "AveragePooling2D", "BatchNormalization"):
        if hasattr(layers, name):
            expected.append(name)
    for name in expected:
        assert name in table, proc.stdout
    assert all(verdict == "pass" and err < 1e-6 for err, verdict in table.values())


def test_gradcheck_fails_with_exit_1_when_tolerance_is_impossible():
    proc = run_cli("gradcheck", "--device", "cpu", "--tolerance", "0")
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and error_line(proc).startswith("error: ")


def test_out_of_memory_is_one_line(data_dir):
    # a hidden layer of 10^12 units needs petabytes: NumPy raises MemoryError at once
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--hidden", "1000000000000")
    assert proc.returncode == 1
    line = error_line(proc)
    assert "out of memory" in line and "--batch-size" in line


# --- the checkpoint remembers its dataset -------------------------------------------------------
@pytest.fixture
def two_datasets(isolated_data_env):
    """Fake Fashion-MNIST and a different fake MNIST where Debian's packages put them (isolated)."""
    from tests.idx_files import write_fake_mnist

    _, system = isolated_data_env
    write_fake_mnist(system / "fashion-mnist", N_TRAIN, N_TEST, seed=0)
    write_fake_mnist(system / "mnist", N_TRAIN, N_TEST, seed=7)
    return system


def test_resume_trains_on_the_checkpoints_dataset(two_datasets, tmp_path):
    """Rough edge: `train --resume` without --dataset went to MNIST; it must continue on Fashion-MNIST,
    bit for bit as a run that was never stopped."""
    from tests.test_cli_train import assert_same_checkpoint

    common = ("--device", "cpu", "--hidden", "16", "--seed", "2")
    first, resumed, straight = tmp_path / "first.npz", tmp_path / "resumed.npz", tmp_path / "straight.npz"
    assert run_cli("train", "--dataset", "fashion-mnist", *common, "--epochs", "1", "--checkpoint", first,
                   "-q").returncode == 0
    proc = run_cli("train", "--resume", first, "--device", "cpu", "--epochs", "2", "--checkpoint", resumed, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dataset"] == "fashion-mnist"
    assert "data: Fashion-MNIST" in proc.stderr and str(two_datasets / "fashion-mnist") in proc.stderr
    assert run_cli("train", "--dataset", "fashion-mnist", *common, "--epochs", "2", "--checkpoint", straight,
                   "-q").returncode == 0
    assert_same_checkpoint(straight, resumed)
    other = run_cli("train", "--resume", first, "--dataset", "mnist", "--device", "cpu", "--epochs", "2")
    assert other.returncode == 0, other.stderr
    assert f"note: {first} was trained on fashion-mnist; continuing on mnist" in other.stdout
    assert "data: MNIST" in other.stdout
    assert "--dataset" not in run_cli("train", "--help").stdout.split("--resume fm.npz")[1].splitlines()[0]


def test_predict_names_classes_from_the_checkpoints_dataset(two_datasets, tmp_path):
    ck = tmp_path / "fm.npz"
    assert run_cli("train", "--dataset", "fashion-mnist", "--device", "cpu", "--hidden", "16", "--epochs", "1",
                   "--checkpoint", ck, "-q").returncode == 0
    _, (x, y) = fake_mnist_arrays(N_TRAIN, N_TEST, seed=0)
    numpy.save(tmp_path / "x.npy", x[:10])
    proc = run_cli("predict", ck, tmp_path / "x.npy", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    from gpuprop.datasets.fashion_mnist import CLASS_NAMES

    preds = json.loads(proc.stdout)["predictions"]
    assert [p["label"] for p in preds] == [CLASS_NAMES[p["class"]] for p in preds]


def test_offline_error_is_one_line_and_names_the_installed_dataset(two_datasets):
    """MNIST missing and no network, Fashion-MNIST installed: one line that says how to use it."""
    import shutil

    shutil.rmtree(two_datasets / "mnist")
    proc = run_cli("train", "--device", "cpu")
    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith("error: cannot load MNIST: not found locally and the download failed")
    assert f"Fashion-MNIST, installed in {two_datasets / 'fashion-mnist'}: add --dataset fashion-mnist" in line
    assert "--data-dir" in line
