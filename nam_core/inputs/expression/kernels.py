"""Compiled one-pass kernels over a CSR block's arrays (numba): selection, QC sums and moments.

Each replaces several numpy passes (a row id per value, gathers, masks, ``bincount``) by one
loop over the stored values, a few nanoseconds per value. Sums are taken in the order numpy's
``bincount`` takes them (value by value, in storage order), into fresh arrays per block, so
the results equal those of the numpy expressions they replace.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gene_detections", "kept_moments", "row_qc_sums", "select_rows_columns"]


@numba.njit(cache=True, nogil=True)
def select_rows_columns(data, indices, indptr, keep_row, new_column):
    """The rows with ``keep_row`` and the columns with ``new_column >= 0``, stored zeros dropped.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of a block of n rows
    keep_row : ndarray (n,) of bool
    new_column : ndarray (G,) of int
        Each column's index in the result, -1 for a dropped column.

    Returns
    -------
    data (nnz',) of data's dtype, indices (nnz',) int32, indptr (n' + 1,) int64
    """
    n_kept = 0
    nnz = 0
    for row in range(indptr.size - 1):
        if keep_row[row]:
            n_kept += 1
            for at in range(indptr[row], indptr[row + 1]):
                if new_column[indices[at]] >= 0 and data[at] != 0:
                    nnz += 1
    out_data = np.empty(nnz, dtype=data.dtype)
    out_indices = np.empty(nnz, dtype=np.int32)
    out_indptr = np.zeros(n_kept + 1, dtype=np.int64)
    k = 0
    out_row = 0
    for row in range(indptr.size - 1):
        if not keep_row[row]:
            continue
        for at in range(indptr[row], indptr[row + 1]):
            column = new_column[indices[at]]
            if column >= 0 and data[at] != 0:
                out_data[k] = data[at]
                out_indices[k] = column
                k += 1
        out_row += 1
        out_indptr[out_row] = k
    return out_data, out_indices, out_indptr


@numba.njit(cache=True, nogil=True)
def row_qc_sums(data, indices, indptr, is_mt, n_genes):
    """Per row: detected genes, total and mitochondrial counts; per gene: total and detections.

    Returns
    -------
    detected (n,) int64, total (n,) float64, total_mt (n,) float64,
    gene_total (G,) float64, gene_detected (G,) int64
    """
    n = indptr.size - 1
    detected = np.zeros(n, dtype=np.int64)
    total = np.zeros(n)
    total_mt = np.zeros(n)
    gene_total = np.zeros(n_genes)
    gene_detected = np.zeros(n_genes, dtype=np.int64)
    for row in range(n):
        for at in range(indptr[row], indptr[row + 1]):
            value = np.float64(data[at])
            gene = indices[at]
            total[row] += value
            gene_total[gene] += value
            if is_mt[gene]:
                total_mt[row] += value
            if data[at] > 0:
                detected[row] += 1
                gene_detected[gene] += 1
    return detected, total, total_mt, gene_total, gene_detected


@numba.njit(cache=True, nogil=True)
def gene_detections(data, indices, indptr, keep_row, n_genes):
    """Per gene (G,) int64: rows with ``keep_row`` that store a positive value for it."""
    out = np.zeros(n_genes, dtype=np.int64)
    for row in range(indptr.size - 1):
        if keep_row[row]:
            for at in range(indptr[row], indptr[row + 1]):
                if data[at] > 0:
                    out[indices[at]] += 1
    return out


@numba.njit(cache=True, nogil=True)
def kept_moments(counts, normalised, indices, indptr, n_genes):
    """Per-gene sums and sums of squares of ``normalised`` and ``counts``, and each row's total.

    ``counts`` and ``normalised`` hold the values of one CSR pattern (``indices``, ``indptr``).

    Returns
    -------
    total, total_sq, counts_total, counts_sq : (G,) float64; row_totals : (n,) float64
    """
    total = np.zeros(n_genes)
    total_sq = np.zeros(n_genes)
    counts_total = np.zeros(n_genes)
    counts_sq = np.zeros(n_genes)
    row_totals = np.zeros(indptr.size - 1)
    for row in range(indptr.size - 1):
        for at in range(indptr[row], indptr[row + 1]):
            gene = indices[at]
            value = np.float64(normalised[at])
            raw = np.float64(counts[at])
            total[gene] += value
            total_sq[gene] += value * value
            counts_total[gene] += raw
            counts_sq[gene] += raw * raw
            row_totals[row] += raw
    return total, total_sq, counts_total, counts_sq, row_totals
