import os
from pathlib import Path

import numpy as np
import pytest

from gpuprop import datasets
from gpuprop.datasets import fashion_mnist, mnist, sources
from gpuprop.errors import DataError
from tests.idx_files import FILE_NAMES, fake_mnist_arrays, idx_bytes, isolate_data_env, write_fake_mnist


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    cache, system = isolate_data_env(monkeypatch, tmp_path / "env")
    return cache, system


def _seed_of(result):
    """Identify which fake set was loaded: each place below is written with its own seed."""
    (x_train, _), _ = result
    for seed in range(10):
        (xs, _), _ = fake_mnist_arrays(20, 10, seed=seed)
        if np.array_equal(xs, x_train):
            return seed
    raise AssertionError("unknown data")


def test_get_is_lenient_and_lists_names():
    assert datasets.get("mnist") is mnist
    for name in ("fashion-mnist", "fashion_mnist", "Fashion MNIST", "FASHIONMNIST"):
        assert datasets.get(name) is fashion_mnist
    with pytest.raises(DataError, match="unknown dataset 'cifar'; known datasets: mnist, fashion-mnist"):
        datasets.get("cifar")
    assert datasets.names() == ["mnist", "fashion-mnist"]


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_data_dir_gz_or_raw(tmp_path, gz):
    write_fake_mnist(tmp_path / "d", n_train=20, n_test=10, gzip=gz, seed=3)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(data_dir=str(tmp_path / "d"))
    (ex, ey), (tx, ty) = fake_mnist_arrays(20, 10, seed=3)
    for got, want in ((x_train, ex), (y_train, ey), (x_test, tx), (y_test, ty)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    assert x_train.shape == (20, 28, 28) and y_test.shape == (10,)


def test_data_dir_may_hold_a_subfolder_per_dataset(tmp_path):
    write_fake_mnist(tmp_path / "root" / "fashion-mnist", 20, 10, seed=4)
    assert _seed_of(fashion_mnist.load_data(data_dir=tmp_path / "root")) == 4


def test_search_order(tmp_path, monkeypatch, env):
    cache, system = env
    write_fake_mnist(system / "mnist", 20, 10, seed=1)
    assert _seed_of(mnist.load_data()) == 1
    write_fake_mnist(cache / "mnist", 20, 10, seed=2, gzip=False)
    assert _seed_of(mnist.load_data()) == 2  # cache beats system dir
    write_fake_mnist(tmp_path / "envdir", 20, 10, seed=3)
    monkeypatch.setenv("GPUPROP_DATA_DIR", str(tmp_path / "envdir"))
    assert _seed_of(mnist.load_data()) == 3  # env beats cache
    write_fake_mnist(tmp_path / "arg", 20, 10, seed=4)
    assert _seed_of(mnist.load_data(data_dir=tmp_path / "arg")) == 4  # argument beats env


def test_system_dirs_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("GPUPROP_SYSTEM_DATA_DIR")
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", [str(tmp_path / "a")])
    assert sources.system_dirs(mnist.SPEC) == [tmp_path / "a" / "mnist"]
    monkeypatch.setenv("GPUPROP_SYSTEM_DATA_DIR", f"{tmp_path / 'b'}{os.pathsep}{tmp_path / 'c'}")
    assert sources.system_dirs(fashion_mnist.SPEC) == [tmp_path / p / "fashion-mnist" for p in "bc"]
    monkeypatch.setenv("GPUPROP_SYSTEM_DATA_DIR", "")
    assert sources.system_dirs(mnist.SPEC) == []


def test_cache_honours_xdg_then_home(monkeypatch, tmp_path):
    assert sources.cache_dir(mnist.SPEC) == tmp_path / "env" / "xdg-cache" / "gpuprop" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.cache_dir(fashion_mnist.SPEC) == tmp_path / "home" / ".cache" / "gpuprop" / "fashion-mnist"


def test_mixed_gz_and_raw_in_one_place(tmp_path):
    d = write_fake_mnist(tmp_path / "d", 20, 10, seed=5)
    raw = d / FILE_NAMES[1][:-3]
    raw.write_bytes(idx_bytes(fake_mnist_arrays(20, 10, seed=5)[0][1]))
    (d / FILE_NAMES[1]).unlink()
    assert _seed_of(mnist.load_data(data_dir=d)) == 5


def test_explicit_data_dir_lacking_files_is_an_error_not_a_download(tmp_path, env):
    cache, system = env
    write_fake_mnist(system / "mnist", 20, 10)  # would be found if the dir fell through
    d = write_fake_mnist(tmp_path / "d", 20, 10)
    (d / FILE_NAMES[2]).unlink()
    with pytest.raises(DataError) as info:
        mnist.load_data(data_dir=d)
    msg = str(info.value)
    assert str(d) in msg and FILE_NAMES[2] in msg and FILE_NAMES[0] not in msg
    assert not cache.exists()


def test_env_data_dir_lacking_files_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUPROP_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=f"GPUPROP_DATA_DIR {tmp_path} lacks MNIST files: .*unset"):
        mnist.load_data()


