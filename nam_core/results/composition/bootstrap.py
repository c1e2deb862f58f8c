"""Each individual cluster's mean composition, drawn by a Bayesian bootstrap over its individuals."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from ..labels import cluster_number
from .adjust import Covariates, covariate_columns
from .counts import MIN_MEAN_CELLS, counts_with_cells, tested_cell_clusters

__all__ = ["bootstrap_compositions"]

logger = logging.getLogger(__name__)


def bootstrap_compositions(
    counts: pd.DataFrame,
    n_draws: int = 1000,
    seed: int = 0,
    min_individuals: int = 2,
    min_mean_cells: float = MIN_MEAN_CELLS,
    covariates: Covariates | None = None,
) -> dict:
    """Draws of each individual cluster's mean composition from a Bayesian bootstrap over its individuals.

    Rubin's (1981) Bayesian bootstrap: per draw, Dirichlet(1, ..., 1) weights on the
    individuals of a cluster, and the composition is the weighted mean of their proportions.
    These are draws from the posterior of the population mean composition under a Dirichlet
    process model of the individuals with a vanishing prior, so they carry the spread between
    individuals that q(u) leaves out (q(u) pools the cluster's cells as one multinomial). The
    proportions are the individuals' raw shares (no pseudo-count, which would tie a sparse
    cluster's share to the individual's total), so a cluster with no cell of a cell cluster has
    share 0 and an infinite log-ratio against the others.

    Covariates are adjusted for by regression, not stratification (strata of a numeric covariate
    such as age would be arbitrary, and strata of several covariates would be too small to
    resample). In each draw, weighted least squares of every donor's share on one indicator per
    individual cluster (no intercept) and the covariates (numeric centred at the mean over the
    donors of the test, categorical one-hot, first level dropped), with the draw's weights:
    Dirichlet(1, ..., 1) within each cluster, scaled to the cluster's share of the donors. The
    cluster's coefficient is its mean share at the cohort's mean covariates (the reference
    level of a categorical one), and a difference of two coefficients is the covariate-adjusted
    difference. Without covariates this is the weighted mean above. Adjusted shares below 0 are
    set to 0. Donors without covariates are left out.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster (``I<k>``), then cells per cell cluster (``C<l>``); individuals
        without cells are left out.
    n_draws : int
        Bootstrap draws.
    seed : int
        Seed of the Dirichlet weights (numpy ``default_rng``).
    min_individuals : int
        Clusters with fewer individuals (with cells) are left out: one individual has no
        spread to draw from.
    min_mean_cells : float
        Only cell clusters of :func:`tested_cell_clusters` are kept (shares stay those of all
        the individual's cells).
    covariates : Covariates or None
        Donor covariates adjusted for (None or empty: none).

    Returns
    -------
    dict with ``draws`` (n_draws, K_kept, L_tested) float64, ``individual_clusters``
    (K_kept,), ``cell_clusters`` (L_tested,) and ``sizes`` (K_kept,) individuals per cluster;
    the layout of :func:`draw_compositions`, so :func:`posterior_differences` takes either.
    """
    if n_draws < 1:
        raise NAMInputError(f"n_draws must be >= 1, got {n_draws}")
    tested = tested_cell_clusters(counts, min_mean_cells)
    counts, cell_cols = counts_with_cells(counts)
    n = counts[cell_cols].to_numpy(dtype=np.float64)
    shares = (n / n.sum(1, keepdims=True))[:, [cell_cols.index(c) for c in tested]]
    clusters = counts["cluster"].astype(str).to_numpy()
    individuals = counts["individual"].astype(str).to_numpy()
    if covariates:
        with_cov = covariates.kept(individuals)
        if not with_cov.all():
            logger.info("bootstrap: %d individuals without covariates left out",
                        int((~with_cov).sum()))
        shares, clusters, individuals = shares[with_cov], clusters[with_cov], individuals[with_cov]
    names = sorted(set(clusters), key=cluster_number)
    kept = [k for k in names if (clusters == k).sum() >= min_individuals]
    if len(kept) < len(names):
        logger.warning("left out of the composition differences (fewer than %d individuals): %s",
                       min_individuals, sorted(set(names) - set(kept)))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_draws, len(kept), len(tested)))
    weights = np.zeros((n_draws, len(clusters)))
    for i, k in enumerate(kept):
        members = clusters == k
        w = rng.dirichlet(np.ones(int(members.sum())), size=n_draws)
        draws[:, i] = w @ shares[members]
        weights[:, members] = w * members.sum()
    if covariates:
        draws = _adjusted_draws(shares, clusters, individuals, kept, weights, covariates)
    return {"draws": draws, "individual_clusters": np.asarray(kept),
            "cell_clusters": np.asarray(tested, dtype=str),
            "sizes": np.array([(clusters == k).sum() for k in kept])}


def _adjusted_draws(shares, clusters, individuals, kept, weights, covariates) -> np.ndarray:
    """Per draw, WLS of the shares (J, L) on cluster indicators and centred covariates.

    ``weights`` (n_draws, J) are the bootstrap weights (0 for donors of clusters left out).
    Returns the clusters' coefficients (n_draws, K_kept, L), clipped at 0.
    """
    rows = np.isin(clusters, kept)
    cov, names = covariate_columns(covariates, individuals[rows])
    indicators = (clusters[rows, None] == np.asarray(kept)[None]).astype(np.float64)
    X = np.column_stack([indicators, cov])  # (J_kept, K + c)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise NAMInputError(f"the covariates {names} are collinear with the individual clusters "
                            "(a covariate level held by one cluster alone); the adjusted "
                            "differences cannot be estimated")
    w = weights[:, rows]
    xtwx = np.einsum("dj,jp,jq->dpq", w, X, X)
    xtwy = np.einsum("dj,jp,jl->dpl", w, X, shares[rows])
    coef = np.linalg.solve(xtwx + 1e-12 * np.eye(X.shape[1]), xtwy)  # (n_draws, K + c, L)
    return np.clip(coef[:, : len(kept)], 0.0, None)
