"""The rank-sum test that ranks stored values only, against full rankings and scanpy."""

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata

from nam_core.results.markers import _groups_to_test, _scanpy_markers, rank_markers
from nam_core.results.rank_sums import group_rank_sums, rank_sum_test


def _full_rank_sums(X, codes, n_codes):
    """Rank every cell of every gene (scipy), then sum by group: the independent computation."""
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    ranks = rankdata(dense, axis=0)
    return np.vstack([ranks[codes == c].sum(axis=0) for c in range(n_codes)])


def _tied_sparse(n, g, seed, negatives=False):
    """Sparse values rounded to one decimal (many ties), some stored zeros, an empty column."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, g, density=0.15, format="csr", random_state=seed, dtype=np.float32)
    X.data = np.round(np.log1p(5 * X.data), 1).astype(np.float32)
    if negatives:
        X.data[rng.random(X.data.size) < 0.3] *= -1
    X.data[:5] = 0.0  # stored zeros rank with the unstored ones
    X = X.tocsc()
    X.data[X.indptr[3] : X.indptr[4]] = 0.0  # column 3: only stored zeros
    return X.tocsr(), rng.integers(0, 5, n)


@pytest.mark.parametrize("negatives", [False, True])
def test_group_rank_sums_equal_a_full_ranking(negatives):
    X, codes = _tied_sparse(400, 30, seed=1, negatives=negatives)
    np.testing.assert_array_equal(group_rank_sums(X, codes, 5), _full_rank_sums(X, codes, 5))


def test_group_rank_sums_of_dense_values_without_zeros():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 12)).round(1)
    codes = rng.integers(0, 3, 200)
    np.testing.assert_array_equal(group_rank_sums(X, codes, 3), _full_rank_sums(X, codes, 3))


def test_rank_sum_test_z_scores_by_hand():
    """Two groups of two cells, one gene: ranks 1, 2 | 3, 4 give W = 3 and z = -1.549."""
    X = sp.csr_matrix(np.array([[0.0], [1.0], [2.0], [3.0]]))
    result = rank_sum_test(X, np.array([0, 0, 1, 1]), [0, 1])
    z = (3 - 2 * 5 / 2) / np.sqrt(2 * 2 * 5 / 12)
    np.testing.assert_allclose(result.scores[:, 0], [z, -z])
    np.testing.assert_allclose(result.logfoldchanges[0, 0],
                               np.log2((np.expm1(0.5) + 1e-9) / (np.expm1(2.5) + 1e-9)))


def _compare_with_scanpy(adata, key, n_genes=15):
    labels = adata.obs[key].astype(str).astype("category")
    groups = _groups_to_test(labels)
    ours = rank_markers(adata, key, n_genes=n_genes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pd.concat(_scanpy_markers(adata.X, labels, groups, adata, key, n_genes,
                                           "wilcoxon"), ignore_index=True)
    both = ours.merge(theirs, on=["cluster", "gene"], suffixes=("", "_scanpy"))
    assert len(both) == len(ours) == len(theirs)  # the same genes (order may differ in ties)
    # scanpy keeps its scores in float32
    np.testing.assert_array_equal(both["score"].astype(np.float32),
                                  both["score_scanpy"].astype(np.float32))
    np.testing.assert_allclose(both["pval_adj"], both["pval_adj_scanpy"], rtol=1e-6)
    np.testing.assert_allclose(both["logfoldchange"], both["logfoldchange_scanpy"],
                               rtol=1e-4, atol=1e-5, equal_nan=True)


def test_wilcoxon_markers_equal_scanpy_on_real_pbmcs():
    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()  # dense, scaled: negative values, few zeros
    _compare_with_scanpy(pbmc, "bulk_labels")
    counts = pbmc.raw.to_adata()  # sparse log-normalised values
    counts.obs = pbmc.obs
    _compare_with_scanpy(counts, "louvain")


def test_wilcoxon_markers_equal_scanpy_with_ties_and_a_single_cell_cluster():
    X, codes = _tied_sparse(1500, 60, seed=3)
    labels = codes.astype(str).astype(object)
    labels[0] = "single"  # skipped, its cell still ranked in the rest
    adata = ad.AnnData(X=X, obs=pd.DataFrame({"g": labels}, index=[f"c{i}" for i in range(1500)]),
                       var=pd.DataFrame(index=[f"gene{i}" for i in range(60)]))
    _compare_with_scanpy(adata, "g")
