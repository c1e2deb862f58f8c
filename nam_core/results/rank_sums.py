"""The Wilcoxon rank-sum test of each group against the rest, ranking stored values only.

The test, its statistic and its p-values are those of ``scanpy.tl.rank_genes_groups(method=
"wilcoxon", reference="rest")`` (no tie correction): per gene, every cell is ranked among all
cells (ties share their average rank), a group's rank sum W gives the z-score
(W - n1 (n + 1) / 2) / sqrt(n1 (n - n1) (n + 1) / 12), two-sided normal p-values are adjusted
by Benjamini-Hochberg across genes, and the log2 fold change compares expm1 of the group's and
the rest's mean expression.

scanpy sorts every cell of every gene (a dense copy of each block of genes). In a sparse
expression matrix most of a gene's cells hold the same value, zero, and share one average rank,
so only the stored values need sorting: each column of a CSC copy is sorted once, and each
group's rank sum is the sum of its stored values' ranks plus its zeros times the zeros' rank.
Average ranks are whole or half numbers, so every sum is exact in float64 (below 2^52) and the
rank sums equal scanpy's, whatever the order of summation. The same ranks
(:func:`column_ranks`) give the AUROCs of :mod:`nam_core.results.auroc`.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["ColumnRanks", "RankSumResult", "column_ranks", "group_rank_sums", "rank_sum_test"]


@numba.njit(cache=True, nogil=True)
def _stored_value_ranks(data, indptr, n_rows):
    """Each stored value's average rank among all n_rows values of its column, zeros included.

    Parameters
    ----------
    data, indptr : CSC arrays of an (n_rows, G) matrix without stored zeros

    Returns
    -------
    ranks : ndarray (nnz,) float64, in the storage order of ``data``
    zero_rank : ndarray (G,) float64, the average rank that each column's zeros share
    """
    n_columns = indptr.size - 1
    ranks = np.empty(data.size)
    zero_rank = np.empty(n_columns)
    for column in range(n_columns):
        start, end = indptr[column], indptr[column + 1]
        values = data[start:end]
        order = np.argsort(values, kind="mergesort")
        n_zeros = n_rows - (end - start)
        negatives = 0
        first = 0
        while first < order.size:
            last = first
            value = values[order[first]]
            while last + 1 < order.size and values[order[last + 1]] == value:
                last += 1
            rank = 0.5 * (first + last) + 1.0  # average rank among the stored values
            if value < 0:
                negatives = last + 1
            else:
                rank += n_zeros
            for at in range(first, last + 1):
                ranks[start + order[at]] = rank
            first = last + 1
        zero_rank[column] = negatives + 0.5 * (n_zeros + 1)
    return ranks, zero_rank


@numba.njit(cache=True, nogil=True)
def _sums_by_code(values, indices, indptr, codes, n_codes):
    """Per column, the sum and the count of the stored values of each row code: (n_codes, G)."""
    n_columns = indptr.size - 1
    sums = np.zeros((n_codes, n_columns))
    stored = np.zeros((n_codes, n_columns), dtype=np.int64)
    for column in range(n_columns):
        for at in range(indptr[column], indptr[column + 1]):
            code = codes[indices[at]]
            sums[code, column] += values[at]
            stored[code, column] += 1
    return sums, stored


@numba.njit(cache=True, nogil=True)
def _place_stored(out, values, indices, indptr):
    """Write the stored values of a CSC matrix into the dense ``out`` (n, G), in place."""
    for column in range(indptr.size - 1):
        for at in range(indptr[column], indptr[column + 1]):
            out[indices[at], column] = values[at]


@dataclasses.dataclass
class ColumnRanks:
    """Every column's values ranked over the rows (ties: average rank), stored sparsely.

    Attributes
    ----------
    ranks : csc_matrix (n, G) float64
        The rank of each non-zero value, where the matrix stores it.
    zero_rank : ndarray (G,) float64
        The rank that a column's zeros share.
    """

    ranks: sp.csc_matrix
    zero_rank: np.ndarray

    def dense(self, dtype=np.float32) -> np.ndarray:
        """All ranks, (n, G) in ``dtype``."""
        out = np.empty(self.ranks.shape, dtype=dtype)
        out[:] = self.zero_rank[None, :]
        _place_stored(out, self.ranks.data, self.ranks.indices, self.ranks.indptr)
        return out

    def group_sums(self, codes: np.ndarray, n_codes: int) -> np.ndarray:
        """Sum of each group's ranks per column, (n_codes, G) float64, exact."""
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        sums, stored = _sums_by_code(self.ranks.data, self.ranks.indices, self.ranks.indptr,
                                     codes, n_codes)
        sizes = np.bincount(codes, minlength=n_codes)
        return sums + (sizes[:, None] - stored) * self.zero_rank[None, :]


