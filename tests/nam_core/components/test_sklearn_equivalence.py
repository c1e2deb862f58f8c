"""NAM reduced to one layer equals scikit-learn's BayesianGaussianMixture (docs/model.md, DP mixtures)."""

import numpy as np
import pytest
import torch

from nam_core import NAM
from nam_core.models.nested import NestedAtomsRun

from ..helpers import make_run, sklearn_constant, sklearn_mixture

N_SWEEPS = 15


def _x_part(run: NestedAtomsRun) -> float:
    return sum(v for k, v in run.elbo_terms().items() if k in NestedAtomsRun.X_PART)


def _y_part(run: NestedAtomsRun) -> float:
    return sum(v for k, v in run.elbo_terms().items() if k not in NestedAtomsRun.X_PART)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0, 0], [5, 1, -2], [-4, 4, 1], [2, -5, 3]], float)
    labels = rng.integers(0, 4, size=400)
    Y = centres[labels] + rng.normal(size=(400, 3)) @ np.diag([1.0, 0.5, 1.5])
    return Y


@pytest.mark.parametrize("quad", ["direct", "expanded"])
def test_y_layer_equals_sklearn(blobs, quad):
    Y = blobs
    n, d = Y.shape
    L, beta = 6, 0.7
    rng = np.random.default_rng(0)
    resp0 = rng.dirichlet(np.ones(L), size=n)
    gm = sklearn_mixture(Y, resp0, beta, N_SWEEPS)

    group = np.zeros(n, dtype=int)
    model = NAM(
        K=1, L=L, use_x=False, trunc_u="open", beta=beta, init="resp",
        init_resp=(resp0, np.ones((1, 1))), dtype="float64", device="cpu", quad=quad,
    )
    run = make_run(model, None, Y, group)
    C = sklearn_constant(L, beta, n, d, 1.0, np.cov(Y.T), d)
    ours = []
    for _ in range(N_SWEEPS):
        ours.append(run.sweep())
        assert abs(_y_part(run) - ours[-1]) < 1e-9 * abs(ours[-1])  # x part is exactly 0 here
    np.testing.assert_allclose(np.array(ours), np.array(gm.lower_bounds_) + C, rtol=1e-10)

    post = run.atoms_y.post
    shift = run.data.y_shift.numpy()
    np.testing.assert_allclose(post.mean.numpy() + shift, gm.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(post.mean_precision.numpy(), gm.mean_precision_, rtol=1e-8)
    np.testing.assert_allclose(post.dof.numpy(), gm.degrees_of_freedom_, rtol=1e-8)
    cov = post.scale_inv.numpy() / post.dof.numpy()[:, None, None]
    np.testing.assert_allclose(cov, gm.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(run.omega.a[:, 0].numpy(), gm.weight_concentration_[0], rtol=1e-8)
    np.testing.assert_allclose(run.omega.b[:, 0].numpy(), gm.weight_concentration_[1], rtol=1e-8)

    run.keep_xi = True
    run.update_cells()
    np.testing.assert_allclose(run.xi.numpy(), gm.predict_proba(Y), rtol=1e-7, atol=1e-9)


def test_x_layer_equals_sklearn():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [6, 1], [-3, 5]], float)
    labels = rng.integers(0, 3, size=150)
    X = centres[labels] + rng.normal(size=(150, 2))
    J, q = X.shape
    K, alpha = 5, 1.3
    rho0 = rng.dirichlet(np.ones(K), size=J)
    gm = sklearn_mixture(X, rho0, alpha, N_SWEEPS)

    group = np.repeat(np.arange(J), 2)
    Y = rng.normal(size=(group.size, 2))
    model = NAM(
        K=K, L=1, trunc_v="open", trunc_u="tsb", alpha=alpha, init="resp",
        init_resp=(np.ones((group.size, 1)), rho0), dtype="float64", device="cpu",
    )
    run = make_run(model, X, Y, group)
    C = sklearn_constant(K, alpha, J, q, 1.0, np.cov(X.T), q)
    ours = []
    for _ in range(N_SWEEPS):
        run.sweep()
        ours.append(_x_part(run))
    np.testing.assert_allclose(np.array(ours), np.array(gm.lower_bounds_) + C, rtol=1e-10)
    post = run.atoms_x.post
    np.testing.assert_allclose(post.mean.numpy() + run.data.x_shift.numpy(), gm.means_, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(post.dof.numpy(), gm.degrees_of_freedom_, rtol=1e-8)
    np.testing.assert_allclose(post.mean_precision.numpy(), gm.mean_precision_, rtol=1e-8)
    cov = post.scale_inv.numpy() / post.dof.numpy()[:, None, None]
    np.testing.assert_allclose(cov, gm.covariances_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(run.pi.a.numpy(), gm.weight_concentration_[0], rtol=1e-8)
    np.testing.assert_allclose(run.pi.b.numpy(), gm.weight_concentration_[1], rtol=1e-8)
    run.update_cells()
    run.update_individuals()
    np.testing.assert_allclose(run.rho.numpy(), gm.predict_proba(X), rtol=1e-7, atol=1e-9)
    assert torch.all(run.rho >= 0)
