"""Shared helpers for the nam_core tests: small data and direct access to one CAVI run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture

from nam_core import NAM, simulate


def small_data(seed=0, J=12, q=2, p=3, n_clusters=2, n_types=3, mean_cells=25):
    return simulate(
        J=J, n_clusters=n_clusters, q=q, p=p, n_cell_types=n_types, mean_cells=mean_cells,
        min_cells=5, seed=seed,
    )


def make_run(model: NAM, X, Y, group, seed=0):
    """Validate, prepare and initialise one run of ``model`` without sweeping."""
    return model.initialised_run(X, Y, group, seed)[0]


def random_resp(n, k, rng):
    r = rng.dirichlet(np.ones(k), size=n)
    return r


def log_wishart_norm_np(scale_inv, nu):
    """log B(Psi0, nu0) with Psi0 = inv(scale_inv), numpy, for the scikit-learn constant."""
    d = scale_inv.shape[0]
    logdet_scale = -np.linalg.slogdet(scale_inv)[1]
    return (
        -0.5 * nu * logdet_scale
        - 0.5 * nu * d * math.log(2)
        - d * (d - 1) / 4 * math.log(math.pi)
        - sum(math.lgamma((nu + 1 - i) / 2) for i in range(1, d + 1))
    )


def sklearn_constant(n_components, conc, n, d, lam0, scale_inv, nu0):
    """C with L_ours = lower_bound + C (docs/model.md, DP mixtures = scikit-learn)."""
    return (
        n_components * math.log(conc)
        - n * d / 2 * math.log(2 * math.pi)
        + n_components * d / 2 * math.log(lam0)
        + n_components * (log_wishart_norm_np(scale_inv, nu0) + d * (d - 1) / 4 * math.log(math.pi))
    )


class _FromResp(BayesianGaussianMixture):
    """scikit-learn mixture started from given responsibilities."""

    def __init__(self, resp0=None, **kw):
        super().__init__(**kw)
        self.resp0 = resp0

    def _initialize_parameters(self, X, random_state, xp=None):
        self._initialize(X, self.resp0)


def sklearn_mixture(Z, resp0, conc, n_sweeps):
    """scikit-learn's DP mixture (full covariances, no regularisation) after ``n_sweeps`` sweeps from ``resp0``."""
    gm = _FromResp(
        resp0=resp0, n_components=resp0.shape[1], covariance_type="full",
        weight_concentration_prior_type="dirichlet_process", weight_concentration_prior=conc,
        mean_precision_prior=1.0, reg_covar=0.0, max_iter=n_sweeps, tol=0.0, n_init=1,
    )
    gm._get_param_names = BayesianGaussianMixture._get_param_names  # keep sklearn's params check
    with pytest.warns(Warning):  # it never "converges" with tol=0
        gm.fit(Z)
    return gm
