"""One epoch of softmax regression on real Fashion-MNIST through the CLI (Debian's dataset package)."""

import json
from pathlib import Path

import pytest

from tests.test_cli import run_cli

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} absent: apt-get install dataset-fashion-mnist")
def test_softmax_one_epoch_on_fashion_mnist(tmp_path):
    ck = tmp_path / "fashion.npz"
    proc = run_cli("train", "--dataset", "fashion-mnist", "--data-dir", FASHION, "--model", "softmax",
                   "--optimizer", "sgd", "--lr", "0.01", "--batch-size", "32", "--epochs", "1", "--device", "cpu",
                   "--checkpoint", ck, "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "1875/1875" in proc.stderr  # 60,000 images in batches of 32
    assert result["val_accuracy"] >= 0.75, result
    check = run_cli("evaluate", ck, "--dataset", "fashion-mnist", "--data-dir", FASHION, "--device", "cpu", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["accuracy"] == pytest.approx(result["val_accuracy"], abs=1e-12)
