"""Keras programs using this issue's surface, run with ``import gpuprop as keras`` and on Keras 3 itself.

The harness is tests/test_keras_programs.py's (``run_program``): a subprocess with the library's import
in front of plain Keras code. One difference is written into the program as CHECKPOINT_NAME: gpuprop
takes Keras 2's ``model.weights.best.hdf5``, which Keras 3 refuses, so the Keras run names its
checkpoint ``.weights.h5``; everything else is the same program, and both must print the same RESULT.
"""

import os

import pytest

pytestmark = pytest.mark.slow  # each runs whole programs, on gpuprop and on Keras 3

from tests import test_keras_programs as harness

PROGRAMS = os.path.join(harness.REPO, "tests", "keras_surface_programs")
NAMES = sorted(f[:-3] for f in os.listdir(PROGRAMS) if f.endswith(".py"))
CHECKPOINT = {"gpuprop": "model.weights.best.hdf5", "keras": "model.weights.best.weights.h5"}

EXPECTED = {
    "keras2_style_checkpoint": {
        "keys": ["categorical_accuracy", "loss", "top_k_categorical_accuracy", "val_categorical_accuracy", "val_loss",
                 "val_top_k_categorical_accuracy"],
        "best_reloaded": True, "reopened_same": [True, True], "reopened_optimizer": ["Adadelta", "Adadelta"],
        "per_sample_shape": [20], "softmax_rows_sum_to_1": True},
}


def _run(name, library, tmp_path, monkeypatch):
    source = open(os.path.join(PROGRAMS, name + ".py")).read()
    staged = tmp_path / "programs"
    staged.mkdir(exist_ok=True)
    (staged / f"{name}.py").write_text(f"CHECKPOINT_NAME = {CHECKPOINT[library]!r}\n" + source)
    monkeypatch.setattr(harness, "PROGRAMS", str(staged))
    return harness.run_program(name, library, tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_program_runs_on_gpuprop_as_on_keras(name, tmp_path, monkeypatch):
    ours, _ = _run(name, "gpuprop", tmp_path, monkeypatch)
    files = ours.pop("files")
    assert ours == EXPECTED[name]
    assert files == ["model.h5", "model.keras", "model.weights.best.hdf5"]
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="keras is not installed: the Keras-oracle comparison cannot run")
    theirs, _ = _run(name, "keras", tmp_path, monkeypatch)
    theirs.pop("files")
    assert theirs == ours
