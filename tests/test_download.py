"""Downloads against a real HTTP server on 127.0.0.1 (no network, no mocks)."""

import dataclasses
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gpuprop.datasets import mnist, sources
from gpuprop.errors import DataError
from tests.idx_files import FILE_NAMES, fake_mnist_arrays, isolate_data_env, sha256_of_files, write_fake_mnist


class Server:
    """Serves ``files`` by name; ``modes[name]`` (or ``modes['*']``) picks a fault."""

    def __init__(self, files):
        self.files, self.modes, self.requests = files, {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(self.path)
                mode = server.modes.get(name, server.modes.get("*", "ok"))
                body = server.files.get(name)
                if body is None or mode == "error":
                    self.send_error(404 if body is None else 500)
                    return
                if mode == "hang":
                    time.sleep(1.5)
                if mode == "mismatch":
                    body = body[:-1] + bytes([body[-1] ^ 1])
                self.send_response(200)
                extra = 1000 if mode == "truncate" else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.close_connection = True
                try:
                    self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)
                except OSError:  # the client gave up (timeout test): expected
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        # A short poll interval keeps shutdown() (hence each test) fast.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def env(monkeypatch, tmp_path):
    cache, _ = isolate_data_env(monkeypatch, tmp_path / "env")
    return cache


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server with a fake MNIST, a spec holding its checksums, and the mirror env set."""
    src = write_fake_mnist(tmp_path / "src", n_train=30, n_test=10, seed=7)
    server = Server({n: (src / n).read_bytes() for n in FILE_NAMES})
    spec = dataclasses.replace(mnist.SPEC, files=sha256_of_files(src))
    monkeypatch.setenv("GPUPROP_MNIST_MIRROR", server.url)
    yield server, spec
    server.close()


def _listing(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_loads_arrays_and_fills_cache(env, served):
    server, spec = served
    (x_train, y_train), (x_test, y_test) = mnist.load_spec(spec, progress=False)
    (ex, ey), (tx, ty) = fake_mnist_arrays(30, 10, seed=7)
    np.testing.assert_array_equal(x_train, ex)
    np.testing.assert_array_equal(y_train, ey)
    np.testing.assert_array_equal(x_test, tx)
    np.testing.assert_array_equal(y_test, ty)
    assert _listing(env / "mnist") == sorted(FILE_NAMES)
    assert len(server.requests) == 4
    mnist.load_spec(spec, progress=False)  # second load: from the cache
    assert len(server.requests) == 4


def test_only_missing_files_are_fetched(env, served):
    server, spec = served
    (env / "mnist").mkdir(parents=True)
    (env / "mnist" / FILE_NAMES[0]).write_bytes(server.files[FILE_NAMES[0]])
    mnist.load_spec(spec, progress=False)
    assert sorted(r.rsplit("/", 1)[-1] for r in server.requests) == sorted(FILE_NAMES[1:])


@pytest.mark.parametrize("mode,pattern", [
    ("mismatch", "SHA-256 mismatch"),
    ("truncate", "truncated download, got .* of .* bytes|connection lost"),
    ("error", "HTTP 500"),
])
def test_failures_raise_and_leave_nothing(env, served, mode, pattern):
    server, spec = served
    server.modes["*"] = mode
    with pytest.raises(DataError, match=pattern) as info:
        mnist.load_spec(spec, progress=False)
    msg = str(info.value)
    assert msg.startswith("cannot load MNIST: not found locally and the download failed: ")
    assert server.url + "/" + FILE_NAMES[0] in msg
    assert "GPUPROP_MNIST_MIRROR" in msg and "--data-dir" in msg
    assert _listing(env / "mnist") == []


def test_later_failure_keeps_verified_files_but_no_partial_one(env, served):
    server, spec = served
    server.modes[FILE_NAMES[2]] = "truncate"
    with pytest.raises(DataError, match=FILE_NAMES[2]):
        mnist.load_spec(spec, progress=False)
    assert _listing(env / "mnist") == sorted(FILE_NAMES[:2])
    del server.modes[FILE_NAMES[2]]
    mnist.load_spec(spec, progress=False)  # the rerun finishes the job
    assert _listing(env / "mnist") == sorted(FILE_NAMES)


def test_canonical_checksums_still_apply_to_an_overridden_mirror(env, served):
    # The fake files are served where the real MNIST is expected: refused.
    with pytest.raises(DataError, match="SHA-256 mismatch.*expected 440fcabf73cc546f"):
        mnist.load_data(progress=False)
    assert _listing(env / "mnist") == []


def test_next_mirror_is_tried_after_a_failure(env, served, monkeypatch):
    server, spec = served
    monkeypatch.delenv("GPUPROP_MNIST_MIRROR")
    spec = dataclasses.replace(spec, mirrors=(server.url + "/missing", server.url))
    mnist.load_spec(spec, progress=False)
    assert _listing(env / "mnist") == sorted(FILE_NAMES)
    assert server.requests[0] == "/files/missing/" + FILE_NAMES[0]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(env, monkeypatch, served):
    _, spec = served
    monkeypatch.setenv("GPUPROP_MNIST_MIRROR", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(DataError, match="cannot connect"):
        mnist.load_spec(spec, progress=False)
    assert _listing(env / "mnist") == []


def test_timeout(env, served, tmp_path):
    server, spec = served
    server.modes["*"] = "hang"
    with pytest.raises(DataError, match="timed out|no data for 0.3 s"):
        sources.fetch(spec, tmp_path / "out", progress=False, timeout=0.3)
    assert _listing(tmp_path / "out") == []


def test_progress_bar_and_hook(env, served, capsys, tmp_path):
    _, spec = served
    sources.fetch(spec, tmp_path / "a", progress=True)
    err = capsys.readouterr().err
    assert "downloading train-images-idx3-ubyte.gz [" in err and err.count("\n") == 4
    calls = []
    sources.fetch(spec, tmp_path / "b", progress=lambda *a: calls.append(a))
    done = [c for c in calls if c[0] == FILE_NAMES[0]]
    assert done[0][1] == 0 and done[-1][1] == done[-1][2] > 0
    sources.fetch(spec, tmp_path / "c")  # default: stderr is not a TTY under pytest
    assert capsys.readouterr().err == ""