def column_ranks(X) -> ColumnRanks:
    """Rank each column of ``X`` (n, G), sparse or dense, sorting its non-zero values only."""
    X = sp.csc_matrix(X, copy=True)
    X.eliminate_zeros()
    X.sort_indices()
    ranks, zero_rank = _stored_value_ranks(X.data, X.indptr, X.shape[0])
    return ColumnRanks(sp.csc_matrix((ranks, X.indices, X.indptr), shape=X.shape), zero_rank)


def group_rank_sums(X, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Per gene, the sum of each group's ranks among all cells (ties: average rank).

    Parameters
    ----------
    X : sparse or dense matrix (n, G)
        Values to rank, column by column (sparse: zeros are the unstored values).
    codes : ndarray (n,) of int
        Each cell's group in [0, n_codes).
    n_codes : int

    Returns
    -------
    ndarray (n_codes, G) float64: rank sums, equal to summing the ranks of a full ranking.
    """
    return column_ranks(X).group_sums(codes, n_codes)


@dataclasses.dataclass
class RankSumResult:
    """Statistics of each tested group against the rest, arrays of shape (groups, G).

    Attributes
    ----------
    scores : z-scores of the rank sums (scanpy's ``scores``).
    pvals_adj : Benjamini-Hochberg adjusted two-sided p-values across genes.
    logfoldchanges : log2 of (expm1(group mean) + 1e-9) / (expm1(rest mean) + 1e-9).
    """

    scores: np.ndarray
    pvals_adj: np.ndarray
    logfoldchanges: np.ndarray


def _mean_by_group(X, codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Means (n_codes, G) of each group's cells and of all other cells, float64."""
    n = X.shape[0]
    members = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_codes, n))
    totals = members @ X
    totals = np.asarray(totals.toarray() if sp.issparse(totals) else totals, dtype=np.float64)
    sizes = np.bincount(codes, minlength=n_codes).astype(np.float64)
    rest = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()[None, :] - totals
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / sizes[:, None], rest / (n - sizes)[:, None]


def rank_sum_test(X, codes: np.ndarray, tested: list[int]) -> RankSumResult:
    """Wilcoxon rank-sum test of each tested group against all other cells, gene by gene.

    Parameters
    ----------
    X : sparse or dense matrix (n, G)
        Log-normalised expression (float32 or float64).
    codes : ndarray (n,) of int
        Each cell's group; cells of untested groups are ranked and count in the rest.
    tested : list of int
        Groups tested, each with at least one cell and fewer than n.

    Returns
    -------
    RankSumResult, rows in the order of ``tested``.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    n = X.shape[0]
    n_codes = int(codes.max()) + 1
    sums = group_rank_sums(X, codes, n_codes)[tested]
    n_active = np.bincount(codes, minlength=n_codes)[tested].astype(np.float64)[:, None]
    std_dev = np.sqrt(n_active * (n - n_active) * (n + 1) / 12.0)
    scores = (sums - n_active * (n + 1) / 2.0) / std_dev
    scores[np.isnan(scores)] = 0
    pvals = 2 * stats.distributions.norm.sf(np.abs(scores))
    pvals_adj = np.vstack([multipletests(row, alpha=0.05, method="fdr_bh")[1] for row in pvals])
    means, means_rest = _mean_by_group(X, codes, n_codes)
    folds = (np.expm1(means[tested]) + 1e-9) / (np.expm1(means_rest[tested]) + 1e-9)
    with np.errstate(invalid="ignore"):  # scaled values: a negative mean gives no fold change
        return RankSumResult(scores, pvals_adj, np.log2(folds))
