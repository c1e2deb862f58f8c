"""The compiled preprocessing kernels equal the numpy and scipy expressions they replace."""

import numpy as np
import pytest
import scipy.sparse as sp

from nam_core.inputs.expression.kernels import (
    gene_detections,
    kept_moments,
    row_qc_sums,
    select_rows_columns,
)


def _block(index_dtype, n_rows: int = 60, n_genes: int = 25, seed: int = 0) -> sp.csr_matrix:
    """Poisson counts with empty rows, stored zeros and unsorted column indices."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.5, size=(n_rows, n_genes)).astype(np.float32)
    X[::7] = 0
    block = sp.csr_matrix(X)
    block.data[::5] = 0  # stored zeros, as a file may hold them
    for row in range(0, n_rows, 3):  # reverse some rows' columns
        lo, hi = block.indptr[row], block.indptr[row + 1]
        block.indices[lo:hi] = block.indices[lo:hi][::-1]
        block.data[lo:hi] = block.data[lo:hi][::-1]
    block.indices = block.indices.astype(index_dtype)
    block.indptr = block.indptr.astype(index_dtype)
    return block


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_selection_equals_scipy_indexing(index_dtype):
    block = _block(index_dtype)
    rng = np.random.default_rng(1)
    rows, columns = rng.random(block.shape[0]) < 0.6, rng.random(block.shape[1]) < 0.7
    new_column = np.where(columns, np.cumsum(columns) - 1, -1)
    data, indices, indptr = select_rows_columns(block.data, block.indices, block.indptr, rows,
                                                new_column)
    got = sp.csr_matrix((data, indices, indptr), shape=(rows.sum(), columns.sum()))
    expected = block[rows][:, columns]
    expected.eliminate_zeros()
    assert got.nnz == expected.nnz
    assert np.array_equal(got.toarray(), expected.toarray())
    assert data.dtype == np.float32


def test_selection_of_no_row_is_empty():
    block = _block(np.int32)
    data, indices, indptr = select_rows_columns(block.data, block.indices, block.indptr,
                                                np.zeros(block.shape[0], bool),
                                                np.arange(block.shape[1]))
    assert data.size == indices.size == 0 and np.array_equal(indptr, [0])


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_qc_sums_equal_scipy_sums(index_dtype):
    block = _block(index_dtype)
    is_mt = np.zeros(block.shape[1], bool)
    is_mt[[2, 11]] = True
    detected, total, total_mt, gene_total, gene_detected = row_qc_sums(
        block.data, block.indices, block.indptr, is_mt, block.shape[1])
    dense = block.toarray().astype(np.float64)
    assert np.array_equal(detected, (dense > 0).sum(1))
    assert np.array_equal(total, dense.sum(1))
    assert np.array_equal(total_mt, dense[:, is_mt].sum(1))
    assert np.array_equal(gene_total, dense.sum(0))
    assert np.array_equal(gene_detected, (dense > 0).sum(0))
    keep = np.arange(block.shape[0]) % 2 == 0
    assert np.array_equal(gene_detections(block.data, block.indices, block.indptr, keep,
                                          block.shape[1]), (dense[keep] > 0).sum(0))


def test_moments_equal_bincount_in_float64():
    block = _block(np.int32, seed=3)
    normalised = np.log1p(block.data) * np.float32(1.7)
    total, total_sq, counts, counts_sq, row_totals = kept_moments(
        block.data, normalised, block.indices, block.indptr, block.shape[1])
    weights = normalised.astype(np.float64)
    raw = block.data.astype(np.float64)
    n = block.shape[1]
    assert np.array_equal(total, np.bincount(block.indices, weights=weights, minlength=n))
    assert np.array_equal(total_sq, np.bincount(block.indices, weights=weights**2, minlength=n))
    assert np.array_equal(counts, np.bincount(block.indices, weights=raw, minlength=n))
    assert np.array_equal(counts_sq, np.bincount(block.indices, weights=raw**2, minlength=n))
    assert np.array_equal(row_totals, np.asarray(block.sum(axis=1, dtype=np.float64)).ravel())
