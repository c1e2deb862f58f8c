"""Each individual cluster's mean composition, drawn by a Bayesian bootstrap over its individuals."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from .counts import MIN_MEAN_CELLS, counts_with_cells, tested_cell_clusters

__all__ = ["bootstrap_compositions"]

logger = logging.getLogger(__name__)


def bootstrap_compositions(
    counts: pd.DataFrame,
    n_draws: int = 1000,
    seed: int = 0,
    min_individuals: int = 2,
    min_mean_cells: float = MIN_MEAN_CELLS,
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
    names = sorted(set(clusters), key=lambda k: int(k[1:]))
    kept = [k for k in names if (clusters == k).sum() >= min_individuals]
    if len(kept) < len(names):
        logger.warning("left out of the composition differences (fewer than %d individuals): %s",
                       min_individuals, sorted(set(names) - set(kept)))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_draws, len(kept), len(tested)))
    for i, k in enumerate(kept):
        members = shares[clusters == k]
        weights = rng.dirichlet(np.ones(len(members)), size=n_draws)
        draws[:, i] = weights @ members
    return {"draws": draws, "individual_clusters": np.asarray(kept),
            "cell_clusters": np.asarray(tested, dtype=str),
            "sizes": np.array([(clusters == k).sum() for k in kept])}
