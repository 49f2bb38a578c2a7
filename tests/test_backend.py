"""The backend object: choice, errors, data movement, randomness, windows; and the import rule."""

import pathlib
import re

import numpy
import pytest

import gpuprop
from gpuprop.backend import get_backend
from gpuprop.errors import BackendError

ROOT = pathlib.Path(gpuprop.__file__).parent


def test_cpu_backend_is_numpy():
    b = get_backend("cpu")
    assert b.name == "cpu" and b.xp is numpy and not b.is_gpu
    assert get_backend("CPU") is b and get_backend(b) is b


def test_auto_says_what_it_took_and_why():
    b = get_backend("auto")
    assert b.name in ("cpu", "gpu")
    assert b.reason.startswith("auto")
    if "gpu" not in gpuprop.available_backends():
        assert b.name == "cpu"


@pytest.mark.skipif("gpu" in gpuprop.available_backends(), reason="this machine has a GPU, so asking for one succeeds")
@pytest.mark.parametrize("spec", ["gpu", "gpu:0", "cuda"])
def test_asking_for_an_absent_gpu_is_one_clear_sentence(spec):
    with pytest.raises(BackendError) as info:
        get_backend(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert re.search(r"CuPy|CUDA|GPU", msg) and "--device cpu" in msg


@pytest.mark.skipif("gpu" in gpuprop.available_backends(), reason="this machine has a GPU, so auto takes it")
def test_auto_fallback_reason_is_the_cause_alone():
    # The cause of the GPU error, without its fix: "auto: CuPy is not installed", not a message cut mid-bracket.
    with pytest.raises(BackendError) as info:
        get_backend("gpu")
    reason = get_backend("auto").reason
    assert reason == f"auto: {info.value.reason}"
    assert "--device" not in reason and reason.count("(") == reason.count(")")


# CUDA's own first lines, as CuPy 14 (CUDA 12.9 runtime) gives them on machines without a working GPU.
INSUFFICIENT = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"
NO_DEVICE = "cudaErrorNoDevice: no CUDA-capable device is detected"
STUB = "cudaErrorStubLibrary: CUDA driver is a stub library"
TOO_OLD = "the NVIDIA driver is too old for this CuPy build"


@pytest.mark.parametrize("msg, driver, runtime, cause, says", [
    # no driver at all: CUDA calls it "insufficient" too, but its driver version reads 0
    (INSUFFICIENT, 0, 12090, "no NVIDIA driver is installed", "install the NVIDIA driver"),
    (INSUFFICIENT, 11040, 12090, TOO_OLD, "supports CUDA 11.4, this CuPy needs 12.9"),
    (INSUFFICIENT, None, None, TOO_OLD, "update the driver"),
    (NO_DEVICE, 12090, 12090, "no CUDA device answers", NO_DEVICE),
    (STUB, None, 12090, "only the CUDA driver's stub library was found", "--gpus all"),
])
def test_cuda_failures_name_their_cause(msg, driver, runtime, cause, says):
    from gpuprop.backend import cuda_failure

    err = cuda_failure(msg, driver, runtime)
    assert isinstance(err, BackendError) and err.reason == cause
    text = str(err)
    assert text.startswith(cause) and says in text and "--device cpu" in text and "\n" not in text


def test_disabled_gpu_env(monkeypatch):
    monkeypatch.setenv("GPUPROP_DISABLE_GPU", "1")
    from gpuprop import backend as mod

    with pytest.raises(BackendError, match="GPUPROP_DISABLE_GPU") as info:
        mod._import_cupy()
    assert info.value.reason == "GPU disabled by GPUPROP_DISABLE_GPU"


@pytest.mark.parametrize("spec", ["tpu", "gpu:x", "gpu:-1"])
def test_bad_device_names(spec):
    with pytest.raises(BackendError, match="device|gpu"):
        get_backend(spec)


def test_round_trip_and_dtype(backend):
    host = numpy.arange(12, dtype="float64").reshape(3, 4)
    dev = backend.asarray(host, dtype="float32")
    assert dev.dtype == numpy.float32
    back = backend.to_host(dev)
    assert isinstance(back, numpy.ndarray)
    numpy.testing.assert_array_equal(back, host.astype("float32"))


def test_rng_is_seeded(backend):
    a = backend.to_host(backend.permutation(5, 100))
    b = backend.to_host(backend.permutation(5, 100))
    c = backend.to_host(backend.permutation((5, 1), 100))
    numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(a, c)
    assert sorted(a.tolist()) == list(range(100))


@pytest.mark.parametrize("kh,kw,sh,sw", [(3, 3, 1, 1), (2, 3, 2, 1), (3, 2, 2, 2)])
def test_windows_view_matches_explicit_slices(backend, kh, kw, sh, sw):
    host = numpy.random.default_rng(0).standard_normal((2, 7, 6, 3))
    win = backend.to_host(backend.windows(backend.asarray(host), kh, kw, sh, sw))
    ho, wo = (7 - kh) // sh + 1, (6 - kw) // sw + 1
    assert win.shape == (2, ho, wo, kh, kw, 3)
    for i in range(ho):
        for j in range(wo):
            numpy.testing.assert_array_equal(win[:, i, j], host[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :])


def test_floatx_policy():
    from gpuprop import config

    assert config.floatx() == "float32"
    with pytest.raises(ValueError):
        config.set_floatx("float8")


# Files that hold array math on device arrays: they must reach numpy/cupy only through the backend.
_MATH_DIRS = ["layers", "optimizers"]
_MATH_FILES = ["ops.py", "losses.py", "metrics.py", "training.py", "models/network.py", "models/sequential.py"]


def test_layer_loss_optimizer_code_never_imports_an_array_library():
    files = [p for d in _MATH_DIRS for p in (ROOT / d).glob("*.py")] + [ROOT / f for f in _MATH_FILES]
    offenders = []
    for path in files:
        text = path.read_text()
        if re.search(r"^\s*(import|from)\s+(numpy|cupy)\b", text, re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_only_the_cupy_backend_imports_cupy():
    # backend/sim/names.py reads CuPy's name lists where CuPy is installed; the benchmarks time CuPy itself.
    importers = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if re.search(r"^\s*(import|from)\s+cupy\b", p.read_text(), re.M) and "benchmarks" not in p.parts}
    assert importers == {"backend/cupy.py", "backend/sim/names.py"}


def test_every_array_function_the_code_calls_exists_in_cupy():
    # The rule: only functions NumPy and CuPy both provide. Checkable wherever CuPy imports, GPU or not
    # (CI's second environment has the gpu extra).
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed; checked where it is")
    used = {m.group(1) for p in ROOT.rglob("*.py")
            for m in re.finditer(r"\bxp\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)", p.read_text())}
    assert {"matmul", "exp", "lib.stride_tricks.as_strided", "add.reduce"} <= used  # the scan finds what it should
    missing = []
    for name in sorted(used):
        obj = cupy
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(name)
    assert not missing, f"CuPy {cupy.__version__} lacks {missing}"


def test_keras_backend_helpers_answer_as_keras_does():
    """`from gpuprop import backend as K; K.image_data_format()` as in Keras (Keras 3 itself is the oracle)."""
    from gpuprop import backend as K
    from gpuprop import config
    from tests.keras_oracle import keras

    assert K.image_data_format() == "channels_last"
    assert K.floatx() == "float32" and K.epsilon() == 1e-7
    K.set_floatx("float64")
    try:
        assert config.floatx() == "float64" and K.floatx() == "float64"  # one policy, gpuprop.config's
    finally:
        K.set_floatx("float32")
    with pytest.raises(ValueError, match="float16"):
        K.set_floatx("float16")
    k = keras()
    assert (K.image_data_format(), K.floatx(), K.epsilon()) == \
        (k.backend.image_data_format(), k.backend.floatx(), k.backend.epsilon())
