"""Validating the counts of an .h5ad: per-cell totals and bad values, whatever its layout."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from nam_core.errors import NAMInputError
from nam_core.inputs.counts_file import open_counts


def _counts(dtype, n_cells: int = 300, n_genes: int = 40) -> np.ndarray:
    """Poisson counts (n_cells, n_genes) with every fifth cell empty."""
    X = np.random.default_rng(0).poisson(0.4, size=(n_cells, n_genes)).astype(dtype)
    X[::5] = 0
    return X


def _write(X, path):
    obs = pd.DataFrame(index=[f"c{i}" for i in range(X.shape[0])])
    var = pd.DataFrame(index=[f"g{i}" for i in range(X.shape[1])])
    ad.AnnData(X, obs=obs, var=var).write_h5ad(path)
    return path


@pytest.mark.parametrize("layout", [sp.csr_matrix, sp.csc_matrix, np.asarray])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_totals_are_the_row_sums_across_blocks(tmp_path, layout, dtype):
    X = _counts(dtype)
    with open_counts(_write(layout(X), tmp_path / "c.h5ad")) as counts:
        totals = counts.validate_values(chunk=64)  # blocks that split the cells unevenly
    assert np.array_equal(totals, X.sum(1, dtype=np.float64))


@pytest.mark.parametrize("layout", [sp.csr_matrix, sp.csc_matrix])
def test_a_bad_value_in_a_late_block_is_named_by_cell_and_gene(tmp_path, layout):
    X = _counts(np.float64)
    X[297, 31] = 1.5
    with open_counts(_write(layout(X), tmp_path / "c.h5ad")) as counts:
        with pytest.raises(NAMInputError, match="1 non-integer values in 1 cells .*'c297' gene 'g31' = 1.5"):
            counts.validate_values(chunk=64)


@pytest.mark.parametrize("layout", [sp.csr_matrix, sp.csc_matrix, np.asarray])
def test_row_blocks_read_ahead_equal_the_matrix_whatever_its_layout(tmp_path, layout):
    X = _counts(np.float32)
    cells = np.random.default_rng(1).random(X.shape[0]) < 0.7
    with open_counts(_write(layout(X), tmp_path / "c.h5ad")) as counts:
        blocks = list(counts.iter_rows(cells, chunk=64))
    rows = np.concatenate([r for r, _ in blocks])
    assert np.array_equal(rows, np.flatnonzero(cells))
    stacked = sp.vstack([b for _, b in blocks], format="csr")
    assert stacked.dtype == np.float32
    assert np.array_equal(stacked.toarray(), X[cells])


def test_a_reader_stopped_early_ends_its_thread(tmp_path):
    import threading

    with open_counts(_write(sp.csr_matrix(_counts(np.float32)), tmp_path / "c.h5ad")) as counts:
        blocks = counts.iter_rows(chunk=16)
        next(blocks)
        blocks.close()
    assert not [t for t in threading.enumerate() if t.name == "counts-reader"]


def test_damage_found_while_reading_ahead_is_raised_in_the_caller(tmp_path):
    import h5py

    path = _write(sp.csr_matrix(_counts(np.float32)), tmp_path / "c.h5ad")
    with h5py.File(path, "r+") as f:
        indices = f["X/indices"][...]
        indices[-1] = 99  # a column outside the 40 genes, in the last block
        f["X/indices"][...] = indices
    with open_counts(path) as counts:
        with pytest.raises(NAMInputError, match="index outside 0..39 in rows 256..299"):
            for _ in counts.iter_rows(chunk=64):
                pass
