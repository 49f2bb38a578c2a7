"""Six programs in the style of the Keras examples and TensorFlow tutorials, run as subprocesses.

Each program in tests/keras_programs/ is plain Keras code that names the
library ``keras``; it runs here with ``import gpuprop as keras`` in front
and prints Keras-format progress lines and a RESULT line of facts. Where
Keras 3 imports (KERAS_BACKEND=torch), the same program also runs on Keras
itself, and the epochs trained, the callbacks' decisions and the shapes of
the printed lines are compared.
"""

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each runs whole programs, on gpuprop and on Keras 3

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = os.path.join(REPO, "tests", "keras_programs")
NAMES = sorted(f[:-3] for f in os.listdir(PROGRAMS) if f.endswith(".py"))
HEADERS = {"gpuprop": "import gpuprop as keras\n", "keras": "import keras\n"}


def run_program(name, library, tmp_path):
    folder = tmp_path / library
    folder.mkdir()
    source = open(os.path.join(PROGRAMS, name + ".py")).read()
    (folder / "prog.py").write_text(HEADERS[library] + source)
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="torch", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "prog.py"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{name} on {library} failed:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
    return result, lines


PROGRESS = re.compile(r"^(Epoch \d+/\d+|\s*\d+/\d+ - .*|Epoch \d+: .*|Restoring model weights .*)$")


def shapes(lines):
    """The progress lines with every number (and the time unit: us, ms or s per step) replaced by #."""
    return [re.sub(r"#(us|ms|s)/step", "#/step", re.sub(r"\d+(\.\d+)?(e[-+]\d+)?", "#", line.strip()))
            for line in lines if PROGRESS.match(line)]


# What each program's RESULT must say (Keras' documented behaviour).
EXPECTED = {
    "mlp_dropout_rmsprop": {"epochs": 3, "keys": ["accuracy", "loss", "val_accuracy", "val_loss"], "score_len": 2,
                            "good": True},
    "convnet_validation_split": {"epochs": 3, "keys": ["accuracy", "loss", "val_accuracy", "val_loss"], "steps": 12},
    "batchnorm_early_stopping": {"stopped": True, "epochs_after_best": 2, "restored_best": True},
    "checkpoint_best": {"best_matches": True, "files": True},
    "fit_twice": {"n_weights": 4, "params": 57, "first": [0, 1], "second": [0, 1], "third": [1, 2]},
    "freeze_layer": {"frozen_moved": 0.0, "head_moved": True, "trainable": 2, "non_trainable": 2},
}


def test_there_are_at_least_six_programs():
    assert len(NAMES) >= 6 and set(NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_program_runs_on_gpuprop_as_on_keras(name, tmp_path):
    result, lines = run_program(name, "gpuprop", tmp_path)
    assert result == EXPECTED[name]
    epoch_lines = [line for line in lines if re.match(r"^Epoch \d+/\d+$", line)]
    step_lines = [line for line in lines if re.match(r"^\s*\d+/\d+ - \d+s - \d+(ms|us|s)/step", line)]
    assert epoch_lines and len(step_lines) >= len(epoch_lines)


@pytest.mark.parametrize("name", NAMES)
def test_program_matches_keras(name, tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="keras is not installed: the Keras-oracle comparison cannot run")
    ours, our_lines = run_program(name, "gpuprop", tmp_path)
    theirs, their_lines = run_program(name, "keras", tmp_path)
    assert ours == theirs
    if name == "batchnorm_early_stopping":  # the stopping epoch depends on the weights each library draws
        assert set(shapes(our_lines)) == set(shapes(their_lines))
    else:
        assert shapes(our_lines) == shapes(their_lines)
