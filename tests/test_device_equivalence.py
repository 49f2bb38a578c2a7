"""Training in float64 on gpu-sim (the CuPy code path) equals training on the CPU (NumPy) within 1e-12.

The CPU path is the oracle: the same zoo model, initial weights (drawn on the
host), batches (no shuffling: CuPy's random streams differ from NumPy's) and
optimizer, through ``fit`` with its metrics, on both devices.
"""


import numpy as np
import pytest

from gpuprop import get_backend, optimizers, zoo
from tests.conftest import require_cxx

OPTIMIZERS = {"sgd": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True), "adam": lambda: optimizers.Adam(0.01),
              "adamw": lambda: optimizers.AdamW(0.01), "rmsprop": lambda: optimizers.RMSprop(0.01, centered=True)}
RTOL = 1e-12


@pytest.fixture(autouse=True, scope="module")
def _compiler():
    """gpu-sim runs the fused kernels' C++ through g++ (as tests/test_sim_kernels.py: CI sets GPUPROP_REQUIRE_CXX)."""
    require_cxx()


def _train(device, name, opt, x, y):
    model = zoo.build(name, hidden=(32,), device=get_backend(device), seed=3)
    model.compile(OPTIMIZERS[opt](), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(x[:16], y[:16]))
    return model.get_weights(), history.history, model.predict(x[:8])


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_float64_training_on_gpu_sim_equals_cpu(float64, name, opt):
    rng = np.random.default_rng(7)
    x, y = rng.random((48, *zoo.INPUT_SHAPE)), rng.integers(0, zoo.NUM_CLASSES, 48)
    w_cpu, h_cpu, p_cpu = _train("cpu", name, opt, x, y)
    w_sim, h_sim, p_sim = _train("gpu-sim", name, opt, x, y)
    assert [w.dtype for w in w_sim] == [np.float64] * len(w_cpu)
    for i, (a, b) in enumerate(zip(w_sim, w_cpu)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(b).max(), err_msg=f"weight {i}")
    assert h_sim.keys() == h_cpu.keys()
    for k in h_cpu:
        np.testing.assert_allclose(h_sim[k], h_cpu[k], rtol=RTOL, err_msg=k)
    np.testing.assert_allclose(p_sim, p_cpu, rtol=RTOL, atol=1e-15)
    fresh = zoo.build(name, hidden=(32,), device="cpu", seed=3)
    fresh.build()
    assert not np.array_equal(fresh.get_weights()[-2], w_cpu[-2])  # not vacuous: training moved the weights
