"""fiSAN (docs/model.md 9b): Dirichlet terms, monotone blocks, coordinate maxima, recovery, save/load."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from nam_core import simulate
from nam_core.components import dirichlet, sticks
from nam_core.components.dirichlet import DirichletWeights
from nam_core.models import FiSAN
from nam_core.models.nested import NestedAtomsRun

from ..cavi_checks import (
    assert_blocks_monotone,
    assert_coordinate_maxima,
    assert_save_load,
    perturb_atoms,
    perturb_attr_simplex,
    perturb_concentration,
    perturb_positive,
)
from ..conftest import F64
from ..helpers import make_run, small_data


def test_dirichlet_terms_are_minus_the_kl():
    rng = np.random.default_rng(0)
    b_star = torch.as_tensor(rng.gamma(2.0, size=(5, 3)))
    b = 0.3
    kl = torch.distributions.kl_divergence(
        torch.distributions.Dirichlet(b_star.T), torch.distributions.Dirichlet(torch.full((3, 5), b, dtype=torch.float64))
    ).sum()
    assert torch.isclose(dirichlet.dirichlet_elbo(b_star, b), -kl, rtol=1e-12)
    a, bb = dirichlet.as_sticks(b_star)
    torch.testing.assert_close(sticks.expected_log_weights(a, bb, 5), dirichlet.expected_log_weights(b_star))
    torch.testing.assert_close(sticks.expected_weights(a, bb, 5), dirichlet.expected_weights(b_star))


@pytest.mark.parametrize("use_x", [False, True])
def test_fisan_blocks_monotone_and_coordinate_maxima(use_x):
    d = small_data(seed=2, J=10)
    run = make_run(FiSAN(K=3, L=4, b=0.2, use_x=use_x, init="random", **F64),
                   d.X if use_x else None, d.Y, d.group, seed=2)
    assert isinstance(run, NestedAtomsRun) and isinstance(run.omega, DirichletWeights)
    assert_blocks_monotone(run, NestedAtomsRun.BLOCKS, n_sweeps=6)
    checks = [("update_individuals", perturb_attr_simplex("rho")),
              ("update_atoms_y", perturb_atoms("atoms_y")),
              ("update_u", perturb_positive("omega.b_star")),
              ("update_v", perturb_positive("pi.a", "pi.b")),
              ("update_alpha", perturb_concentration("pi.concentration"))]
    if use_x:
        checks.append(("update_atoms_x", perturb_atoms("atoms_x")))
    assert_coordinate_maxima(run, checks, np.random.default_rng(3))


def test_fisan_recovers_shared_atoms_with_clustered_weights():
    data = simulate(J=30, n_clusters=3, q=2, p=3, n_cell_types=4, mean_cells=100, delta_y=6.0,
                    eta=1.0, seed=2)
    kw = dict(K=6, L=8, n_init=2, seed=0, **F64)
    m = FiSAN(**kw).fit(None, data.Y, data.group)
    assert adjusted_rand_score(data.individual_labels, m.individual_labels_) > 0.9
    assert adjusted_rand_score(data.cell_labels, m.cell_labels_) > 0.9
    assert np.all(np.diff(m.elbo_trace_) >= -1e-9 * np.abs(m.elbo_trace_[1:]))
    assert m.b_star_.shape == (8, 6) and np.allclose(m.cell_weights_.sum(0), 1)
    np.testing.assert_allclose(m.cell_weights_, m.b_star_ / m.b_star_.sum(0), rtol=1e-12)


def test_fisan_determinism_and_save_load(tmp_path):
    d = small_data(seed=4, J=12)
    kw = dict(K=3, L=4, n_init=2, seed=1, tol=1e-6, **F64)
    m = FiSAN(**kw).fit(None, d.Y, d.group)
    again = FiSAN(**kw).fit(None, d.Y, d.group)
    assert np.array_equal(m.elbo_trace_, again.elbo_trace_)
    assert np.array_equal(m.cell_labels_, again.cell_labels_)
    loaded = assert_save_load(m, tmp_path, ["rho_", "cell_labels_", "b_star_", "cell_weights_", "elbo_trace_"])
    assert loaded.b is None and "beta" not in loaded.get_params()


def test_fisan_rejects_bad_b():
    d = small_data(seed=0)
    with pytest.raises(Exception, match="b must be a positive"):
        FiSAN(K=2, L=3, b=-1.0, n_init=1, **F64).fit(None, d.Y, d.group)
