"""docs/backprop.md names real code: every path, dotted name and table row in it resolves.

The page derives each gradient and names the function computing it; when code
moves or is renamed this test fails, so the page cannot silently go stale.
"""

import ast
import importlib
import pathlib
import re

import pytest

import gpuprop

ROOT = pathlib.Path(gpuprop.__file__).resolve().parent.parent
DOC = ROOT / "docs" / "backprop.md"
TEXT = DOC.read_text(encoding="utf-8")

PATHS = sorted(set(re.findall(r"`((?:gpuprop|tests|docs)/[\w./-]+\.(?:py|md))`", TEXT)))
NAMES = sorted(set(re.findall(r"`(gpuprop(?:\.\w+)+)(?:\(\))?`", TEXT)))

# Names the page uses in short form, with the code object each one means.
SHORT = {
    "Network._steps": ("gpuprop/models/network.py", "self._steps"),
    "_train_steps": ("gpuprop/models/network.py", "self._train_steps"),
    "_loss_fn": ("gpuprop/models/network.py", "self._loss_fn"),
    "need_input_grad": ("gpuprop/layers/base.py", "self.need_input_grad"),
    "_TABLE": ("gpuprop/layers/activation.py", "_TABLE = {"),
}
SHORT_ATTRS = {
    "Network.build": "gpuprop.models.network.Network.build",
    "Network.backward": "gpuprop.models.network.Network.backward",
    "Network.forward": "gpuprop.models.network.Network.forward",
    "Optimizer.current_learning_rate": "gpuprop.optimizers.base.Optimizer.current_learning_rate",
    "Optimizer._clip_one": "gpuprop.optimizers.base.Optimizer._clip_one",
    "SparseCategoricalCrossentropy": "gpuprop.losses.SparseCategoricalCrossentropy",
    "CategoricalCrossentropy": "gpuprop.losses.CategoricalCrossentropy",
    "BinaryCrossentropy": "gpuprop.losses.BinaryCrossentropy",
    "loss_and_grad_from_output": "gpuprop.losses.Loss.loss_and_grad_from_output",
    "backend.synchronize()": "gpuprop.backend.Backend.synchronize",
    "backend.rng((seed, epoch))": "gpuprop.backend.Backend.rng",
}


def _needs_cupy(exc):
    return isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "cupy"


def _defined_in_source(module, attrs):
    """Where a module cannot import here (a module that needs CuPy), find class/def names in its source."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
    scope = tree.body
    for attr in attrs:
        found = [n for n in scope if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr]
        if not found:
            return False
        scope = found[0].body
    return True


def resolve(dotted):
    """True when ``dotted`` names a module, or an attribute reachable from the longest importable module prefix."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if _needs_cupy(exc) and (ROOT / (module.replace(".", "/") + ".py")).is_file():
                return _defined_in_source(module, parts[i:])
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_the_page_references_code_at_all():
    # Guards the regexes: if they silently matched nothing, every check below would pass vacuously.
    assert len(PATHS) >= 8 and len(NAMES) >= 40


@pytest.mark.parametrize("path", PATHS)
def test_path_exists(path):
    assert (ROOT / path).is_file(), f"docs/backprop.md names {path}, which does not exist"


@pytest.mark.parametrize("dotted", NAMES)
def test_dotted_name_resolves(dotted):
    assert resolve(dotted), f"docs/backprop.md names {dotted}, which does not resolve"


@pytest.mark.parametrize("short", sorted(SHORT_ATTRS))
def test_short_names_resolve(short):
    assert f"`{short}`" in TEXT, f"{short} is no longer on the page: drop it from SHORT_ATTRS"
    assert resolve(SHORT_ATTRS[short]), f"{short} (meaning {SHORT_ATTRS[short]}) does not resolve"


@pytest.mark.parametrize("short", sorted(SHORT))
def test_short_attributes_are_set_in_code(short):
    path, needle = SHORT[short]
    assert f"`{short}" in TEXT, f"{short} is no longer on the page: drop it from SHORT"
    assert needle in (ROOT / path).read_text(encoding="utf-8"), f"{short}: {needle!r} not found in {path}"


def _table_rows(heading):
    """First column of the Markdown table that follows ``heading``, backticks stripped."""
    section = TEXT.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1].strip().strip("`")
            if first and not set(first) <= set("-") and first not in ("name", "op"):
                rows.append(first)
        elif rows:
            break
    return rows


def test_activation_table_lists_exactly_the_coded_activations():
    from gpuprop.layers.activation import _TABLE

    assert sorted(_table_rows("### 3.2 Activations")) == sorted(_TABLE)
    for name in _TABLE:
        fwd, bwd, _ = _TABLE[name]
        assert f"`gpuprop.ops.Ops.{bwd}`" in TEXT


def test_fused_kernel_table_lists_exactly_the_cupy_overrides():
    tree = ast.parse((ROOT / "gpuprop" / "backend" / "kernels.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CupyOps")
    overrides = {n.name for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
    assert sorted(_table_rows("### 7.2 Reference ops and fused kernels")) == sorted(overrides)


def test_gradcheck_cli_flags_exist():
    """The usage line ``gpuprop gradcheck [--flag …]`` on the page names real options of the command."""
    usage = re.search(r"`gpuprop gradcheck ((?:\[[^\]]+\]\s*)+)`", TEXT)
    assert usage, "the page no longer shows the gradcheck usage line: update this test"
    flags = re.findall(r"\[(--[\w-]+)", usage.group(1))
    from gpuprop.cli import commands
    opts = {o for p in commands.gradcheck.params for o in p.opts}
    assert flags and set(flags) <= opts, f"page shows {flags}, command has {sorted(opts)}"
    default = re.search(r"\[--tolerance ([\d.e-]+)\]", usage.group(1))
    if default:
        tol = next(p for p in commands.gradcheck.params if "--tolerance" in p.opts)
        assert float(default.group(1)) == tol.default
