"""Every optimizer's state crosses Keras 3's files (.keras, .weights.h5) in both directions.

Oracle: Keras 3 itself (torch backend). A model trains a few steps in one library and is saved; the
other library loads the file and continues on fixed batches, and its weights must match the first
library continuing the same batches from its own state (within 1e-5: the libraries round differently,
and where they place ε differently the difference stays far below that). And gpuprop → .keras →
gpuprop must continue exactly as the .npz checkpoint does.
"""

import warnings

import numpy as np
import pytest

from gpuprop import Sequential, layers, load_model, optimizers
from tests.keras_oracle import keras

pytest.importorskip("h5py", reason="Keras' files need h5py: pip install 'gpuprop[h5]'")

# (id, class name, arguments): the same names and arguments in both libraries. RMSprop with momentum takes a
# tiny ε: gpuprop divides by √v + ε (torch), Keras by √(v + ε), and its momentum sums that difference over
# steps to ~1e-5 at the default ε, a difference of the algorithms that would hide none of the state's.
SETTINGS = [
    ("sgd", "SGD", {"learning_rate": 0.05}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    ("rmsprop_momentum", "RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "epsilon": 1e-10}),
    ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True,
                                   "epsilon": 1e-10}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adamw", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
    ("adagrad", "Adagrad", {"learning_rate": 0.05}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("adamax", "Adamax", {"learning_rate": 0.01}),
    # a large ε, so that Keras' u = gpuprop's u − ε is visible (the algorithms then differ by (1−β₂)ε a step)
    ("adamax_large_epsilon", "Adamax", {"learning_rate": 0.01, "epsilon": 0.05, "beta_2": 0.9999}),
    ("lion", "Lion", {"learning_rate": 0.003}),
]
IDS = [s[0] for s in SETTINGS]
BEFORE, AFTER = 3, 4  # steps before the save, steps after it


def _batches(n=BEFORE + AFTER):
    rng = np.random.default_rng(11)
    return [(rng.standard_normal((8, 4)).astype("float32"), rng.standard_normal((8, 3)).astype("float32"))
            for _ in range(n)]


def _ours(cls, kwargs, backend, frozen=False):
    model = Sequential([layers.Dense(6, activation="tanh", input_shape=(4,), trainable=not frozen),
                        layers.Dense(3)], device=backend, seed=0)
    model.compile(getattr(optimizers, cls)(**kwargs), "mse")
    return model


def _theirs(k, cls, kwargs, frozen=False):
    k.utils.set_random_seed(2)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(6, activation="tanh", trainable=not frozen),
                          k.layers.Dense(3)])
    model.compile(getattr(k.optimizers, cls)(**kwargs), "mse")
    return model


def _steps(model, batches):
    for x, y in batches:
        model.train_on_batch(x, y)


def _keras_weights(k, model):
    return [k.ops.convert_to_numpy(w) for w in model.weights]


def _continue_alike(k, ours, theirs, batches):
    """Both models take the same steps from the state each holds; their weights must stay within 1e-5."""
    _steps(ours, batches)
    _steps(theirs, batches)
    _close(ours.get_weights(), _keras_weights(k, theirs))


