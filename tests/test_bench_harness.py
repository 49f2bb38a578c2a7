"""The research harness in bench/ (not installed): its CLI writes a sane JSON document, its statistics
are right, paired rounds and scaling points run through real worker processes.

No timing is asserted: speed depends on the machine; only structure and positivity are.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))  # the harness is a development tool: bench/harness

from harness import derived, report, runner, stats, workloads  # noqa: E402


def _cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, os.path.join("bench", "run.py"), *args], check=False, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.mark.slow
def test_cli_quick_softmax_json(tmp_path):
    out = tmp_path / "partial.json"
    res = _cli("--quick", "--workload", "softmax", "--device", "cpu", "--json", "--repeats", "1",
               "--peers", "none", "--out", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == runner.SCHEMA
    for key in ("cpu", "cores", "python", "numpy", "numpy_blas", "torch", "jax", "cupy", "gpu", "date"):
        assert key in doc["machine"]
    assert doc["ceilings"]["cpu"]["gflops"] > 0
    (rec,) = doc["records"]
    assert (rec["workload"], rec["device"], rec["framework"], rec["status"]) == ("softmax", "cpu", "gpuprop", "ok")
    for key in ("ms_per_step", "samples_per_s", "gflops", "gflop_per_step", "ceiling_fraction"):
        assert rec[key] > 0, key
    assert rec["samples_per_s"] == pytest.approx(32 / (rec["ms_per_step"] / 1000))
    assert math.isfinite(rec["first_loss"]) and rec["first_loss"] > 0
    assert json.loads(out.read_text())["records"][0]["ms_per_step"] == rec["ms_per_step"]
    assert "softmax" in res.stderr  # the table went to stderr


def test_cli_rejects_unknown_workload():
    res = _cli("--workload", "nope", "--device", "cpu")
    assert res.returncode != 0
    assert "unknown workload" in res.stderr


def test_median_and_quantiles_match_numpy():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    assert stats.median(values) == pytest.approx(numpy.median(values))
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert stats.quantile(values, q) == pytest.approx(numpy.quantile(values, q))
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)


def test_summarize_spread_ratio_geomean():
    s = stats.summarize([0.002, 0.001, 0.003])
    assert s["ms_per_step"] == pytest.approx(2.0)
    assert (s["ms_min"], s["ms_max"]) == pytest.approx((1.0, 3.0))
    assert s["spread"] == pytest.approx(1.0)  # (3 − 1) / 2
    assert stats.ratio(6.0, 3.0) == 2.0
    assert stats.ratio(1.0, 0.0) is None and stats.ratio(None, 1.0) is None
    assert stats.geomean([2.0, 8.0]) == pytest.approx(4.0)


def test_flops_follow_the_documented_formula():
    soft = workloads.WORKLOADS["softmax"]
    assert workloads.flops_per_step(soft) == 2 * 32 * 784 * 10 * 2  # first layer: no dx
    mlp = workloads.WORKLOADS["mlp"]
    b = 128
    assert workloads.flops_per_step(mlp) == 2 * b * (784 * 512 * 2 + 512 * 512 * 3 + 512 * 10 * 3)
    cnn = workloads.WORKLOADS["cnn"]
    g = workloads.gemms(cnn)
    assert g[0] == (128 * 26 * 26, 9 * 1, 32, 2)  # conv1 as im2col GEMM, no dx
    assert g[1] == (128 * 11 * 11, 9 * 32, 64, 3)
    assert g[2] == (128, 5 * 5 * 64, 128, 3)
    assert workloads.count_params(mlp) == 784 * 512 + 512 + 512 * 512 + 512 + 5130


def test_select_and_peers():
    assert [w.name for w in workloads.select(["mlp,softmax", "mlp"])] == ["mlp", "softmax"]
    assert all(w.quick for w in workloads.select(None, quick=True))
    with pytest.raises(ValueError):
        workloads.select(["nope"])
    assert runner.parse_peers("none") == ()
    assert runner.parse_peers("torch, jax") == ("torch", "jax")
    assert runner.frameworks_for("gpu", ("torch",)) == ["gpuprop", "torch", "torch-compile"]
    assert runner.frameworks_for("cpu", ("torch", "jax")) == ["gpuprop", "torch", "jax"]
    with pytest.raises(ValueError):
        runner.parse_peers("tensorflow")


def test_finish_derives_ratios_and_targets():
    doc = {"settings": {"devices": ["cpu"], "workloads": ["mlp"]}, "ceilings": {"cpu": {"gflops": 100.0}},
           "records": [
               {"workload": "mlp", "device": "cpu", "framework": "gpuprop", "status": "ok", "kind": "step",
                "ms_per_step": 2.0, "samples_per_s": 64000.0, "gflop_per_step": 0.1, "first_loss": 2.3},
               {"workload": "mlp", "device": "cpu", "framework": "torch", "status": "ok", "kind": "step",
                "ms_per_step": 4.0, "samples_per_s": 32000.0, "gflop_per_step": 0.1, "first_loss": 2.3001}]}
    derived.finish(doc)
    g, t = doc["records"]
    assert g["gflops"] == pytest.approx(50.0) and g["ceiling_fraction"] == pytest.approx(0.5)
    assert t["gpuprop_ratio"] == pytest.approx(2.0) and g["vs"] == {"torch": pytest.approx(2.0)}
    assert t["first_loss_diff"] == pytest.approx(1e-4)
    (mlp_target,) = [r for r in report.target_results(doc) if r[0].startswith("MLP")]
    assert mlp_target[2:] == (pytest.approx(2.0), 1.1, True)
    assert "mlp" in report.summary(doc)


def test_table_shows_failures_and_disturbed_rows():
    doc = {"settings": {"devices": ["cpu"], "workloads": ["mlp", "cnn"]},
           "ceilings": {"cpu": {"gflops": 100.0, "sizes": [{"m": 8, "k": 8, "n": 8, "gflops": 100.0}]}},
           "records": [
               {"workload": "cnn", "device": "cpu", "framework": "gpuprop", "status": "n/a", "kind": "step",
                "batch": 128, "reason": "ImportError: no Conv2D"},
               {"workload": "mlp", "device": "cpu", "framework": "gpuprop", "status": "ok", "kind": "step",
                "batch": 128, "ms_per_step": 2.0, "samples_per_s": 64000.0, "gflop_per_step": 0.1,
                "spread": 0.05, "other_cpu_pct": 60.0}]}
    derived.finish(doc)
    text = report.table(doc)
    lines = text.splitlines()
    assert lines[2].startswith("mlp") and "gpuprop*" in lines[2]  # rows follow the workload order
    assert "n/a: ImportError: no Conv2D" in lines[3]
    assert "unreliable" in text


def test_memory_probe_reports_a_positive_peak():
    from harness import memory

    m = memory.probe("softmax", "gpuprop", "cpu", steps=2)
    assert m["peak_host_mb"] >= m["host_baseline_mb"] > 0
    assert m["host_delta_mb"] >= 0


@pytest.mark.slow
def test_cli_pairs_repeats_with_the_peer():
    """gpuprop and torch take turns: each peer round's ratio comes from adjacent repeats."""
    pytest.importorskip("torch")
    res = _cli("--quick", "--workload", "softmax", "--device", "cpu", "--json", "--repeats", "3", "--peers", "torch")
    assert res.returncode == 0, res.stderr
    recs = {r["framework"]: r for r in json.loads(res.stdout)["records"]}
    mine, peer = recs["gpuprop"], recs["torch"]
    assert mine["paired"] and peer["paired"] and mine["status"] == peer["status"] == "ok"
    rounds = peer["paired_rounds"]
    assert len(rounds) == 3 == len(mine["repeat_ms"]) == len(peer["repeat_ms"])
    for r, p, g in zip(rounds, peer["repeat_ms"], mine["repeat_ms"]):
        assert r == pytest.approx(p / g)
    assert peer["gpuprop_ratio"] == pytest.approx(stats.median(rounds))
    assert peer["first_loss"] == pytest.approx(mine["first_loss"], rel=1e-5)
    assert "(paired)" in res.stderr


