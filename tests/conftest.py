"""Shared fixtures: every test that takes ``backend`` runs once per available backend.

On a machine without a GPU that is the CPU alone; with CuPy and a CUDA device
the same tests run again on the GPU. Set GPUPROP_TEST_BACKENDS=gpu to run only
the GPU (bench/gpu_check.sh does), or GPUPROP_TEST_BACKENDS=gpu-sim (or
cpu,gpu-sim) to run gpuprop's CuPy code on the CPU stand-in ``gpuprop.backend.sim``.
"""

import os
import shutil
import sys

import numpy
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpuprop import config  # noqa: E402
from gpuprop.backend import available_backends, get_backend  # noqa: E402


def _backends():
    wanted = os.environ.get("GPUPROP_TEST_BACKENDS")
    have = available_backends()
    if wanted:
        names = [b.strip() for b in wanted.split(",") if b.strip()]
        missing = [b for b in names if b not in have and not _is_sim(b)]
        if missing:
            raise RuntimeError(f"GPUPROP_TEST_BACKENDS asks for {missing} but only {have} are available")
        return names
    return have


def _is_sim(spec):
    """gpu-sim[:N] is never listed as available (the default suite stays CPU-only) but always works."""
    try:
        return get_backend(spec).name == "gpu-sim"
    except Exception:
        return False


BACKENDS = _backends()


def require_cxx():
    """gpu-sim runs the fused kernels' C++ through g++: skip, saying so, where there is none, unless
    GPUPROP_REQUIRE_CXX is set (CI sets it), which turns that skip into a failure."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        if os.environ.get("GPUPROP_REQUIRE_CXX"):
            pytest.fail("no C++ compiler although GPUPROP_REQUIRE_CXX is set")
        pytest.skip("no C++ compiler (g++) here: gpu-sim cannot run ElementwiseKernel; apt-get install g++")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """A gpuprop Backend: 'cpu', and 'gpu' when CuPy and a CUDA device are present (or those asked for).

    The test runs inside ``backend.scope()``: tests drive layers, losses and optimizers directly, and
    outside a model those allocate on CuPy's current device, as CuPy itself does (``gpu:1`` / ``gpu-sim:1``).
    """
    backend = get_backend(request.param)
    with backend.scope():
        yield backend


@pytest.fixture
def float64():
    """Run the test with floatx = float64 (gradient checks), restoring the default after."""
    old = config.floatx()
    config.set_floatx("float64")
    yield
    config.set_floatx(old)


@pytest.fixture
def rng():
    return numpy.random.default_rng(1234)


def pytest_report_header(config):
    return f"gpuprop backends under test: {', '.join(BACKENDS)}"


# --- fake MNIST for the CLI tests (tests/test_cli.py, tests/test_cli_train.py) ----------------------
@pytest.fixture
def isolated_data_env(monkeypatch, tmp_path):
    """No installed dataset, cache or mirror leaks into the test (opt in: ``usefixtures``)."""
    from tests.idx_files import isolate_data_env

    return isolate_data_env(monkeypatch, tmp_path / "env")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Fake MNIST IDX files (N_TRAIN + N_TEST images), written once per test module."""
    from tests.idx_files import N_TEST, N_TRAIN, write_fake_mnist

    return write_fake_mnist(tmp_path_factory.mktemp("fake-mnist"), N_TRAIN, N_TEST, seed=0)
