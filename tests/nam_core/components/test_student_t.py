"""Student-t cell atoms (docs/model.md section 11): monotone, coordinate-optimal, independent check."""

import math

import numpy as np
import pytest
import torch
from scipy.special import digamma, gammaln
from sklearn.metrics import adjusted_rand_score

from nam_core import NAM, NAMInputError
from nam_core.models import CAM, DPMixture, FiSAN
from nam_core.models.nested import NestedAtomsRun

from ..cavi_checks import assert_blocks_monotone, assert_save_load, perturb_atoms
from ..helpers import make_run, small_data


def _run(dof=None, quad="direct", seed=1, use_x=True):
    d = small_data(seed=seed, J=12, p=3, q=2)
    model = NAM(K=4, L=5, atoms="student_t", dof=dof, init="random", dtype="float64", device="cpu",
                quad=quad, memory_budget=1 << 16, use_x=use_x)
    return make_run(model, d.X, d.Y, d.group, seed=seed), d


@pytest.mark.parametrize("dof, quad, use_x", [(None, "direct", True), (3.0, "expanded", True),
                                              (None, "expanded", False)])
def test_elbo_never_decreases_after_any_block(dof, quad, use_x):
    run, _ = _run(dof, quad, use_x=use_x)
    run.sweep()  # from the initial q(w) (the prior) to the first optimal one
    assert_blocks_monotone(run, NestedAtomsRun.BLOCKS, n_sweeps=10)


def test_dof_and_atoms_are_coordinate_maxima():
    run, _ = _run()
    for _ in range(4):
        run.sweep()
    run.update_cells()
    run.update_atoms_y()
    best = run.elbo()
    rng = np.random.default_rng(0)
    for _ in range(4):
        undo = perturb_atoms("atoms_y")(run, rng, 1e-3)
        assert run.elbo() <= best + 1e-10 * abs(best)
        undo()
    run.update_dof_y()
    best, nu = run.elbo(), run.atoms_y.dof.clone()
    assert not torch.allclose(nu, torch.full_like(nu, 10.0)), "the degrees of freedom moved"
    for l in range(nu.numel()):
        for eps in (1e-3, -1e-3):
            run.atoms_y.dof = nu.clone()
            run.atoms_y.dof[l] *= 1 + eps
            assert run.elbo() <= best + 1e-10 * abs(best), (l, eps)
    run.atoms_y.dof = nu


def _independent_cell_layer(Y, xi, post, ex_scale, nu, a, b):
    """sum_nl xi [E log N(y | mu, (w Lambda)^-1) + E log Ga(w | nu/2, nu/2) - E log q(w)], numpy.

    q(w_nl) = Gamma(a_nl, b_nl) (shape, rate) given explicitly; NW posterior (m, t, c, D).
    """
    m, t, c, D = (post.mean.numpy(), post.mean_precision.numpy(), post.dof.numpy(), ex_scale)
    n, p = Y.shape
    L = m.shape[0]
    elogdet = np.array([sum(digamma((c[l] + 1 - i) / 2) for i in range(1, p + 1)) + p * math.log(2)
                        + np.linalg.slogdet(D[l])[1] for l in range(L)])
    delta = np.stack([p / t[l] + c[l] * np.einsum("ni,ij,nj->n", Y - m[l], D[l], Y - m[l]) for l in range(L)], 1)
    ew, elogw = a / b, digamma(a) - np.log(b)
    loglik = 0.5 * p * elogw + 0.5 * elogdet - 0.5 * p * math.log(2 * math.pi) - 0.5 * ew * delta
    half = nu / 2
    log_prior = half * np.log(half) - gammaln(half) + (half - 1) * elogw - half * ew
    log_q = a * np.log(b) - gammaln(a) + (a - 1) * elogw - b * ew
    return float((xi * (loglik + log_prior - log_q)).sum()), delta


