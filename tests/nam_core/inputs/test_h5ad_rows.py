"""Reading sampled rows of an .h5ad a block at a time (markers and naming at scale)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from nam_core.inputs.h5ad import read_annotations, read_columns, read_rows


@pytest.fixture()
def h5ad_file(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(1000, 40, density=0.1, format="csr", random_state=1, dtype=np.float32)
    X.data = rng.gamma(2.0, size=X.nnz).astype(np.float32)
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(1000)]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(40)]))
    adata.layers["counts"] = X.copy()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path, X


def test_read_rows_equals_in_memory_rows_across_blocks(h5ad_file):
    path, X = h5ad_file
    rows = np.sort(np.random.default_rng(2).choice(1000, size=137, replace=False))
    got = read_rows(path, rows, chunk=64)
    assert got.shape == (137, 40) and got.dtype == np.float32
    assert (got != X[rows]).nnz == 0
    assert read_rows(path, np.array([], dtype=int)).shape == (0, 40)


def test_read_rows_refuses_unsorted_rows(h5ad_file):
    with pytest.raises(ValueError, match="sorted"):
        read_rows(h5ad_file[0], np.array([5, 3]))


def test_read_columns_and_annotations_leave_out_the_layers(h5ad_file):
    path, X = h5ad_file
    columns = np.array([3, 0, 17])
    assert (read_columns(path, columns, chunk=64) != X[:, columns]).nnz == 0
    cells = read_annotations(path)
    assert cells.X is None and not cells.layers and cells.shape == (1000, 40)
    assert list(cells.obs_names[:2]) == ["c0", "c1"] and cells.var_names[-1] == "g39"


@pytest.mark.parametrize(("max_gap", "max_span"), [(1, 10), (50, 200), (10**9, 10**9)])
def test_selected_rows_read_in_ranges_equal_the_rows(h5ad_file, max_gap, max_span):
    """However the rows are grouped into stored ranges (one range per row, a few, or one)."""
    from nam_core.inputs.counts_file import open_counts

    path, X = h5ad_file
    empty = int(np.flatnonzero(np.diff(X.indptr) == 0)[0])
    rows = np.union1d(np.random.default_rng(3).choice(1000, size=90, replace=False), [0, empty, 999])
    with open_counts(path) as cells:
        got = cells.selected_rows(rows, max_gap=max_gap, max_span=max_span)
    assert got.shape == (rows.size, 40) and got.dtype == np.float32
    assert (got != X[rows]).nnz == 0
