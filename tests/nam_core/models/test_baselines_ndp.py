"""Nested DP (docs/model.md 9c): monotone blocks, coordinate maxima, chunking, recovery, save/load."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core.models import CAM, NestedDP
from nam_core.models.ndp import NDPRun, individual_spans
from nam_core.synthetic.simulate_baselines import simulate_ndp

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


def _perturb_rho(run, rng, eps):
    """Jitter q(S) with phi fixed at the current globals (statistics recomputed)."""
    stats, A, rho = run.stats, run.A, run.rho
    rho_p = jitter_simplex(rho, rng, eps)
    run.stats, _ = run.local_pass(lambda j0, j1, a: rho_p[j0:j1])

    def undo():
        run.stats, run.A, run.rho = stats, A, rho

    return undo


def test_individual_spans_hold_whole_individuals():
    spans = individual_spans(torch.tensor([3.0, 5.0, 2.0, 9.0, 1.0]), max_cells=8)
    assert spans == [(0, 8, 0, 2), (8, 10, 2, 3), (10, 19, 3, 4), (19, 20, 4, 5)]


@pytest.mark.parametrize(("use_x", "trunc"), [(False, "tsb"), (True, "open")])
def test_ndp_blocks_monotone_and_coordinate_maxima(use_x, trunc):
    d = simulate_ndp(J=12, mean_cells=20, seed=1)
    model = NestedDP(K=3, L=4, use_x=use_x, trunc_u=trunc, trunc_v=trunc, init="random",
                     memory_budget=1 << 16, **F64)
    run = make_run(model, d.X if use_x else None, d.Y, d.group, seed=1)
    assert isinstance(run, NDPRun) and len(run.spans) > 1
    assert_blocks_monotone(run, NDPRun.BLOCKS, n_sweeps=5)
    assert_blocks_monotone(run, NDPRun.SWEEP_BLOCKS, n_sweeps=3)
    checks = [("update_individuals", _perturb_rho),
              ("update_atoms_y", perturb_atoms("atoms_y")),
              ("update_u", perturb_positive("omega.a", "omega.b")),
              ("update_v", perturb_positive("pi.a", "pi.b")),
              ("update_beta", perturb_concentration("omega.concentration")),
              ("update_alpha", perturb_concentration("pi.concentration"))]
    if use_x:
        checks.append(("update_atoms_x", perturb_atoms("atoms_x")))
    assert_coordinate_maxima(run, checks, np.random.default_rng(2))


def test_ndp_chunking_does_not_change_the_result():
    d = simulate_ndp(J=10, mean_cells=20, seed=2)
    kw = dict(K=3, L=3, n_init=1, seed=0, max_iter=15, tol=0, **F64)
    with pytest.warns(Warning, match="did not converge"):
        a = NestedDP(memory_budget=1 << 16, **kw).fit(None, d.Y, d.group)
    with pytest.warns(Warning, match="did not converge"):
        b = NestedDP(memory_budget=1 << 30, **kw).fit(None, d.Y, d.group)
    np.testing.assert_allclose(a.elbo_trace_, b.elbo_trace_, rtol=1e-11)


def test_ndp_recovers_non_shared_atoms_and_round_trips(tmp_path):
    d = simulate_ndp(J=30, mean_cells=40, seed=0)
    kw = dict(K=5, L=5, n_init=2, seed=0, **F64)
    m = NestedDP(**kw).fit(None, d.Y, d.group)
    assert adjusted_rand_score(d.individual_labels, m.individual_labels_) > 0.9
    assert adjusted_rand_score(d.cell_labels, m.cell_labels_) > 0.9
    assert np.all(np.diff(m.elbo_trace_) >= -1e-9 * np.abs(m.elbo_trace_[1:]))
    assert m.m_y_.shape == (5, 5, 3) and m.atom_sizes_.shape == (5, 5)
    assert np.isclose(m.atom_sizes_.sum(), d.Y.shape[0])
    again = NestedDP(**kw).fit(None, d.Y, d.group)
    assert np.array_equal(m.elbo_trace_, again.elbo_trace_)
    assert_save_load(m, tmp_path, ["rho_", "cell_labels_", "cell_pairs_", "m_y_", "D_inv_y_",
                                   "cell_weights_", "weights_", "elbo_trace_"])
    cam = CAM(K=5, L=8, n_init=1, seed=0, **F64).fit(None, d.Y, d.group)
    assert cam.elbo_ < m.elbo_  # the nDP's own data: non-shared atoms fit better
