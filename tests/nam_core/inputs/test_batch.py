"""Batch correction of the expression PCs: the column check, library regression and Harmony."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from nam_core.errors import NAMInputError
from nam_core.inputs.batch import (
    BatchSettings,
    check_batch_column,
    correct_pcs,
    regress_out_library,
)
from nam_core.inputs.expression import preprocess
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import demo_anndata, draw_demo_cohort


@pytest.mark.parametrize("values, match", [
    (None, "no column 'pool'"), ([np.nan] * 4, "every one of its 4 cells"),
    (["a", None, "b", "a"], "missing for 1 of 4 cells"), (["a"] * 4, "one value"),
])
def test_bad_batch_column_names_file_and_column(values, match):
    obs = pd.DataFrame({"individual": list("wxyz")}, index=[f"c{i}" for i in range(4)])
    if values is not None:
        obs["pool"] = values
    with pytest.raises(NAMInputError, match=match) as err:
        check_batch_column(obs, "pool", "counts.h5ad")
    assert "counts.h5ad" in str(err.value)


def test_regress_out_library_decorrelates():
    rng = np.random.default_rng(0)
    lib = np.exp(rng.normal(8, 0.5, 500))
    Y = rng.normal(size=(500, 3)) + np.log(lib)[:, None]
    out = regress_out_library(Y, lib)
    assert np.abs(np.corrcoef(np.log(lib), out.T)[0, 1:]).max() < 1e-10
    np.testing.assert_allclose(out.mean(0), Y.mean(0))


def test_harmony_removes_pool_shift_but_keeps_cell_types():
    spec = CohortSpec(n_individuals=60, n_ancestries=3, mean_cells=80, n_snps=100, seed=3,
                      n_pools=6, pool_shift_sd=0.5)
    cohort = draw_demo_cohort(spec)
    adata = preprocess(demo_anndata(cohort), n_pcs=10, n_top_genes=300, target_sum=1000,
                       batch_key="pool", harmony={"seed": 1})
    assert adata.obsm["X_pca"].shape == adata.obsm["X_pca_uncorrected"].shape
    pool = adata.obs["pool"].astype(str).to_numpy()
    types = adata.obs["cell_type"].astype(str).to_numpy()

    def pool_ari(Y):
        labels = GaussianMixture(12, random_state=0).fit_predict(Y)
        return adjusted_rand_score(pool, labels), adjusted_rand_score(types, labels)

    before, after = pool_ari(adata.obsm["X_pca_uncorrected"]), pool_ari(adata.obsm["X_pca"])
    assert after[0] < before[0]
    assert after[1] > 0.5
    assert adata.uns["preprocess"]["batch_correction"]["n_batches"] == 6


def test_correct_pcs_needs_library_when_regressing():
    with pytest.raises(NAMInputError, match="total counts"):
        correct_pcs(np.zeros((4, 2)), ["a", "a", "b", "b"], None, BatchSettings())
