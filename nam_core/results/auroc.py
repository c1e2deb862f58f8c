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
import scipy.sparse as sp
from scipy import stats

__all__ = ["rank_matrix", "cluster_auroc", "rows_of_x", "subsample_cells"]


def rank_matrix(X, block: int = 256) -> np.ndarray:
    """Ranks of every gene's expression over cells (ties averaged), float32.

    Parameters
    ----------
    X : array or sparse matrix (N, G)
        Expression (any monotone scale: log-normalised or counts give the same ranks).
    block : int
        Genes densified at a time.

    Returns
    -------
    ndarray (N, G) float32, ranks 1..N.
    """
    N, G = X.shape
    out = np.empty((N, G), dtype=np.float32)
    for start in range(0, G, block):
        cols = X[:, start:start + block]
        dense = cols.toarray() if sp.issparse(cols) else np.asarray(cols)
        out[:, start:start + block] = stats.rankdata(dense, axis=0)
    return out


def _rank_sums(ranks: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum of each gene's ranks over the cells of each cluster, (n_clusters, G) float64."""
    onehot = np.zeros((n_clusters, codes.size), dtype=ranks.dtype)
    onehot[codes, np.arange(codes.size)] = 1.0
    return (onehot @ ranks).astype(np.float64)  # BLAS: 3x faster than a sparse one-hot


def cluster_auroc(ranks: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """AUROC of every gene for every cluster against the rest (Mann-Whitney U / (n1 n0)).

    Parameters
    ----------
    ranks : array (N, G)
        Output of :func:`rank_matrix`.
    codes : array (N,) of int
        Cluster code 0..n_clusters-1 of each cell.
    n_clusters : int

    Returns
    -------
    ndarray (n_clusters, G); NaN for a cluster holding no cell or every cell.
    """
    N = codes.size
    n1 = np.bincount(codes, minlength=n_clusters).astype(np.float64)[:, None]
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