def test_cell_layer_terms_equal_an_independent_computation_and_q_w_is_optimal():
    run, d = _run(use_x=False)
    for _ in range(3):
        run.sweep()
    run.keep_xi = True
    run.update_cells()  # q(M), q(w) at the current atoms: the ELBO's cell layer now at a pass state
    run.keep_xi = False
    Y = run.data.Y.numpy().astype(np.float64)
    xi = run.xi.numpy()
    nu = run.atoms_y.dof.numpy()
    post, D = run.atoms_y.post, run.atoms_y.ex.scale.numpy()
    p = Y.shape[1]
    terms = run.elbo_terms()
    ours = terms["atoms_y_loglik"] + terms["atoms_y_scales"]
    a = np.broadcast_to((nu + p) / 2, xi.shape)
    _, delta = _independent_cell_layer(Y, xi, post, D, nu, a, np.ones_like(xi))
    b = (nu + delta) / 2
    theirs, _ = _independent_cell_layer(Y, xi, post, D, nu, a, b)
    assert ours == pytest.approx(theirs, rel=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(5):  # any other Gamma q(w) is worse
        a2 = a * np.exp(1e-3 * rng.normal(size=a.shape))
        b2 = b * np.exp(1e-3 * rng.normal(size=b.shape))
        assert _independent_cell_layer(Y, xi, post, D, nu, a2, b2)[0] < theirs


def test_large_dof_matches_the_gaussian_fit():
    d = small_data(seed=1, J=12, p=3, q=2)
    common = dict(K=4, L=5, n_init=1, seed=0, dtype="float64", device="cpu", verbose=False,
                  merge=False, max_iter=30, tol=0)
    with pytest.warns(Warning):
        g = NAM(**common).fit(d.X, d.Y, d.group)
    with pytest.warns(Warning):
        t = NAM(**common, atoms="student_t", dof=1e6).fit(d.X, d.Y, d.group)
    assert t.elbo_ == pytest.approx(g.elbo_, rel=1e-6)
    np.testing.assert_array_equal(t.cell_labels_, g.cell_labels_)


def _heavy_tailed(seed=0, n_per=1500, p=4, dof=2.5):
    """Four well-separated multivariate-t clusters (nu = 2.5): a scale mixture of Gaussians."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=12.0, size=(4, p))
    labels = np.repeat(np.arange(4), n_per)
    w = rng.gamma(dof / 2, 2 / dof, size=labels.size)
    Y = centres[labels] + rng.normal(size=(labels.size, p)) / np.sqrt(w)[:, None]
    return Y, labels


def test_student_t_atoms_keep_heavy_tailed_types_whole():
    Y, labels = _heavy_tailed()
    common = dict(n_components=15, n_init=1, seed=0, device="cpu", dtype="float64", verbose=False)
    g = DPMixture("y", **common).fit(None, Y)
    t = DPMixture("y", atoms="student_t", **common).fit(None, Y)
    big = lambda m: int((np.bincount(m.labels_) >= 0.01 * Y.shape[0]).sum())  # noqa: E731
    assert big(t) == 4, big(t)
    assert adjusted_rand_score(labels, t.labels_) > 0.98
    assert adjusted_rand_score(labels, t.labels_) > adjusted_rand_score(labels, g.labels_)
    assert big(g) > 4, "a Gaussian mixture splits t-distributed clusters"


def test_other_models_take_student_t_atoms_and_save_load_predict(tmp_path):
    d = small_data(seed=3)
    for cls in (CAM, FiSAN):
        m = cls(K=3, L=4, n_init=1, seed=0, device="cpu", dtype="float64", atoms="student_t",
                tol=1e-5, max_iter=150, verbose=False).fit(None, d.Y, d.group)
        assert m.dof_y_.shape == (4,)
        loaded = assert_save_load(m, tmp_path, ["cell_labels_", "dof_y_", "m_y_"])
        np.testing.assert_array_equal(loaded.predict(d.Y, d.group), m.predict(d.Y, d.group))
        assert (m.predict(d.Y, d.group) == m.cell_labels_).mean() > 0.95
    with pytest.raises(NAMInputError, match="atoms must be one of"):
        NAM(atoms="cauchy").fit(d.X, d.Y, d.group)
