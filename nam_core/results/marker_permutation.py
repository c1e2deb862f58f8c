"""A permutation test of marker strength: are a cluster's top markers stronger than chance.

Per cluster, the strength of its top markers (mean AUROC of its ``n_top`` best genes, chosen
anew in every permutation, so the selection is part of the null) against the same statistic for
cluster labels permuted among each individual's cells; empirical p-value
(1 + #{null >= observed}) / (1 + n_permutations).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..errors import NAMInputError
from .auroc import cluster_auroc, rank_matrix, rows_of_x, subsample_cells
from .labels import cluster_number

__all__ = ["marker_permutation_test", "permutation_test_cells"]

logger = logging.getLogger(__name__)


#: Cluster rows of one product with the ranks: permutations are batched up to this many rows,
#: so the (cells x genes) ranks are read once per batch, not once per permutation.
ROWS_PER_PRODUCT = 128


def _within_individual_permutation(individuals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index array that shuffles cells among those of the same individual."""
    by_individual = np.argsort(individuals, kind="stable")
    shuffled = np.lexsort((rng.random(individuals.size), individuals))
    perm = np.empty(individuals.size, dtype=np.int64)
    perm[by_individual] = shuffled
    return perm


def _top_mean(auroc: np.ndarray, n_top: int) -> np.ndarray:
    """Mean of the ``n_top`` largest values of each row (NaN rows stay NaN)."""
    n_top = min(n_top, auroc.shape[1])
    top = -np.partition(-np.nan_to_num(auroc, nan=-np.inf), n_top - 1, axis=1)[:, :n_top]
    out = top.mean(axis=1)
    out[np.isnan(auroc).all(axis=1)] = np.nan
    return out


def marker_permutation_test(
    ranks: np.ndarray,
    clusters,
    individuals,
    n_top: int = 10,
    n_permutations: int = 199,
    seed: int = 0,
) -> pd.DataFrame:
    """Strength of each cluster's top markers against labels permuted within individuals.

    Parameters
    ----------
    ranks : array (N, G)
        Output of :func:`rank_matrix` (the genes to search for markers).
    clusters : array (N,)
        Cluster of each cell.
    individuals : array (N,)
        Individual of each cell; labels are permuted among each individual's cells, so the
        null keeps every individual's composition.
    n_top : int
        Markers per cluster whose mean AUROC is the strength.
    n_permutations : int
        Permutations (p-values resolve to 1 / (n_permutations + 1)).
    seed : int
        Seed of the permutations (numpy ``default_rng``).

    Returns
    -------
    DataFrame with columns cluster, n_cells, strength (observed mean AUROC of the top
    ``n_top`` genes), null_mean, null_q95, p_value, n_permutations.
    """
    clusters = np.asarray(clusters, dtype=str)
    individuals = np.asarray(individuals, dtype=str)
    if ranks.shape[0] != clusters.size or clusters.size != individuals.size:
        raise NAMInputError(
            f"{ranks.shape[0]} cells of ranks, {clusters.size} cluster labels and "
            f"{individuals.size} individuals"
        )
    if n_permutations < 1 or n_top < 1:
        raise NAMInputError("n_permutations and n_top must be >= 1")
    names, codes = np.unique(clusters, return_inverse=True)
    _, ind_codes = np.unique(individuals, return_inverse=True)
    L = names.size
    t0 = time.perf_counter()
    observed = _top_mean(cluster_auroc(ranks, codes, L), n_top)
    rng = np.random.default_rng(seed)
    null = np.empty((n_permutations, L))
    batch = max(1, ROWS_PER_PRODUCT // L)
    for first in range(0, n_permutations, batch):
        permuted = np.stack([codes[_within_individual_permutation(ind_codes, rng)]
                             for _ in range(min(batch, n_permutations - first))])
        auroc = cluster_auroc(ranks, permuted, L)
        null[first:first + len(permuted)] = [_top_mean(a, n_top) for a in auroc]
    p = (1 + (null >= observed[None, :] - 1e-12).sum(axis=0)) / (1 + n_permutations)
    logger.info("marker permutation test: %d clusters, %d cells, %d genes, %d permutations in %.1f s",
                L, clusters.size, ranks.shape[1], n_permutations, time.perf_counter() - t0)
    return pd.DataFrame({
        "cluster": names,
        "n_cells": np.bincount(codes, minlength=L),
        "strength": observed,
        "null_mean": null.mean(axis=0),
        "null_q95": np.quantile(null, 0.95, axis=0),
        "p_value": p,
        "n_permutations": n_permutations,
    })


def permutation_test_cells(
    adata,
    groupby: str,
    individual_column: str,
    n_top: int = 10,
    n_permutations: int = 199,
    seed: int = 0,
    max_cells: int | None = 20_000,
    min_cells_expressing: float = 0.01,
    x_rows=None,
) -> pd.DataFrame:
    """:func:`marker_permutation_test` on an AnnData of log-normalised expression.

    Genes expressed in fewer than ``min_cells_expressing`` of the cells are left out (they
    cannot be markers of any cluster above that size); at most ``max_cells`` cells, drawn
    with ``seed``, are ranked, so memory is max_cells x genes x 4 bytes. ``x_rows`` (sorted rows
    -> X of those rows) reads them when ``adata`` holds no X.
    """
    for column in (groupby, individual_column):
        if column not in adata.obs.columns:
            raise NAMInputError(f"obs has no column {column!r}; available: {list(adata.obs.columns)}")
    keep = subsample_cells(adata.n_obs, max_cells, seed)
    X = rows_of_x(adata, keep, x_rows)
    detected = np.asarray((X > 0).sum(axis=0)).ravel() / max(keep.size, 1)
    genes = np.flatnonzero(detected >= min_cells_expressing)
    ranks = rank_matrix(X[:, genes])
    obs = adata.obs.iloc[keep]
    out = marker_permutation_test(ranks, obs[groupby].astype(str).to_numpy(),
                                  obs[individual_column].astype(str).to_numpy(), n_top=n_top,
                                  n_permutations=n_permutations, seed=seed)
    order = np.argsort([cluster_number(c) for c in out["cluster"]], kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    out.insert(2, "n_genes", genes.size)
    return out
