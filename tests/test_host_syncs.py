"""No host synchronisation inside a training step, for every zoo model and optimizer; per epoch only the documented.

The oracle is gpu-sim's counter of device-to-host synchronisations (the stand-in
counts each read of a device value by the host: ``float()``, ``int()``, ``bool()``,
``.get()``, ``asnumpy``), against the counts ``gpuprop/training.py``'s docstring
states. The models live on the second simulated device (gpu-sim:1), so that an
array allocated outside the model's device (on device 0, CuPy's default) meets
the model's arrays and the stand-in refuses the mix, as CUDA would.
"""


import numpy as np
import pytest

from gpuprop import get_backend, optimizers, training, zoo
from gpuprop.models.network import cast_input
from tests.conftest import require_cxx

SIM = "gpu-sim:1"
# Every optimizer the CLI offers, and the clipping paths (which must stay on the device too).
OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.05),
    "momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(0.01),
    "adamw": lambda: optimizers.AdamW(0.01),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop_centered_momentum": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adam_global_clipnorm": lambda: optimizers.Adam(0.01, global_clipnorm=1.0),
    "sgd_clipnorm": lambda: optimizers.SGD(0.05, clipnorm=0.5),
}
# What training.py documents: per epoch 3 reads (first non-finite step, loss sum, correct count);
# a validation pass 2 more (loss sum, correct count).
PER_EPOCH, PER_VALIDATION = 3, 2


@pytest.fixture(autouse=True, scope="module")
def _compiler():
    """gpu-sim runs the fused kernels' C++ through g++ (as tests/test_sim_kernels.py: CI sets GPUPROP_REQUIRE_CXX)."""
    require_cxx()


@pytest.fixture(scope="module")
def sim():
    backend = get_backend(SIM)
    assert backend.host_syncs() is not None, "gpu-sim must count host syncs"
    return backend


def _model(name, sim, opt):
    model = zoo.build(name, hidden=(32,), device=sim, seed=0)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.build()
    return model


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *zoo.INPUT_SHAPE)).astype("float32"), rng.integers(0, zoo.NUM_CLASSES, n)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_no_host_sync_inside_train_step(sim, name, opt):
    model = _model(name, sim, OPTIMIZERS[opt]())
    x, y = _data(16)
    xb, yb = cast_input(sim, x), sim.asarray(y, dtype="int64")
    before_w = model.get_weights()
    losses = []
    for _ in range(3):  # the first step too: scratch arrays and slots are made there
        start = sim.host_syncs()
        loss, _ = model.train_step(xb, yb)
        assert sim.host_syncs() - start == 0, f"{name}/{opt}: host syncs inside train_step"
        losses.append(loss)
    # not vacuous: the steps really trained (read after counting)
    assert all(np.isfinite(float(v)) for v in losses)
    assert any(not np.array_equal(a, b) for a, b in zip(before_w, model.get_weights()))


def _fit_syncs(model, data, epochs, validation=None):
    start = model.backend.host_syncs()
    model.fit(data, batch_size=16, epochs=epochs, verbose=0, initial_epoch=0, validation_data=validation)
    return model.backend.host_syncs() - start


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_host_syncs_per_epoch_are_the_documented_ones(sim, name):
    model = _model(name, sim, optimizers.Adam(0.01))
    x, y = _data(48)  # 3 steps per epoch: a per-step read would show as 3 per epoch more
    data = training.DeviceDataset(model, x, y)
    val = training.DeviceDataset(model, *_data(20, seed=1))
    one, two = _fit_syncs(model, data, 1), _fit_syncs(model, data, 2)
    assert two - one == PER_EPOCH
    assert one == PER_EPOCH  # nothing else per fit call either, given device datasets
    assert _fit_syncs(model, data, 1, validation=(val, None)) == PER_EPOCH + PER_VALIDATION


def test_label_range_check_is_one_read_per_dataset(sim):
    model = _model("softmax", sim, optimizers.SGD(0.1))
    x, y = _data(64)
    start = sim.host_syncs()
    training.DeviceDataset(model, x, y)
    assert sim.host_syncs() - start == 1
