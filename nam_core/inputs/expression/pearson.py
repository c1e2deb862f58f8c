"""Analytic Pearson residuals (Lause, Berens & Kobak 2021), streamed over blocks of cells.

For counts x_cg of cell c and gene g, with n_c the cell's total, p_g = (gene total) / (grand
total) and mu_cg = n_c p_g, the residual of a negative binomial offset model with overdispersion
theta is

    r_cg = clip((x_cg - mu_cg) / sqrt(mu_cg + mu_cg^2 / theta), -clip, clip),   clip = sqrt(N).

This reproduces scanpy's ``experimental.pp.normalize_pearson_residuals`` and
``experimental.pp.highly_variable_genes(flavor="pearson_residuals")`` (theta = 100, clip =
sqrt(N), genes ranked by the population variance of their residuals) without holding the cells:

* the residual variance of every gene is summed over the stored (nonzero) counts directly, and
  the zeros' part sum_c f(n_c p_g) exactly by grouping the cells by library size n_c (U distinct
  sizes: a (U, genes) table in gene chunks), less the f terms of the nonzero cells. A zero's
  residual is -sqrt(mu theta / (theta + mu)), of magnitude below sqrt(theta), so zeros never
  clip when sqrt(N) > sqrt(theta), i.e. N > theta; the clip is applied to them all the same, so
  the sums are exact for any N;
* the PCA input is the residuals of the selected genes in dense row chunks, recomputed on those
  genes only (n_c and p_g over the selected genes), as scanpy's
  ``normalize_pearson_residuals_pca`` does, centred and not scaled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .pca import PCA_CHUNK

__all__ = [
    "PEARSON_THETA", "pearson_hvgs", "pearson_residuals", "residual_chunks", "residual_variances",
]

#: Overdispersion theta shared by all genes (scanpy's and Lause et al.'s default).
PEARSON_THETA = 100.0

_ZERO_TABLE = 1 << 22  # entries of one (sizes, genes) table of the zeros' residuals (32 MB)


def _residual(x: np.ndarray, mu: np.ndarray, theta: float, clip: float) -> np.ndarray:
    """Clipped residuals (same shape as ``x``); 0 where mu = 0 (a cell or gene without counts)."""
    sd = np.sqrt(mu + mu * mu / theta)
    r = np.divide(x - mu, sd, out=np.zeros(np.broadcast(x, mu).shape), where=sd > 0)
    return np.clip(r, -clip, clip, out=r)


def _zero_residual(mu: np.ndarray, theta: float, clip: float) -> np.ndarray:
    """Clipped residual of a zero count, -sqrt(mu theta / (theta + mu)), for means ``mu``."""
    return np.maximum(-np.sqrt(mu * theta / (theta + mu)), -clip)


def pearson_residuals(x, cell_totals: np.ndarray, gene_p: np.ndarray,
                      theta: float = PEARSON_THETA, clip: float | None = None) -> np.ndarray:
    """Dense float64 residuals (n, G) of counts ``x`` (n, G), sparse or dense.

    Parameters
    ----------
    x : (n, G) counts
    cell_totals : (n,) n_c, the cells' totals over the genes that define p
    gene_p : (G,) p_g, each gene's share of the grand total
    theta : float
    clip : float or None
        None: sqrt(n).
    """
    x = np.array(x.toarray() if sp.issparse(x) else x, dtype=np.float64)  # a copy, made residuals
    clip = np.sqrt(x.shape[0]) if clip is None else clip
    mu = np.multiply.outer(np.asarray(cell_totals, np.float64), np.asarray(gene_p, np.float64))
    sd = mu * mu  # in place from here: three (n, G) arrays at most
    sd /= theta
    sd += mu
    np.sqrt(sd, out=sd)
    x -= mu
    del mu
    empty = sd == 0
    np.divide(x, sd, out=x, where=~empty)
    x[empty] = 0.0
    return np.clip(x, -clip, clip, out=x)


def _zero_sums(cell_totals: np.ndarray, gene_p: np.ndarray, theta: float,
               clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Sums over all cells of a zero's residual and its square, (G,) each.

    Exact: the cells are grouped by their total n_c (U distinct values with multiplicities w_u),
    so the sum is w^T f(n_u p_g) over a (U, G) table computed in gene chunks.
    """
    sizes, weights = np.unique(np.asarray(cell_totals, np.float64), return_counts=True)
    weights = weights.astype(np.float64)
    s1, s2 = np.zeros(gene_p.size), np.zeros(gene_p.size)
    step = max(1, _ZERO_TABLE // max(sizes.size, 1))
    for start in range(0, gene_p.size, step):
        r0 = _zero_residual(sizes[:, None] * gene_p[None, start : start + step], theta, clip)
        s1[start : start + step] = weights @ r0
        s2[start : start + step] = weights @ (r0 * r0)
    return s1, s2


def residual_variances(count_blocks: Iterable[sp.csr_matrix], cell_totals: np.ndarray,
                       gene_totals: np.ndarray, theta: float = PEARSON_THETA,
                       clip: float | None = None) -> np.ndarray:
    """Population variance (G,) of each gene's clipped residuals over all N cells, streamed.

    Parameters
    ----------
    count_blocks : iterable of CSR (n_b, G)
        The counts, in the order of ``cell_totals``; one block held at a time.
    cell_totals : (N,) n_c over the G genes
    gene_totals : (G,) gene totals over the N cells
    theta, clip : float; clip None means sqrt(N)

    Returns
    -------
    ndarray (G,) float64; 0 for a gene without counts (as scanpy sets it).
    """
    n = cell_totals.size
    clip = float(np.sqrt(n)) if clip is None else clip
    gene_p = gene_totals / gene_totals.sum()
    s1, s2 = _zero_sums(cell_totals, gene_p, theta, clip)
    at = 0
    for block in count_blocks:
        block = block.tocsr()
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        nonzero = block.data != 0
        cols, x = block.indices[nonzero], block.data[nonzero].astype(np.float64)
        mu = cell_totals[at + rows[nonzero]] * gene_p[cols]
        r, r0 = _residual(x, mu, theta, clip), _zero_residual(mu, theta, clip)
        s1 += np.bincount(cols, weights=r - r0, minlength=s1.size)
        s2 += np.bincount(cols, weights=r * r - r0 * r0, minlength=s2.size)
        at += block.shape[0]
    if at != n:
        raise ValueError(f"the blocks hold {at} cells, cell_totals {n}")
    variance = np.clip(s2 / n - (s1 / n) ** 2, 0.0, None)
    return np.where(gene_totals > 0, variance, 0.0)


def pearson_hvgs(gene_sums: np.ndarray, gene_sq_sums: np.ndarray, n_cells: int,
                 residual_var: np.ndarray, n_top_genes: int) -> pd.DataFrame:
    """Scanpy's ``highly_variable_genes(flavor="pearson_residuals")`` table (one batch).

    Parameters
    ----------
    gene_sums, gene_sq_sums : (G,) sums of counts and of squared counts over the cells
    n_cells : int
    residual_var : (G,) from :func:`residual_variances`
    n_top_genes : int

    Returns
    -------
    DataFrame (G,) with means and variances (ddof 1) of the counts, residual_variances,
    highly_variable_rank (0 = most variable; NaN outside the top genes) and highly_variable.
    """
    ranks = np.argsort(np.argsort(-residual_var[None, :], axis=1), axis=1)[0].astype(np.float32)
    top = ranks < n_top_genes
    means = gene_sums / n_cells
    variances = (gene_sq_sums - n_cells * means**2) / max(n_cells - 1, 1)
    return pd.DataFrame({
        "means": means, "variances": variances, "residual_variances": residual_var,
        "highly_variable_rank": np.where(top, ranks, np.nan), "highly_variable": top,
    })


def residual_chunks(count_blocks: Iterable[sp.csr_matrix], genes: np.ndarray,
                    cell_totals: np.ndarray, gene_p: np.ndarray, theta: float = PEARSON_THETA,
                    clip: float | None = None, chunk: int = PCA_CHUNK) -> Iterator[np.ndarray]:
    """Dense residuals (<= chunk, H) of the columns ``genes`` of each block, in block order.

    ``cell_totals`` (N,) and ``gene_p`` (H,) are over those H genes only; clip None: sqrt(N).
    """
    clip = float(np.sqrt(cell_totals.size)) if clip is None else clip
    at = 0
    for block in count_blocks:
        sub = block[:, genes]
        for start in range(0, sub.shape[0], chunk):
            stop = min(start + chunk, sub.shape[0])
            yield pearson_residuals(sub[start:stop], cell_totals[at + start : at + stop], gene_p,
                                    theta, clip)
        at += sub.shape[0]
