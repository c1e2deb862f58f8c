"""HDP (docs/model.md 9d): monotone blocks, coordinate maxima, chunking, recovery, save/load, registry."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from nam_core.engine.settings import FitSettings
from nam_core.models import HDP
from nam_core.models.hdp import HDPRun
from nam_core.study.methods import METHODS, fit_method
from nam_core.synthetic.simulate_baselines import simulate_hdp

from ..cavi_checks import (
    assert_blocks_monotone,
    assert_coordinate_maxima,
    assert_save_load,
    jitter_simplex,
    perturb_atoms,
    perturb_concentration,
    perturb_positive,
)
from ..conftest import F64
from ..helpers import make_run


def _perturb_local(name, dim):
    """Jitter the stored zeta (N, T) or varphi (J, T, L); the statistics are recomputed."""

    def perturb(run, rng, eps):
        old, stats, counts = getattr(run, name), run.stats, run.table_counts
        setattr(run, name, jitter_simplex(old, rng, eps, dim))
        run.local_pass(())

        def undo():
            setattr(run, name, old)
            run.stats, run.table_counts = stats, counts

        return undo

    return perturb


@pytest.mark.parametrize(("init", "trunc", "conc"), [("random", "tsb", None), ("kmeans", "open", 1.5)])
def test_hdp_blocks_monotone_and_coordinate_maxima(init, trunc, conc):
    d = simulate_hdp(J=10, mean_cells=30, seed=1)
    model = HDP(K=3, L=5, T=4, init=init, trunc=trunc, gamma=conc, local_rounds=2,
                memory_budget=1 << 16, **F64)
    run = make_run(model, None, d.Y, d.group, seed=1)
    assert isinstance(run, HDPRun) and len(run.spans) > 1
    assert_blocks_monotone(run, HDPRun.BLOCKS, n_sweeps=5)
    assert_blocks_monotone(run, HDPRun.SWEEP_BLOCKS, n_sweeps=3)
    checks = [("update_zeta", _perturb_local("zeta", 1)),
              ("update_varphi", _perturb_local("varphi", 2)),
              ("update_tables", perturb_positive("a", "b")),
              ("update_atoms_y", perturb_atoms("atoms_y")),
              ("update_B", perturb_positive("B.a", "B.b")),
              ("update_alpha0", perturb_concentration("alpha0"))]
    if conc is None:
        checks.append(("update_gamma", perturb_concentration("B.concentration")))
    assert_coordinate_maxima(run, checks, np.random.default_rng(4))


def test_hdp_chunking_does_not_change_the_result():
    d = simulate_hdp(J=10, mean_cells=30, seed=2)
    kw = dict(K=3, L=4, T=3, n_init=1, seed=0, max_iter=10, tol=0, **F64)
    with pytest.warns(Warning, match="did not converge"):
        a = HDP(memory_budget=1 << 16, **kw).fit(None, d.Y, d.group)
    with pytest.warns(Warning, match="did not converge"):
        b = HDP(memory_budget=1 << 30, **kw).fit(None, d.Y, d.group)
    np.testing.assert_allclose(a.elbo_trace_, b.elbo_trace_, rtol=1e-11)


def test_hdp_recovers_shared_atoms_with_individual_weights(tmp_path):
    d = simulate_hdp(J=30, n_atoms=5, mean_cells=60, seed=0)
    kw = dict(K=5, L=8, T=6, n_init=1, seed=0, tol=1e-6, **F64)
    m = HDP(**kw).fit(None, d.Y, d.group)
    assert adjusted_rand_score(d.cell_labels, m.cell_labels_) > 0.9
    assert np.all(np.diff(m.elbo_trace_) >= -1e-9 * np.abs(m.elbo_trace_[1:]))
    assert m.atom_weights_.shape == (30, 8) and m.individual_labels_.shape == (30,)
    # w_j tracks each individual's true composition
    true = np.zeros((30, 5))
    np.add.at(true, (d.group, d.cell_labels), 1.0)
    true /= true.sum(1, keepdims=True)
    match = [np.argmax(np.bincount(m.cell_labels_[d.cell_labels == t], minlength=8)) for t in range(5)]
    assert np.abs(m.atom_weights_[:, match] - true).max() < 0.15
    again = HDP(**kw).fit(None, d.Y, d.group)
    assert np.array_equal(m.elbo_trace_, again.elbo_trace_)
    assert_save_load(m, tmp_path, ["cell_labels_", "individual_labels_", "atom_weights_", "varphi_",
                                   "m_y_", "g1_", "elbo_trace_"])


@pytest.mark.filterwarnings("ignore::nam_core.ConvergenceWarning")
def test_registry_runs_every_method():
    d = simulate_hdp(J=8, mean_cells=25, seed=3)
    X = np.random.default_rng(0).normal(size=(8, 2))
    assert set(METHODS) == {"nam", "cam", "fisan", "ndp", "hdp", "dpmix_x", "dpmix_y",
                            "two_stage", "kmeans_oracle", "leiden_0.5", "leiden_1.0"}
    for name in METHODS:
        r = fit_method(name, X, d.Y, d.group, seed=0, oracle_K=2, oracle_L=4,
                       settings=FitSettings(K=3, L=4, n_init=1, device="cpu", dtype="float64",
                                            max_iter=15))
        if name not in ("dpmix_y", "leiden_0.5", "leiden_1.0"):  # cell-level methods
            assert r.individual_labels.shape == (8,), name
        if name != "dpmix_x":
            assert r.cell_labels.shape == d.group.shape, name
        assert r.seconds > 0