def test_data_dir_that_is_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        mnist.load_data(data_dir=tmp_path / "missing")


def test_nothing_found_without_download_lists_places_and_fixes(env):
    cache, system = env
    with pytest.raises(DataError) as info:
        fashion_mnist.load_data(download=False)
    msg = str(info.value)
    assert "\n" not in msg  # one line, as the CLI prints it
    assert msg.startswith("cannot load Fashion-MNIST: not found and download=False; looked in ")
    assert str(cache / "fashion-mnist") in msg and str(system / "fashion-mnist") in msg
    for fix in ("--data-dir", "GPUPROP_DATA_DIR", "apt-get install dataset-fashion-mnist",
                "GPUPROP_FASHION_MNIST_MIRROR", "network"):
        assert fix in msg


@pytest.mark.parametrize("which,arr,pattern", [
    (0, np.zeros((20, 28, 28), np.int8), "expected nx28x28 uint8 images"),
    (1, np.full(20, 11, np.uint8), "label 11 at index 0 is outside 0..9"),
    (3, np.zeros(9, np.uint8), "holds 10 images but .* holds 9 labels"),
])
def test_dataset_faults_name_the_file(tmp_path, which, arr, pattern):
    d = write_fake_mnist(tmp_path / "d", 20, 10)
    (d / FILE_NAMES[which]).write_bytes(idx_bytes(arr))  # raw bytes under a .gz name is fine
    with pytest.raises(DataError, match=pattern) as info:
        mnist.load_data(data_dir=d)
    assert str(d / FILE_NAMES[which]) in str(info.value)


def test_corrupt_cached_file_is_reported_not_silently_replaced(env):
    cache, _ = env
    d = write_fake_mnist(cache / "mnist", 20, 10)
    (d / FILE_NAMES[0]).write_bytes((d / FILE_NAMES[0]).read_bytes()[:-10])
    with pytest.raises(DataError, match="corrupt or truncated gzip data.*download again"):
        mnist.load_data()


def test_fake_data_is_learnable():
    (x, y), (xt, yt) = fake_mnist_arrays(200, 50)
    assert set(y) == set(range(10))
    x, xt = x.reshape(len(x), -1) / 255.0, xt.reshape(len(xt), -1) / 255.0
    centroids = np.stack([x[y == c].mean(0) for c in range(10)])
    pred = np.argmin(((xt[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == yt).mean() == 1.0


REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (REAL / FILE_NAMES[0]).exists(),
                    reason=f"real Fashion-MNIST not installed at {REAL} (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_from_system_dir(monkeypatch):
    monkeypatch.setenv("GPUPROP_SYSTEM_DATA_DIR", str(REAL.parent))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(download=False)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.bincount(y_train).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert x_train.max() == 255
