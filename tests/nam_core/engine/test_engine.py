"""The engine: model registry, layering of imports, settings, checkpoints and resume after a kill."""

import ast
import importlib
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from nam_core import NAM, NAMInputError
from nam_core.engine import estimator
from nam_core.engine.restart_progress import RestartProgress
from nam_core.engine.settings import FitSettings
from nam_core.models import CAM, HDP, NestedDP

from ..helpers import small_data

PACKAGE = Path(__file__).resolve().parents[3] / "nam_core"


def _face_module(name: str) -> str:
    """Where a name of the package face (``from nam_core import X``) lives, below nam_core."""
    value = getattr(importlib.import_module("nam_core"), name)
    if isinstance(value, (type, types.FunctionType)):
        return value.__module__.removeprefix("nam_core").lstrip(".")
    return ""  # a constant of the face itself (__version__)


def _resolve(tree: ast.Module, here: tuple[str, ...]) -> set[str]:
    """Modules that code in package ``here`` (below nam_core) imports, as dotted names below nam_core.

    ``from .. import X`` names the submodule X when there is one, else a name of that package
    (for nam_core itself, resolved through the package face); "" is the face itself.
    """
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("nam_core").lstrip(".") for a in node.names
                      if a.name.split(".")[0] == "nam_core"}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module.split(".") if node.module else []
        if node.level:
            package = [*here[: len(here) - node.level + 1], *module]
        elif module[:1] == ["nam_core"]:
            package = module[1:]
        else:
            continue
        for alias in node.names:
            target = PACKAGE.joinpath(*package, alias.name)
            if target.with_suffix(".py").is_file() or (target / "__init__.py").is_file():
                found.add(".".join([*package, alias.name]))
            elif package:
                found.add(".".join(package))
            else:
                found.add(_face_module(alias.name))
    return found


def _imports(path: Path) -> set[str]:
    """Modules a file of nam_core imports (:func:`_resolve`)."""
    return _resolve(ast.parse(path.read_text()), path.relative_to(PACKAGE).parent.parts)


#: the wings each wing must not import (no arrow runs up); study is the top floor
FORBIDDEN = {
    "components": ("engine", "models", "study", "results", "inputs", "synthetic"),
    "engine": ("models", "study", "results", "inputs", "synthetic"),
    "models": ("study", "results", "inputs", "synthetic"),
    "inputs": ("study", "results", "models", "engine", "synthetic"),
    "synthetic": ("study", "results", "models", "engine"),
    "results": ("study",),
    "study": (),
}


def test_imports_are_resolved():
    source = ("from .. import io, NAM, __version__\nfrom . import nested\nfrom .nested import spec\n"
              "from ..engine.run import Run\nimport nam_core.validation\nimport numpy\n")
    assert _resolve(ast.parse(source), ("models",)) == {
        "io", "models.nam", "", "models.nested", "models.nested.spec", "engine.run", "validation"}


def test_every_wing_is_layered():
    wings = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"components", "engine", "models", "inputs", "results", "study"} <= wings
    assert wings <= set(FORBIDDEN), f"add {sorted(wings - set(FORBIDDEN))} to FORBIDDEN"


@pytest.mark.parametrize("wing", sorted(FORBIDDEN))
def test_imports_run_one_way(wing):
    if wing == "synthetic" and not (PACKAGE / wing).is_dir():
        pytest.skip("no synthetic wing in this tree")
    paths = sorted((PACKAGE / wing).rglob("*.py"))
    assert paths, f"no modules under nam_core/{wing}"
    checked = 0
    for path in paths:
        for module in _imports(path):
            assert module.split(".")[0] not in FORBIDDEN[wing], (str(path.relative_to(PACKAGE)), module)
            checked += 1
    assert checked, f"no imports found under nam_core/{wing}"


def test_models_register_themselves_and_are_substitutable():
    for name in ("NAM", "CAM", "FiSAN", "DPMixture", "NestedDP", "HDP", "TwoStage"):
        assert name in estimator._REGISTRY
    assert not hasattr(NestedDP, "predict") and not hasattr(HDP, "predict")
    assert not isinstance(HDP(), NAM) and not isinstance(NestedDP(), NAM)
    assert isinstance(CAM(), NAM)


def test_fit_settings_from_config_names_unknown_keys():
    s = FitSettings.from_config({"K": 4, "L": 6, "s": [2.0, 1.0], "seeds": [0]}, ignore=("seeds",))
    assert (s.K, s.L, s.s) == (4, 6, (2.0, 1.0))
    with pytest.raises(NAMInputError, match="unknown setting.*merj"):
        FitSettings.from_config({"merj": True})


