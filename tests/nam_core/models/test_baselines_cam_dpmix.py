"""CAM, DP mixtures (= scikit-learn), the two-stage baseline and the registry (docs/model.md 9a, 9e, 9f)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, simulate
from nam_core.engine.settings import FitSettings
from nam_core.models import CAM, DPMixture, TwoStage
from nam_core.models.nested import NestedAtomsRun
from nam_core.study.methods import METHODS, fit_method

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
from ..helpers import make_run, sklearn_constant, sklearn_mixture, small_data


@pytest.fixture(scope="module")
def easy():
    return simulate(J=30, n_clusters=3, q=2, p=3, n_cell_types=4, mean_cells=40, delta_y=6.0, delta_x=8.0,
                    eta=1.0, seed=2)


# ---------------------------------------------------------------- CAM (9a)
@pytest.mark.filterwarnings("ignore::nam_core.ConvergenceWarning")
def test_cam_equals_nam_without_the_genotype_layer():
    d = small_data(seed=3, J=12)
    kw = dict(K=3, L=4, n_init=2, seed=5, max_iter=30, tol=1e-10, **F64)
    cam = CAM(**kw).fit(None, d.Y, d.group)
    nam = NAM(use_x=False, **kw).fit(d.X, d.Y, d.group)
    np.testing.assert_allclose(cam.elbo_trace_, nam.elbo_trace_, rtol=1e-10)
    np.testing.assert_allclose(cam.rho_, nam.rho_, atol=1e-10)
    assert np.array_equal(cam.cell_labels_, nam.cell_labels_)
    assert "use_x" not in cam.get_params() and not cam.use_x


def test_cam_blocks_are_monotone_and_coordinate_maxima():
    d = small_data(seed=1, J=10)
    run = make_run(CAM(K=3, L=4, init="random", **F64), None, d.Y, d.group, seed=1)
    assert_blocks_monotone(run, NestedAtomsRun.BLOCKS, n_sweeps=6)
    checks = [("update_individuals", perturb_attr_simplex("rho")),
              ("update_atoms_y", perturb_atoms("atoms_y")),
              ("update_u", perturb_positive("omega.a", "omega.b")),
              ("update_v", perturb_positive("pi.a", "pi.b")),
              ("update_beta", perturb_concentration("omega.concentration")),
              ("update_alpha", perturb_concentration("pi.concentration"))]
    assert_coordinate_maxima(run, checks, np.random.default_rng(0))


def test_cam_recovers_clustered_compositions_determinism_and_save_load(easy, tmp_path):
    kw = dict(K=6, L=8, n_init=2, seed=0, **F64)
    cam = CAM(**kw).fit(None, easy.Y, easy.group)
    assert adjusted_rand_score(easy.individual_labels, cam.individual_labels_) > 0.9
    assert adjusted_rand_score(easy.cell_labels, cam.cell_labels_) > 0.9
    again = CAM(**kw).fit(None, easy.Y, easy.group)
    assert np.array_equal(cam.elbo_trace_, again.elbo_trace_)
    assert_save_load(cam, tmp_path, ["rho_", "cell_labels_", "m_y_", "a_u_", "elbo_trace_", "elbo_"])


# ---------------------------------------------------------------- DP mixtures (9e)
N_SWEEPS = 12


@pytest.mark.parametrize("layer", ["y", "x"])
def test_dpmixture_equals_sklearn(layer):
    rng = np.random.default_rng(4)
    centres = np.array([[0, 0, 0], [5, 1, -2], [-4, 4, 1]], float)
    Z = centres[rng.integers(0, 3, size=240)] + rng.normal(size=(240, 3)) @ np.diag([1.0, 0.5, 1.5])
    n, d = Z.shape
    C_, conc = 5, 0.7
    resp0 = rng.dirichlet(np.ones(C_), size=n)
    gm = sklearn_mixture(Z, resp0, conc, N_SWEEPS)
    data = dict(X=Z) if layer == "x" else dict(Y=Z, group=np.repeat(np.arange(8), 30))
    m = DPMixture(layer, C_, concentration=conc, init="resp", init_resp=resp0, max_iter=N_SWEEPS,
                  tol=0.0, n_init=1, seed=0, **F64)
    with pytest.warns(Warning, match="did not converge"):
        m.fit(**data)
    C = sklearn_constant(C_, conc, n, d, 1.0, np.cov(Z.T), d)
    np.testing.assert_allclose(m.elbo_trace_, np.array(gm.lower_bounds_) + C, rtol=1e-10)
    stick = np.argsort(m.cell_order_)  # label -> stick order
    np.testing.assert_allclose(m.means_[stick], gm.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(m.covariances_[stick], gm.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.c_y_[stick], gm.degrees_of_freedom_, rtol=1e-8)
    np.testing.assert_allclose(m.t_y_[stick], gm.mean_precision_, rtol=1e-8)
    np.testing.assert_allclose(m.a_u_[:, 0], gm.weight_concentration_[0], rtol=1e-8)
    np.testing.assert_allclose(m.b_u_[:, 0], gm.weight_concentration_[1], rtol=1e-8)
    proba = gm.predict_proba(Z)
    np.testing.assert_allclose(m.proba_, proba.max(1), rtol=1e-7, atol=1e-9)
    assert np.array_equal(m.cell_order_[m.labels_], proba.argmax(1))
    labels = m.individual_labels_ if layer == "x" else m.cell_labels_
    assert np.array_equal(labels, m.labels_)
    assert (m.cell_labels_ if layer == "x" else m.individual_labels_) is None


def test_dpmixture_blocks_monotone_random_concentration_and_save_load(easy, tmp_path):
    m = DPMixture("y", 6, init="random", n_init=1, seed=0, **F64)
    run = make_run(m, None, easy.Y, easy.group)
    assert_blocks_monotone(run, ["update_cells", "update_atoms_y", "update_u", "update_beta"])
    checks = [("update_atoms_y", perturb_atoms("atoms_y")),
              ("update_u", perturb_positive("omega.a", "omega.b")),
              ("update_beta", perturb_concentration("omega.concentration"))]
    assert_coordinate_maxima(run, checks, np.random.default_rng(1))
    # the x layer alone needs more individuals than the joint models (J = 90 rows in 2-D)
    xs = simulate(J=90, n_clusters=3, q=2, p=3, n_cell_types=4, mean_cells=10, delta_x=8.0, seed=2)
    fit = DPMixture("x", 5, n_init=2, seed=3, **F64).fit(xs.X)
    assert adjusted_rand_score(xs.individual_labels, fit.labels_) > 0.9
    again = DPMixture("x", 5, n_init=2, seed=3, **F64).fit(xs.X)
    assert np.array_equal(fit.elbo_trace_, again.elbo_trace_)
    assert_save_load(fit, tmp_path, ["labels_", "individual_labels_", "means_", "covariances_",
                                     "mixture_weights_", "elbo_trace_"])


# ---------------------------------------------------------------- two-stage (9f) and registry
def test_two_stage_recovers_and_round_trips(easy, tmp_path):
    kw = dict(K=6, L=8, n_init=2, seed=0, **F64)
    m = TwoStage(**kw).fit(easy.X, easy.Y, easy.group)
    assert adjusted_rand_score(easy.cell_labels, m.cell_labels_) > 0.9
    assert adjusted_rand_score(easy.individual_labels, m.individual_labels_) > 0.9
    assert np.isnan(m.elbo_) and m.features_.shape[0] == 30
    again = TwoStage(**kw).fit(easy.X, easy.Y, easy.group)
    assert np.array_equal(m.individual_labels_, again.individual_labels_)
    assert_save_load(m, tmp_path, ["cell_labels_", "individual_labels_", "features_", "elbo_"])
    km = TwoStage(second_stage="kmeans", use_x=False, **{**kw, "K": 3}).fit(None, easy.Y, easy.group)
    assert km.individual_labels_.shape == (30,)


def test_registry_names_and_kmeans_oracle(easy):
    assert set(METHODS) >= {"nam", "cam", "dpmix_x", "dpmix_y", "two_stage", "kmeans_oracle"}
    r = fit_method("kmeans_oracle", easy.X, easy.Y, easy.group, seed=0, oracle_K=3, oracle_L=4,
                   settings=FitSettings(K=6, L=8, n_init=3))
    assert adjusted_rand_score(easy.cell_labels, r.cell_labels) > 0.9
    assert adjusted_rand_score(easy.individual_labels, r.individual_labels) > 0.9
    assert np.isnan(r.elbo) and r.model is None
    r = fit_method("dpmix_y", easy.X, easy.Y, easy.group, seed=0,
                   settings=FitSettings(K=6, L=8, n_init=1, device="cpu", dtype="float64"))
    assert r.individual_labels is None and r.cell_labels.shape == easy.group.shape
    assert np.isfinite(r.elbo) and r.n_iter == r.model.n_iter_
    with pytest.raises(Exception, match="unknown method"):
        fit_method("magic", easy.X, easy.Y, easy.group, seed=0, settings=FitSettings(K=2, L=2))
