"""A checkpoint left by one fit is resumed only by the same fit: same settings, seed and data.

The checkpoint below is what a fit killed after its first sweep leaves; the fit that finds it is
built as the workflow's fit_nam builds it (FitSettings from the config, build_estimator).
"""

import dataclasses

import numpy as np
import pytest

from nam_core.engine.restart_progress import RestartProgress
from nam_core.engine.settings import FitSettings
from nam_core.models.registry import build_estimator

from ..helpers import small_data

BASE = FitSettings(K=3, L=4, n_init=1, max_iter=30, dtype="float64", device="cpu",
                   atoms="gaussian", merge=False, merge_atoms=False, memory_budget_mb=16)

# every fit setting the estimator sees, changed to another valid value
CHANGES = {
    "K": 4, "L": 5, "max_iter": 31, "tol": 1e-5, "init": "random", "dtype": "float32",
    "alpha": 2.0, "beta": 2.0, "s": (2.0, 1.0), "r": (1.0, 2.0), "trunc_v": "open",
    "trunc_u": "open", "merge": True, "atoms": "student_t", "merge_atoms": True,
    "memory_budget_mb": 32,
}


def leave_checkpoint(settings, seed, data, path):
    """The checkpoint of ``settings`` and ``seed`` after one sweep, as a killed fit leaves it."""
    model = build_estimator("nam", settings, seed=seed, checkpoint=path)
    run, prepared = model.initialised_run(data.X, data.Y, data.group)
    prog = RestartProgress(0, seed)
    prog.elbo_trace = [run.sweep()]
    model._checkpoint(prepared).write_current(run, prog)
    assert path.exists()


def resumes(settings, seed, data, path, caplog) -> bool:
    caplog.clear()
    with caplog.at_level("INFO"):
        build_estimator("nam", settings, seed=seed, checkpoint=path).fit(
            data.X, data.Y, data.group)
    if "belongs to another fit" in caplog.text:
        return False
    assert "resumed from" in caplog.text, caplog.text
    return True


@pytest.fixture(scope="module")
def data():
    return small_data(seed=7, J=10, mean_cells=15)


def test_the_same_fit_resumes(tmp_path, data, caplog):
    leave_checkpoint(BASE, 0, data, tmp_path / "c.npz")
    assert resumes(BASE, 0, data, tmp_path / "c.npz", caplog)


def test_every_setting_is_covered():
    ignored = {"n_init", "device", "checkpoint_every", "coarse_fraction", "coarse_min_cells",
               "coarse_max_cells", "ranks"}
    fields = {f.name for f in dataclasses.fields(FitSettings)}
    assert fields - ignored == set(CHANGES)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_changed_setting_starts_afresh(tmp_path, data, caplog, name):
    leave_checkpoint(BASE, 0, data, tmp_path / "c.npz")
    changed = BASE.with_changes(**{name: CHANGES[name]})
    assert not resumes(changed, 0, data, tmp_path / "c.npz", caplog)


def test_a_changed_seed_starts_afresh(tmp_path, data, caplog):
    leave_checkpoint(BASE, 0, data, tmp_path / "c.npz")
    assert not resumes(BASE, 1, data, tmp_path / "c.npz", caplog)


def test_changed_cells_start_afresh(tmp_path, data, caplog):
    """A changed .h5ad changes the expression PCs, the cells or their individuals."""
    leave_checkpoint(BASE, 0, data, tmp_path / "c.npz")
    other = dataclasses.replace(data, Y=data.Y + np.float64(1e-9))
    assert not resumes(BASE, 0, other, tmp_path / "c.npz", caplog)
