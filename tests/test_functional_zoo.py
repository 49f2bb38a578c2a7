"""The zoo's residual CNN (functional API): architecture, skip connections, training from the CLI."""

import numpy
import pytest

from gpuprop import load_model, zoo
from tests.test_cli import run_cli


def conv_params(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def test_resnet_architecture_and_parameter_count(backend):
    model = zoo.resnet(device=backend, seed=0)
    want = (conv_params(3, 1, 16) + 2 * conv_params(3, 16, 16) + conv_params(3, 16, 32) + 2 * conv_params(3, 32, 32)
            + 32 * 10 + 10)
    assert model.count_params() == want == 28266
    assert model.output_shape == (None, 10)  # Keras' shapes name the batch axis
    # each Add joins the block's input (a pooling output) with the block's second convolution: a skip connection
    adds = [n for n in model.nodes if type(n.layer).__name__ == "Add"]
    assert len(adds) == 2
    for node in adds:
        assert [type(t.node.layer).__name__ for t in node.inputs] == ["MaxPooling2D", "Conv2D"]
    p = model.predict(numpy.random.default_rng(0).random((3, 28, 28)))
    numpy.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.usefixtures("isolated_data_env")
def test_cli_trains_and_resumes_the_resnet(data_dir, tmp_path):
    ckpt = tmp_path / "r.npz"
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--model", "resnet", "--epochs", "1",
                   "--batch-size", "128", "--checkpoint", ckpt, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "model: resnet:" in proc.stdout and "28,266 parameters" in proc.stdout
    assert "Add" in proc.stdout
    model = load_model(ckpt, device="cpu")
    assert type(model).__name__ == "Model" and model.epoch == 1 and model.optimizer.iterations == 4
    proc = run_cli("train", "--data-dir", data_dir, "--device", "cpu", "--resume", ckpt, "--checkpoint", ckpt,
                   "--epochs", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Epoch 2/2" in proc.stdout
    assert load_model(ckpt, device="cpu").optimizer.iterations == 8