def _close(ours, theirs, atol=1e-5):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_keras_continues_what_gpuprop_saved(tmp_path, backend, cls, kwargs):
    k = keras()
    batches = _batches()
    model = _ours(cls, kwargs, backend)
    _steps(model, batches[:BEFORE])
    model.save(tmp_path / "g.keras")
    theirs = k.saving.load_model(str(tmp_path / "g.keras"))
    assert int(theirs.optimizer.iterations) == BEFORE
    assert float(theirs.optimizer.learning_rate) == pytest.approx(kwargs["learning_rate"])
    _continue_alike(k, model, theirs, batches[BEFORE:])


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_gpuprop_continues_what_keras_saved(tmp_path, backend, cls, kwargs):
    k = keras()
    batches = _batches()
    theirs = _theirs(k, cls, kwargs)
    _steps(theirs, batches[:BEFORE])
    theirs.save(str(tmp_path / "k.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the state loads: no "not loaded" warning
        ours = load_model(tmp_path / "k.keras", device=backend)
    assert ours.optimizer.iterations == BEFORE
    _continue_alike(k, ours, theirs, batches[BEFORE:])


@pytest.mark.parametrize("cls,kwargs", [s[1:] for s in SETTINGS], ids=IDS)
def test_a_keras_file_resumes_as_the_npz_checkpoint(tmp_path, backend, cls, kwargs):
    """gpuprop → .keras → gpuprop against gpuprop → .npz → gpuprop (the checkpoint keeps gpuprop's own slots):
    a converted slot is written in float64, so even it comes back bit for bit."""
    batches = _batches()
    model = _ours(cls, kwargs, backend)
    _steps(model, batches[:BEFORE])
    model.save(tmp_path / "g.keras")
    model.save(tmp_path / "g.npz")
    via_keras = load_model(tmp_path / "g.keras", device=backend)
    via_npz = load_model(tmp_path / "g.npz", device=backend)
    assert via_keras.optimizer.iterations == via_npz.optimizer.iterations == BEFORE
    assert via_keras.optimizer.learning_rate == via_npz.optimizer.learning_rate
    _steps(via_keras, batches[BEFORE:])
    _steps(via_npz, batches[BEFORE:])
    for a, b in zip(via_keras.get_weights(), via_npz.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- Nadam: gpuprop's is torch's (μₜ from 0.96^(0.004·t)), Keras' takes 0.96^t; the state is the same -----------
def test_nadam_state_written_by_gpuprop_resumes_keras_as_its_own(tmp_path, backend):
    """Keras → gpuprop → Keras: m, v, the step count and Keras' u_product come back as Keras wrote them."""
    k = keras()
    batches = _batches()
    theirs = _theirs(k, "Nadam", {"learning_rate": 0.01})
    _steps(theirs, batches[:BEFORE])
    theirs.save(str(tmp_path / "k.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = load_model(tmp_path / "k.keras", device=backend)
    ours.save(tmp_path / "g.keras")
    via_gpuprop = k.saving.load_model(str(tmp_path / "g.keras"))
    assert len(via_gpuprop.optimizer.variables) == len(theirs.optimizer.variables) == 2 + 4 * 2 + 1
    _steps(via_gpuprop, batches[BEFORE:])
    _steps(theirs, batches[BEFORE:])
    _close(_keras_weights(k, via_gpuprop), _keras_weights(k, theirs), atol=1e-6)


def test_nadam_resumed_from_keras_continues_as_torch_nadam(tmp_path, backend):
    """gpuprop continuing Keras' Nadam state against torch.optim.NAdam given that state (step, μ product, m, v)."""
    torch = pytest.importorskip("torch")
    k = keras()
    batches = _batches()
    theirs = _theirs(k, "Nadam", {"learning_rate": 0.01})
    _steps(theirs, batches[:BEFORE])
    theirs.save(str(tmp_path / "k.keras"))
    ours = load_model(tmp_path / "k.keras", device=backend)
    _steps(ours, batches[BEFORE:])

    w = [torch.tensor(k.ops.convert_to_numpy(v), dtype=torch.float64) for v in theirs.weights]
    params = [torch.nn.Parameter(w[0].T.clone()), torch.nn.Parameter(w[1].clone()),
              torch.nn.Parameter(w[2].T.clone()), torch.nn.Parameter(w[3].clone())]
    opt = torch.optim.NAdam(params, lr=0.01, betas=(0.9, 0.999), eps=1e-7)
    slots = [k.ops.convert_to_numpy(v) for v in theirs.optimizer.variables[2:-1]]  # m, v per weight
    mu_product = np.prod([0.9 * (1 - 0.5 * 0.96 ** (i * 0.004)) for i in range(1, BEFORE + 1)])
    for i, p in enumerate(params):
        m, v = (torch.tensor(a, dtype=torch.float64) for a in slots[2 * i:2 * i + 2])
        if i in (0, 2):
            m, v = m.T, v.T
        opt.state[p] = {"step": torch.tensor(float(BEFORE), dtype=torch.float64),
                        "mu_product": torch.tensor(mu_product, dtype=torch.float64),
                        "exp_avg": m.contiguous(), "exp_avg_sq": v.contiguous()}
    for x, y in batches[BEFORE:]:
        x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        opt.zero_grad()
        out = torch.tanh(x @ params[0].T + params[1]) @ params[2].T + params[3]
        torch.nn.functional.mse_loss(out, y).backward()
        opt.step()
    want = [params[0].detach().T, params[1].detach(), params[2].detach().T, params[3].detach()]
    _close(ours.get_weights(), [t.numpy() for t in want])