def test_alternatives_are_recorded_in_fitted_labels():
    d = small_data(seed=2, J=24, n_clusters=2)
    model = NAM(K=6, L=5, n_init=1, seed=0, device="cpu", dtype="float64", verbose=False)
    model.fit(d.X, d.Y, d.group)
    assert model.alternatives_, "the k-means start opens redundant clusters: merges are tried"
    for a in model.alternatives_:
        assert {"search", "keep", "drop", "n_clusters", "elbo", "accepted"} <= set(a)
        assert 0 <= a["keep"] < 6 and 0 <= a["drop"] < 6
    accepted = [a for a in model.alternatives_ if a["accepted"]]
    assert len(accepted) == model.restarts_[0]["merges"]


KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from nam_core import NAM
    from nam_core.models.nested import NestedAtomsRun

    sig, restart, after = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = np.load(sys.argv[1])
    calls = {"n": 0}
    sweep = NestedAtomsRun.sweep

    def counting_sweep(self):
        calls["n"] += 1
        if calls["n"] == after:
            os.kill(os.getpid(), getattr(signal, sig))
        return sweep(self)

    NestedAtomsRun.sweep = counting_sweep
    NAM(**eval(sys.argv[5])).fit(data["X"], data["Y"], data["g"])
""")


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_fit_resumes_from_its_checkpoint_to_the_same_result(tmp_path, sig):
    d = small_data(seed=4, J=16, n_clusters=2, mean_cells=20)
    np.savez(tmp_path / "data.npz", X=d.X, Y=d.Y, g=d.group)
    ckpt = tmp_path / "fit.ckpt.npz"
    params = dict(K=4, L=5, n_init=2, seed=0, device="cpu", dtype="float64", verbose=False,
                  checkpoint_every=3)
    reference = NAM(**params).fit(d.X, d.Y, d.group)
    first = len(reference.restarts_) and reference.restarts_[0]["n_iter"]
    # killed in the second restart, after the first finished
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(tmp_path / "data.npz"), sig, "1", str(first + 5),
         repr(params | {"checkpoint": str(ckpt)})], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert "SIGTERM after sweep" in proc.stderr
    assert ckpt.exists()
    resumed = NAM(**params, checkpoint=ckpt).fit(d.X, d.Y, d.group)
    assert resumed.elbo_ == pytest.approx(reference.elbo_, rel=1e-10)
    np.testing.assert_array_equal(resumed.individual_labels_, reference.individual_labels_)
    np.testing.assert_array_equal(resumed.cell_labels_, reference.cell_labels_)
    assert [r["n_iter"] for r in resumed.restarts_] == [r["n_iter"] for r in reference.restarts_]
    assert not ckpt.exists(), "a completed fit removes its checkpoint"


def test_checkpoint_of_another_fit_is_not_resumed(tmp_path, caplog):
    d = small_data(seed=5)
    ckpt = tmp_path / "c.npz"
    params = dict(K=3, L=4, n_init=1, seed=0, device="cpu", dtype="float64", verbose=False)
    # a checkpoint left by a fit with other settings
    from nam_core.engine.checkpoint import Checkpoint

    model = NAM(**params, checkpoint=ckpt)
    run, data = model.initialised_run(d.X, d.Y, d.group)
    other = Checkpoint(ckpt, 1, "NAM", {"K": 99}, data)
    prog = RestartProgress(0, 0)
    prog.elbo_trace = [run.sweep()]
    other.write_current(run, prog)
    with caplog.at_level("WARNING"):
        fitted = model.fit(d.X, d.Y, d.group)
    assert "belongs to another fit" in caplog.text
    assert fitted.elbo_ == pytest.approx(NAM(**params).fit(d.X, d.Y, d.group).elbo_, rel=1e-12)


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["nam", "fisan", "ndp"])
def test_fits_saved_before_the_redesign_still_load(name):
    """Files written by the flat-layout engine (commit e9e2983) load, label and predict as then."""
    model = estimator.VariationalEstimator.load(DATA / f"saved_v0_{name}.npz")
    with np.load(DATA / f"saved_v0_{name}_expected.npz") as expected, np.load(DATA / "saved_v0_data.npz") as d:
        np.testing.assert_array_equal(model.cell_labels_, expected["cell_labels"])
        np.testing.assert_array_equal(model.individual_labels_, expected["individual_labels"])
        assert model.elbo_ == float(expected["elbo"])
        if name != "ndp":
            np.testing.assert_array_equal(model.predict(d["Y"], d["group"]), expected["predicted"])


def test_float32_rounding_dips_are_info_and_larger_drops_warn(caplog):
    """A float32 dip of rounding size is logged at INFO; a larger drop is a warning."""
    import logging

    import torch

    fit = NAM(K=2, L=2)
    with caplog.at_level(logging.INFO, logger="nam_core.engine.estimator"):
        fit._report_decrease(5, -122737.38, -122737.41, torch.float32)  # relative 2.4e-7
        fit._report_decrease(6, -1000.0, -1010.0, torch.float32)  # relative 1e-2
    levels = [(r.levelname, "expected" in r.message) for r in caplog.records]
    assert levels == [("INFO", True), ("WARNING", False)]
