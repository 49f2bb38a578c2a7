"""gpuprop's GPU code path, run on the gpu-sim stand-in: device scoping and equality with the CPU.

Oracles: the CPU (NumPy) backend for the numbers (float64, the same host-drawn
initial weights, no shuffling, so the two paths compute the same function and
may differ only by rounding), and CuPy's rule that arrays of different devices
must not meet, enforced by the stand-in's two devices.
"""

import threading

import numpy as np
import pytest

from gpuprop import Sequential
from gpuprop.backend import get_backend
from gpuprop.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D

SIM0, SIM1 = get_backend("gpu-sim:0"), get_backend("gpu-sim:1")
xp = SIM0.xp


def _data(seed=0, n=48):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 2)), rng.integers(0, 3, n)


def _mlp(device):
    return Sequential([Flatten(input_shape=(6, 6, 2)), Dense(16, activation="relu"), Dense(8, activation="tanh"),
                       Dense(6, activation="sigmoid"), Dense(3, activation="softmax")], device=device, seed=1)


def _cnn(device):
    return Sequential([Conv2D(4, 3, activation="relu", input_shape=(6, 6, 2)), BatchNormalization(),
                       MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")], device=device, seed=2)


def _train(build, device, optimizer):
    x, y = _data()
    model = build(device)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=_data(1, 16))
    return model, hist.history, model.predict(x)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("build", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_training_on_gpu_sim_equals_cpu_in_float64(float64, build, optimizer):
    cpu, hist_cpu, pred_cpu = _train(build, "cpu", optimizer)
    sim, hist_sim, pred_sim = _train(build, "gpu-sim", optimizer)
    assert hist_sim.keys() == hist_cpu.keys()
    for k in hist_cpu:
        np.testing.assert_allclose(hist_sim[k], hist_cpu[k], rtol=1e-12, atol=1e-12)
    for a, b in zip(sim.get_weights(), cpu.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pred_sim, pred_cpu, rtol=1e-12, atol=1e-12)


def test_arrays_of_different_devices_do_not_mix():
    a = SIM0.asarray(np.ones(3))
    b = SIM1.asarray(np.ones(3))
    assert a.device.id == 0 and b.device.id == 1
    with pytest.raises(ValueError, match="device"):
        a + b
    with pytest.raises(ValueError, match="device"):
        xp.add(a, a, out=b)
    with xp.cuda.Device(1):
        with pytest.raises(ValueError, match="device"):
            a * 2  # an array of device 0 used while device 1 is current
        assert (b * 2).device.id == 1 and xp.zeros(2).device.id == 1
    assert xp.zeros(2).device.id == 0


def test_current_device_is_per_thread():
    seen = []
    with xp.cuda.Device(1):
        t = threading.Thread(target=lambda: seen.append(xp.zeros(1).device.id))
        t.start()
        t.join()
        assert xp.zeros(1).device.id == 1
    assert seen == [0]  # a new thread starts on device 0, as in CUDA


def _device_arrays(model):
    arrays = list(model.params) + list(model.grads) + list(model.optimizer.variables())
    for layer in model.layers:
        arrays += list(layer.params.values()) + list(layer.grads.values()) + list(layer.state.values())
    return [a for a in arrays if isinstance(a, xp.ndarray)]


def _every_entry_point(device):
    x, y = _data()
    model = _cnn(device)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, validation_data=_data(1, 16))
    loss = model.evaluate(x, y, verbose=0)
    model.train_on_batch(x[:8], y[:8])
    model.set_weights(model.get_weights())
    return model, loss, model.predict(x[:4])


def test_a_gpu_sim_1_model_stays_on_device_1_while_device_0_is_current(float64):
    get_backend("gpu-sim:0")  # creating another GPU backend must not move the model's arrays
    assert xp.cuda.runtime.getDevice() == 0
    model, loss, pred = _every_entry_point("gpu-sim:1")  # any mixing would raise ValueError in here
    assert xp.cuda.runtime.getDevice() == 0  # the model's scope did not leak
    arrays = _device_arrays(model)
    assert arrays and {a.device.id for a in arrays} == {1}
    ref, ref_loss, ref_pred = _every_entry_point("cpu")
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(pred, ref_pred, rtol=1e-12, atol=1e-12)


def test_saving_and_loading_a_gpu_sim_1_model(tmp_path, float64):
    from gpuprop import load_model

    x, y = _data()
    model = _mlp("gpu-sim:1")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz", device="gpu-sim:1")
    assert {a.device.id for a in _device_arrays(back)} == {1}
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    back.fit(x, y, batch_size=16, epochs=2, verbose=0)  # resumes on device 1 without mixing


def test_data_on_another_device_is_copied_to_the_models(float64):
    x, y = _data()
    xd, yd = SIM0.asarray(x), SIM0.asarray(y)  # the data sit on device 0, the model on device 1
    model = _mlp("gpu-sim:1")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(xd, yd, batch_size=16, epochs=1, verbose=0, shuffle=False)
    ref = _mlp("cpu")
    ref.compile("sgd", "sparse_categorical_crossentropy")
    ref.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert {a.device.id for a in _device_arrays(model)} == {1}
