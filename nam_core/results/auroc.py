"""AUROC of genes for cell clusters, from the genes' ranks over cells.

The AUROC of a gene for a cluster against all other cells is the probability that a random cell
of the cluster expresses the gene more than a random other cell (0.5: no signal), the
Mann-Whitney U over the product of the group sizes. It is computed from the genes' ranks over
cells, which do not change when cluster labels are permuted, so a permutation test ranks once.
Used by the naming (:mod:`nam_core.results.naming`) and the marker permutation test
(:mod:`nam_core.results.marker_permutation`).
"""

from __future__ import annotations

import numpy as np

from .rank_sums import column_ranks

__all__ = ["rank_matrix", "cluster_auroc", "rows_of_x", "subsample_cells"]


def rank_matrix(X) -> np.ndarray:
    """Ranks of every gene's expression over cells (ties averaged), float32.

    Only the non-zero values are sorted (:func:`~nam_core.results.rank_sums.column_ranks`);
    a gene's zeros share one rank.

    Parameters
    ----------
    X : array or sparse matrix (N, G)
        Expression (any monotone scale: log-normalised or counts give the same ranks).

    Returns
    -------
    ndarray (N, G) float32, ranks 1..N.
    """
    return column_ranks(X).dense(np.float32)


def _rank_sums(ranks: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum of each gene's ranks over the cells of each cluster, (..., n_clusters, G) float64.

    ``codes`` (N,) or (B, N): B labellings at once, one matrix product that reads ``ranks``
    once (the product is bound by reading ``ranks``, not by its arithmetic).
    """
    labellings = np.atleast_2d(codes)
    onehot = np.zeros((labellings.shape[0], n_clusters, codes.shape[-1]), dtype=ranks.dtype)
    for b, row in enumerate(labellings):
        onehot[b, row, np.arange(row.size)] = 1.0
    sums = (onehot.reshape(-1, codes.shape[-1]) @ ranks).astype(np.float64)  # BLAS: 3x faster than a sparse one-hot
    return sums.reshape(*codes.shape[:-1], n_clusters, ranks.shape[1])


def cluster_auroc(ranks: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """AUROC of every gene for every cluster against the rest (Mann-Whitney U / (n1 n0)).

    Parameters
    ----------
    ranks : array (N, G)
        Output of :func:`rank_matrix`.
    codes : array (N,) or (B, N) of int
        Cluster code 0..n_clusters-1 of each cell (B labellings: a permutation test's batch).
    n_clusters : int

    Returns
    -------
    ndarray (n_clusters, G), or (B, n_clusters, G); NaN for a cluster holding no cell or
    every cell.
    """
    N = codes.shape[-1]
    n1 = np.apply_along_axis(np.bincount, -1, codes, minlength=n_clusters)
    n1 = n1.astype(np.float64)[..., None]
    u = _rank_sums(ranks, codes, n_clusters) - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return u / (n1 * (N - n1))


def rows_of_x(adata, rows: np.ndarray, x_rows=None):
    """X of the sorted ``rows`` (sparse or dense).

    ``x_rows(rows)`` when given (e.g. :func:`~nam_core.inputs.h5ad.read_rows` of the file),
    else from ``adata.X``.
    """
    if x_rows is not None:
        return x_rows(rows)
    return adata.X if rows.size == adata.n_obs else adata.X[rows]


def subsample_cells(n: int, max_cells: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_cells`` of ``n`` cells (all when None or n <= max_cells)."""
    if max_cells is None or n <= max_cells:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_cells, replace=False))
