"""`gpuprop train` end to end: learning, output, metrics, checkpoints, resume and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from gpuprop import load_model
from tests.idx_files import N_TRAIN
from tests.test_cli import REPO, cli_env, error_line, run_cli

CPU = ("--device", "cpu")
pytestmark = pytest.mark.usefixtures("isolated_data_env")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def checkpoint_arrays(path):
    with numpy.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(str(arrays.pop("header"))), arrays


def assert_same_checkpoint(a, b):
    """Bit-for-bit equal weights and optimizer state, at the same training position."""
    ha, wa = checkpoint_arrays(a)
    hb, wb = checkpoint_arrays(b)
    assert (ha["epoch"], ha["step_in_epoch"]) == (hb["epoch"], hb["step_in_epoch"])
    assert ha["compile"]["iterations"] == hb["compile"]["iterations"]
    assert sorted(wa) == sorted(wb)
    for k in wa:
        assert numpy.array_equal(wa[k], wb[k]), k


# --- learning and output ------------------------------------------------------------------------
def test_softmax_learns_and_reports(data_dir, tmp_path):
    metrics = tmp_path / "m.jsonl"
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--model", "softmax", "--optimizer", "sgd",
                   "--lr", "0.1", "--batch-size", "32", "--epochs", "2", "--metrics", metrics)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("device: cpu") and "asked for" in out.splitlines()[0]
    assert "Flatten → Dense(10, softmax); 7,850 parameters" in out
    assert "sgd, learning rate 0.1, batch size 32" in out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "16/16 - " in out  # one line per epoch: all 512/32 steps
    assert "epoch 1 left out as warm-up" in out
    rows = read_jsonl(metrics)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time", "samples_per_sec"}
    assert rows[-1]["val_accuracy"] >= 0.9 and rows[-1]["loss"] < rows[0]["loss"]
    assert f"final: val_accuracy {rows[-1]['val_accuracy']:.4f}" in out
    assert rows[1]["samples_per_sec"] == pytest.approx(N_TRAIN / rows[1]["time"], rel=1e-6)


def test_mlp_json_goes_to_stdout_alone(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--hidden", "32", "--epochs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # nothing but the object on stdout
    assert "/step - " in proc.stderr and "device: cpu" in proc.stderr  # the epoch line (Keras: no "Epoch 1/1")
    assert result["device"] == "cpu" and result["model"] == "mlp" and result["optimizer"] == "adam"
    assert result["learning_rate"] == 0.001 and result["batch_size"] == 128 and result["epochs"] == 1
    assert result["params"] == 784 * 32 + 32 + 32 * 10 + 10
    assert result["val_accuracy"] >= 0.9 and result["samples_per_sec"] > 0
    assert result["first_epoch_excluded"] is False
    assert result["history"]["val_accuracy"] == [result["val_accuracy"]]


def test_quiet_prints_nothing(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--hidden", "16", "--epochs", "1", "--quiet")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_trains_on_each_backend(data_dir, backend):
    proc = run_cli("train", "--data-dir", data_dir, "--device", backend.name, "--model", "softmax",
                   "--epochs", "1", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["device"].startswith(backend.name)


def test_cnn_learns(data_dir):
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--model", "cnn", "--epochs", "1", "--batch-size", "64",
                   "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["params"] == 225_034 and result["val_accuracy"] >= 0.9


def test_plot_writes_a_png(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plots" / "curves.png"
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--hidden", "16", "--epochs", "2", "--plot", png, "-q")
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nonfinite_loss_is_one_line_and_saves_nothing(data_dir, tmp_path):
    ck = tmp_path / "ck.npz"
    proc = run_cli("train", "--data-dir", data_dir, *CPU, "--hidden", "32", "--optimizer", "sgd", "--lr", "1e6",
                   "--epochs", "2", "--checkpoint", ck)
    assert proc.returncode == 1
    assert "learning rate" in error_line(proc)
    assert not ck.exists()


# --- checkpoints and resume ---------------------------------------------------------------------
def test_resume_continues_exactly(data_dir, tmp_path):
    """1 epoch + resume to 2 equals 2 epochs straight, bit for bit (Keras' initial_epoch semantics)."""
    common = ("--data-dir", data_dir, *CPU, "--hidden", "32", "--batch-size", "100", "--seed", "3")
    straight, first, resumed = tmp_path / "straight.npz", tmp_path / "first.npz", tmp_path / "resumed.npz"
    metrics = tmp_path / "m.jsonl"
    assert run_cli("train", *common, "--epochs", "2", "--checkpoint", straight, "-q").returncode == 0
    assert run_cli("train", *common, "--epochs", "1", "--checkpoint", first, "--metrics", metrics, "-q").returncode == 0
    proc = run_cli("train", "--resume", first, *common, "--epochs", "2", "--checkpoint", resumed,
                   "--metrics", metrics, "--model", "softmax")
    assert proc.returncode == 0, proc.stderr
    assert "Epoch 2/2" in proc.stdout and "Epoch 1/2" not in proc.stdout
    assert "--model" in proc.stdout and "ignored" in proc.stdout  # the checkpoint fixes the model
    assert [r["epoch"] for r in read_jsonl(metrics)] == [1, 2]
    assert_same_checkpoint(straight, resumed)
    again = run_cli("train", "--resume", resumed, *common, "--epochs", "2", "--json", "-q")
    assert again.returncode == 0 and json.loads(again.stdout)["epochs_run"] == 0


def start_training(args):
    return subprocess.Popen([sys.executable, "-m", "gpuprop", "train", *map(str, args)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def interrupt_after_first_epoch_line(proc, timeout=60):
    """Send SIGINT once ``fit`` has printed 'Epoch 1/'; return (returncode, stdout, stderr)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("Epoch 1/"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + out, err


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(data_dir, tmp_path):
    common = ("--data-dir", data_dir, *CPU, "--hidden", "64", "--batch-size", "8", "--seed", "1")
    folder = tmp_path / "run"
    ck = folder / "ck.npz"
    rc, out, err = interrupt_after_first_epoch_line(start_training([*common, "--epochs", "1000", "--checkpoint", ck]))
    assert rc == 130, err
    message = err.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("interrupted in epoch "), err
    assert str(ck) in message[0] and "resume with: gpuprop train --resume" in message[0]
    assert os.listdir(folder) == ["ck.npz"]  # no temp file left beside it
    model = load_model(ck, device="cpu")
    assert 0 <= model.step_in_epoch < N_TRAIN // 8 and model.epoch < 1000
    # finish the interrupted epoch and compare with a run that was never stopped
    total = model.epoch + 1
    resumed, straight = tmp_path / "resumed.npz", tmp_path / "straight.npz"
    proc = run_cli("train", *common, "--resume", ck, "--epochs", total, "--checkpoint", resumed, "-q")
    assert proc.returncode == 0, proc.stderr
    assert run_cli("train", *common, "--epochs", total, "--checkpoint", straight, "-q").returncode == 0
    assert_same_checkpoint(straight, resumed)


def test_ctrl_c_without_checkpoint_exits_130(data_dir):
    rc, _, err = interrupt_after_first_epoch_line(start_training(
        ["--data-dir", data_dir, *CPU, "--hidden", "16", "--batch-size", "8", "--epochs", "1000"]))
    assert rc == 130
    assert "nothing saved" in err and "--checkpoint" in err and "Traceback" not in err


# --- a mid-epoch resume reports the whole epoch --------------------------------------------------
def _mlp(seed):
    from gpuprop import Sequential
    from gpuprop.layers import Dense, Flatten

    model = Sequential([Flatten(input_shape=(28, 28)), Dense(16, activation="relu"), Dense(10, activation="softmax")],
                       device="cpu", seed=seed)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_mid_epoch_resume_reports_loss_and_accuracy_over_the_whole_epoch(tmp_path):
    """Rough edge: after a mid-epoch resume the '16/16' line covered only the resumed steps. Ctrl-C (a real
    SIGINT, raised at a fixed step) stops epoch 2 after step 5; saved, loaded and resumed, its line must carry
    the loss and accuracy of the run that was never stopped (same per-step losses summed in the same order)."""
    from gpuprop import load_model
    from tests.idx_files import fake_mnist_arrays

    (x, y), _ = fake_mnist_arrays(N_TRAIN, 10, seed=0)
    x = x / 255.0
    straight = _mlp(4).fit(x, y, batch_size=32, epochs=2, verbose=0)
    model = _mlp(4)
    calls, train_step = [0], model.train_step

    def step_then_ctrl_c(xb, yb):
        calls[0] += 1
        if calls[0] == N_TRAIN // 32 + 5:  # epoch 2, step 5
            signal.raise_signal(signal.SIGINT)
        return train_step(xb, yb)

    model.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert (model.epoch, model.step_in_epoch) == (1, 5)
    model.save(tmp_path / "mid.npz")
    resumed = load_model(tmp_path / "mid.npz", device="cpu")
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        history = resumed.fit(x, y, batch_size=32, epochs=2, initial_epoch=1, verbose=2, log=stream)  # Keras: epoch 2
    assert history.epoch == [1]
    assert history.history["accuracy"][0] == straight.history["accuracy"][1]
    assert history.history["loss"][0] == pytest.approx(straight.history["loss"][1], rel=1e-12)
    assert f"loss: {straight.history['loss'][1]:.4f}" in log.read_text()
    assert history.stats[0]["steps"] == N_TRAIN // 32 - 5


def test_resume_without_saved_sums_says_which_steps_the_line_covers(tmp_path):
    """A checkpoint from before the sums were saved: the line says plainly it covers the resumed steps only."""
    from tests.idx_files import fake_mnist_arrays

    (x, y), _ = fake_mnist_arrays(N_TRAIN, 10, seed=0)
    model = _mlp(4)
    model.step_in_epoch = 5
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        model.fit(x / 255.0, y, batch_size=32, epochs=1, verbose=2, log=stream)
    assert "(loss and accuracy over steps 6-16 only: resumed mid-epoch)" in log.read_text()


def test_live_bar_in_a_narrow_terminal_shows_time_and_eta_and_never_wraps(data_dir):
    """Rough edge: the live bar had no elapsed time or ETA, and in a 60-column terminal every redraw wrapped
    into a new line. Here `train` runs on a real pseudo-terminal set to 60 columns."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    env = cli_env()
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "gpuprop", "train", "--data-dir", str(data_dir), *CPU,
                             "--hidden", "16", "--batch-size", "8", "--epochs", "2"],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    os.close(master)
    text = b"".join(chunks).decode("utf-8")
    redraws = [re.sub(r"\x1b\[K", "", part).rstrip("\r\n") for part in text.split("\r") if "ETA" in part]
    assert redraws, text  # the bar is drawn at the first step of each epoch at least
    for line in redraws:
        assert len(line) < 60, line  # shorter than the terminal: a redraw overwrites, never wraps
        assert re.match(r"\d+/64 ━*─* [0-9ms]+ ETA [0-9ms]+ - (accuracy|loss)", line), line  # Keras' order
