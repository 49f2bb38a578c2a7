"""``Sequential.fit`` under ``mpiexec -n N python script.py``: sync BN, dropout streams, world facts.

Each test writes a small script, runs it as real MPI ranks and as one plain
process (the oracle), and compares what rank 0 saved.
"""

import json
import subprocess
import sys
import textwrap

import numpy
import pytest

from tests.test_cli import REPO
from tests.test_distributed import TIMEOUT, mpi, rank_env  # noqa: F401 - the fixture

SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from gpuprop import Sequential, config, distributed, optimizers
    from gpuprop.layers import BatchNormalization, Dense, Dropout

    mode, out = sys.argv[1], sys.argv[2]
    # gpu-sim: CuPy code on the CPU stand-in, one simulated GPU per rank (host-staged MPI: the stand-in has no NCCL)
    device = f"gpu-sim:{distributed.local_rank()}" if sys.argv[3:] == ["gpu-sim"] else "cpu"
    config.set_floatx("float64")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(130, 6)), rng.integers(0, 3, 130)  # 5·24 + 10: a last batch to split
    xv, yv = rng.normal(size=(50, 6)), rng.integers(0, 3, 50)
    body = [Dense(16, input_shape=(6,), activation="relu")]
    if mode in ("bn", "sync"):
        body.append(BatchNormalization(synchronized=mode == "sync", momentum=0.9))
    if mode == "dropout":
        body.append(Dropout(0.5))
    model = Sequential(body + [Dense(3, activation="softmax")], device=device, seed=5)
    model.compile(optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
    masks = []
    if mode == "dropout":
        forward = model.layers[1].forward
        def spy(x, training=False):
            y = forward(x, training=training)
            if training and len(masks) < 2:
                masks.append(np.asarray(model.layers[1]._mask).tolist())
            return y
        model.layers[1].forward = spy
    if mode == "fail":
        def explode(epoch, logs, stats):
            if distributed.rank() == 1:
                raise RuntimeError("disk full on rank 1")
        history = model.fit(x, y, batch_size=24, epochs=50, verbose=0, callbacks=[explode])
    extra = []
    if mode == "stop":
        from gpuprop.callbacks import Callback

        class StopOnRank1(Callback):  # one rank alone decides, mid-epoch
            def on_train_batch_end(self, batch, logs=None):
                if distributed.rank() == 1 and batch == 2:
                    self.model.stop_training = True

        extra = [StopOnRank1()]
    spe = 4 if mode == "spe" else None  # 6 batches a pass: epochs of 4, 2 and 4 steps
    history = model.fit(x, y, batch_size=24, epochs=3, verbose=0, validation_data=(xv, yv), callbacks=extra,
                        steps_per_epoch=spe)
    facts_steps = [s["steps"] for s in history.stats]
    w = distributed.world()
    facts = {"size": w.size, "rank": w.rank, "local_rank": w.local_rank, "masks": masks, "steps": facts_steps,
             "iterations": model.optimizer.iterations}
    gathered = w.allgather(facts)
    if w.rank == 0:
        np.savez(out + ".npz", *model.get_weights())
        with open(out + ".json", "w") as f:
            json.dump({"history": history.history, "ranks": gathered}, f)
''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def run(script, mode, out, mpi=None, n=1, timeout=TIMEOUT, device="cpu"):
    cmd = [sys.executable, str(script), mode, str(out), device]
    if mpi:
        cmd = [mpi, "-n", str(n), *cmd]
    proc = subprocess.run(cmd, cwd=REPO, env=rank_env(), capture_output=True, text=True, timeout=timeout)
    return proc


def load(out):
    with numpy.load(f"{out}.npz") as f:
        weights = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    with open(f"{out}.json") as f:
        return weights, json.load(f)


def max_rel(a, b):
    return max(float(numpy.max(numpy.abs(x - y))) / max(float(numpy.max(numpy.abs(x))), 1e-300) for x, y in zip(a, b))


@pytest.mark.parametrize("n", [2, 3])
def test_synchronized_batchnorm_on_n_ranks_equals_one_process(mpi, script, tmp_path, n):
    """Weights (moving statistics included) and every logged metric within 1e-10 of the one-process run.

    With 3 ranks the last batch of 10 splits 4/3/3: statistics and gradients are weighted by sample counts.
    """
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(script, "sync", one).returncode == 0
    proc = run(script, "sync", two, mpi, n)
    assert proc.returncode == 0, proc.stderr
    (w1, h1), (w2, h2) = load(one), load(two)
    assert len(w1) == 2 + 4 + 2 and max_rel(w1, w2) <= 1e-10
    for k, v in h1["history"].items():
        assert h2["history"][k] == pytest.approx(v, rel=1e-10), k
    assert [r["size"] for r in h2["ranks"]] == [n] * n and [r["rank"] for r in h2["ranks"]] == list(range(n))
    assert [r["local_rank"] for r in h2["ranks"]] == list(range(n))  # one machine


def test_per_rank_batchnorm_is_the_default_and_differs(mpi, script, tmp_path):
    """Without synchronized=True each rank normalises by its own slice (as DDP): not the one-process numbers."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(script, "bn", one).returncode == 0
    proc = run(script, "bn", two, mpi, 2)
    assert proc.returncode == 0, proc.stderr
    assert max_rel(load(one)[0], load(two)[0]) > 1e-6


def test_dropout_streams_differ_across_ranks_and_repeat(mpi, script, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        proc = run(script, "dropout", out, mpi, 2)
        assert proc.returncode == 0, proc.stderr
    (wa, ha), (wb, hb) = load(a), load(b)
    assert max_rel(wa, wb) == 0.0  # the same run twice: bitwise the same
    masks = [r["masks"] for r in ha["ranks"]]
    assert numpy.asarray(masks[0]).shape == numpy.asarray(masks[1]).shape == (2, 12, 16)
    assert masks[0] != masks[1]  # rank 0 and rank 1 drop different units
    assert 0.3 < numpy.mean(masks[0]) / 2 < 0.7  # kept units are scaled by 1/(1 - 0.5) = 2


def test_an_exception_on_one_rank_ends_the_job_with_its_rank_and_cause(mpi, script, tmp_path):
    """The except hook aborts the world: rank 0 (blocked in the next allreduce) does not hang."""
    proc = run(script, "fail", tmp_path / "x", mpi, 2, timeout=10 + 20)  # 10 s after the failure, plus start-up
    assert proc.returncode != 0
    assert "error: rank 1: RuntimeError: disk full on rank 1" in proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr


def test_a_stop_decided_on_one_rank_stops_every_rank_after_the_same_step(mpi, script, tmp_path):
    """stop_training set by rank 1 alone at batch 2: both ranks stop after step 3 (no rank waits forever)."""
    proc = run(script, "stop", tmp_path / "s", mpi, 2)
    assert proc.returncode == 0, proc.stderr
    ranks = load(tmp_path / "s")[1]["ranks"]
    assert [r["steps"] for r in ranks] == [[3], [3]]
    assert [r["iterations"] for r in ranks] == [3, 3]


def test_the_gpu_code_path_on_gpu_sim_two_ranks_equal_one(mpi, script, tmp_path):
    """CuPy code (gpu-sim stand-in, gpu-sim:0 and gpu-sim:1), gradients and sync-BN sums staged through host MPI."""
    one, two = tmp_path / "one", tmp_path / "two"
    proc = run(script, "sync", one, device="gpu-sim")
    assert proc.returncode == 0, proc.stderr
    proc = run(script, "sync", two, mpi, 2, device="gpu-sim")
    assert proc.returncode == 0, proc.stderr
    (w1, h1), (w2, h2) = load(one), load(two)
    assert max_rel(w1, w2) <= 1e-10
    for k, v in h1["history"].items():
        assert h2["history"][k] == pytest.approx(v, rel=1e-10), k


def test_steps_per_epoch_on_two_ranks_equals_one_process(mpi, script, tmp_path):
    """A data pass spanning epochs (Keras' steps_per_epoch) is the same global schedule on every rank."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(script, "spe", one).returncode == 0
    proc = run(script, "spe", two, mpi, 2)
    assert proc.returncode == 0, proc.stderr
    (w1, h1), (w2, h2) = load(one), load(two)
    assert max_rel(w1, w2) <= 1e-10
    assert h1["ranks"][0]["steps"] == [4, 2, 4] and [r["steps"] for r in h2["ranks"]] == [[4, 2, 4]] * 2
    assert [r["iterations"] for r in h2["ranks"]] == [10, 10]
    for k, v in h1["history"].items():
        assert h2["history"][k] == pytest.approx(v, rel=1e-10), k


GRAPH_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from gpuprop import Input, Model, config, distributed, optimizers
    from gpuprop.layers import Concatenate, Dense

    out = sys.argv[1]
    config.set_floatx("float64")
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(70, 4)), rng.normal(size=(70, 3))
    score, kind = rng.normal(size=(70, 1)), rng.integers(0, 3, 70)
    a, b = Input((4,), name="a"), Input((3,), name="b")
    h = Concatenate()([Dense(8, activation="tanh")(a), b])
    model = Model([a, b], [Dense(1, name="score")(h), Dense(3, activation="softmax", name="kind")(h)], seed=3)
    model.compile(optimizers.Adam(0.01), ["mse", "sparse_categorical_crossentropy"], loss_weights=[0.5, 1.0],
                  metrics=[[], ["accuracy"]])
    history = model.fit([xa, xb], [score, kind], batch_size=16, epochs=2, verbose=0,
                        sample_weight=rng.uniform(0.5, 2.0, 70))
    if distributed.rank() == 0:
        np.savez(out + ".npz", *model.get_weights())
        with open(out + ".json", "w") as f:
            json.dump({"history": history.history, "ranks": [{}]}, f)
''')


def test_a_functional_two_output_model_on_two_ranks_equals_one_process(mpi, tmp_path):
    """Functional models average their gradients over the ranks too (weighted losses of two outputs)."""
    script = tmp_path / "graph.py"
    script.write_text(GRAPH_SCRIPT)
    outs = []
    for name, cmd in (("one", [sys.executable]), ("two", [mpi, "-n", "2", sys.executable])):
        out = tmp_path / name
        proc = subprocess.run([*cmd, str(script), str(out)], cwd=REPO, env=rank_env(), capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        outs.append(load(out))
    (w1, h1), (w2, h2) = outs
    assert max_rel(w1, w2) <= 1e-10
    for k, v in h1["history"].items():
        assert h2["history"][k] == pytest.approx(v, rel=1e-10), k