def test_paired_worker_times_steps_and_the_ceiling_gemm_on_request():
    """The live worker's protocol, end to end in a real subprocess: setup, a timed repeat, a GEMM, done."""
    from harness.paired import Worker

    w = Worker("cpu", "gpuprop")
    try:
        kind, ready = w.ask("SETUP softmax 1")
        assert kind == "READY" and ready["one_step_s"] > 0 and math.isfinite(ready["first_loss"])
        kind, rep = w.ask("REPEAT softmax 5")
        assert kind == "TIME" and rep["s"] > 0
        kind, gemm = w.ask("GEMM 64 32 16 3")
        assert kind == "TIME" and gemm["s"] > 0
        assert w.ask("REPEAT nope 1")[0] == "FAIL"  # unknown workload: one reply, the worker lives on
        assert w.ask("DONE softmax")[0] == "END"
    finally:
        w.close()
    assert w.proc.returncode == 0


@pytest.mark.slow
def test_scaling_points_are_timed_in_turns_with_the_peer():
    """Two small scaling points through real worker processes: figures, epoch arithmetic, the paired ratio."""
    from harness import scaling

    peers = ("torch",) if importlib.util.find_spec("torch") else ()
    pts = [("batch", 32, 64), ("width", 64, 32)]
    doc = scaling.run("cpu", quick=True, peers=peers, log=lambda msg: None, points=pts)
    assert doc["settings"]["paired"] and not [s for s in doc["skipped"] if "gpuprop" in s]
    mine = [p for p in doc["points"] if p["framework"] == "gpuprop"]
    assert [(p["sweep"], p["batch"], p["width"]) for p in mine] == pts
    for p in doc["points"]:
        assert p["ms_per_step"] > 0
        assert math.isclose(p["epoch_s"], p["ms_per_step"] / 1000 * math.ceil(60000 / p["batch"]))
    for p in doc["points"]:
        if p["framework"] != "gpuprop":
            assert p["gpuprop_ratio"] > 0
    text = scaling.markdown(doc)
    assert "| 32 |" in text and ("gpuprop÷torch cpu" in text) == bool(peers)


def test_a_negative_loop_cost_is_called_noise_not_printed_as_a_saving():
    """Rough edge: `bench --quick` printed "the loop adds -15.21 s (-32 % of the epoch)". An epoch timed
    faster than its bare steps says the two figures' noise exceeds the loop's cost, and the line says so."""
    doc = {"settings": {"devices": ["cpu"], "workloads": ["epoch"]}, "ceilings": {},
           "records": [{"workload": "epoch", "device": "cpu", "framework": "gpuprop", "status": "ok", "kind": "epoch",
                        "batch": 128, "ms_per_step": 100.0, "samples_per_s": 1280.0, "gflop_per_step": 0.1,
                        "epoch_s": 46.9, "steps": 469, "steps_sum_s": 62.1, "step_ms": 132.5,
                        "loop_overhead_s": -15.21, "loop_overhead_pct": -32.4}]}
    derived.finish(doc)
    text = report.table(doc)
    assert "adds -" not in text and "-32 %" not in text
    assert "within the noise" in text
