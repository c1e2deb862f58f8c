"""Analytic Pearson residuals, streamed, against scanpy's experimental implementation."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from nam_core.errors import NAMInputError
from nam_core.inputs.expression import preprocess, preprocess_h5ad, read_counts
from nam_core.inputs.expression.pearson import (
    pearson_hvgs,
    pearson_residuals,
    residual_variances,
)
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort

sc = pytest.importorskip("scanpy")


def _nb_counts(n_cells, n_genes, seed=0, scale=1.0):
    """NB counts (theta 5) with log-normal library sizes and gene means, 5 % of the entries set
    to zero (so deep genes hold zeros too); a few all-zero genes."""
    rng = np.random.default_rng(seed)
    library = rng.lognormal(np.log(2000 * scale), 0.6, n_cells)
    p = rng.lognormal(0, 1.5, n_genes)
    p /= p.sum()
    mu = library[:, None] * p[None, :]
    x = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float64)
    x[rng.random(x.shape) < 0.05] = 0
    x[:, :3] = 0
    x[:, 3] = 0
    x[0, 3] = 7  # one count in one cell
    return x


def _blocks(x, size):
    csr = sp.csr_matrix(x)
    return [csr[i : i + size] for i in range(0, x.shape[0], size)]


def test_residuals_equal_scanpy():
    x = _nb_counts(300, 80, seed=1)[:, 4:]
    ref = sc.experimental.pp.normalize_pearson_residuals(ad.AnnData(x.copy()), inplace=False)["X"]
    got = pearson_residuals(sp.csr_matrix(x), x.sum(1), x.sum(0) / x.sum())
    assert np.allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_cells, scale", [(400, 1.0), (50, 20.0)])
def test_residual_variance_hvgs_equal_scanpy(n_cells, scale):
    """Same residual variances and genes; with 50 cells deep enough that zeros clip at sqrt(50)."""
    x = _nb_counts(n_cells, 120, seed=2, scale=scale)
    if n_cells < 100:  # clip sqrt(N) < sqrt(theta): some zeros' residuals are clipped
        mu = np.outer(x.sum(1), x.sum(0) / x.sum())
        assert ((x == 0) & (np.sqrt(mu * 100 / (100 + mu)) > np.sqrt(n_cells))).any()
    ref = sc.experimental.pp.highly_variable_genes(
        ad.AnnData(sp.csr_matrix(x)), flavor="pearson_residuals", n_top_genes=30, inplace=False)
    var = residual_variances(_blocks(x, 64), x.sum(1), x.sum(0))
    table = pearson_hvgs(x.sum(0), (x**2).sum(0), n_cells, var, 30)
    assert np.allclose(var, ref["residual_variances"], rtol=1e-9, atol=1e-12)
    assert np.array_equal(table["highly_variable"], ref["highly_variable"])
    assert np.allclose(table["highly_variable_rank"], ref["highly_variable_rank"], equal_nan=True)
    assert np.allclose(table["variances"], ref["variances"])
    assert np.allclose(table["means"], ref["means"])


def test_residual_variance_does_not_depend_on_blocks():
    x = _nb_counts(500, 60, seed=3)
    a = residual_variances(_blocks(x, 500), x.sum(1), x.sum(0))
    b = residual_variances(_blocks(x, 7), x.sum(1), x.sum(0))
    assert np.allclose(a, b, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="blocks hold"):
        residual_variances(_blocks(x[:10], 7), x.sum(1), x.sum(0))


SETTINGS = dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20, n_top_genes=300,
                n_pcs=6, target_sum=1000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    paths = make_demo_cohort(tmp, CohortSpec(n_individuals=20, mean_cells=60, n_snps=100, seed=4))
    return paths, read_counts(paths["counts"], "individual")


def test_preprocess_pearson_equals_scanpy(demo):
    """QC as the log1p path; HVGs, residuals of the HVGs and their PCA as scanpy's."""
    _, raw = demo
    ours = preprocess(raw, normalisation="pearson_residuals", **SETTINGS)
    log1p = preprocess(raw, **SETTINGS)
    kept = raw[ours.obs_names, ours.var_names].copy()
    kept.X = sp.csr_matrix(kept.X, dtype=np.float64)
    sc.experimental.pp.highly_variable_genes(kept, flavor="pearson_residuals",
                                             n_top_genes=SETTINGS["n_top_genes"])
    assert np.array_equal(ours.var["highly_variable"], kept.var["highly_variable"])
    assert np.allclose(ours.var["residual_variances"], kept.var["residual_variances"], rtol=1e-8)
    hvg = kept[:, kept.var["highly_variable"].to_numpy()].copy()
    sc.experimental.pp.normalize_pearson_residuals(hvg)
    ref = PCA(SETTINGS["n_pcs"], svd_solver="full").fit(np.asarray(hvg.X))
    scores = ref.transform(np.asarray(hvg.X))
    for k in range(SETTINGS["n_pcs"]):
        sign = np.sign(scores[:, k] @ ours.obsm["X_pca"][:, k])
        assert np.allclose(ours.obsm["X_pca"][:, k], sign * scores[:, k], atol=1e-3)
    assert np.allclose(ours.uns["pca"]["variance"], ref.explained_variance_, rtol=1e-6)
    assert np.allclose(ours.uns["pca"]["variance_ratio"], ref.explained_variance_ratio_, rtol=1e-6)
    # X stays log-normalised (the markers read it); the choice is recorded
    assert abs(ours.X - log1p.X).max() == 0
    summary = ours.uns["preprocess"]
    assert summary["normalisation"] == "pearson_residuals"
    assert summary["pca_input"]["theta"] == 100 and not summary["pca_input"]["scaled"]


def test_preprocess_h5ad_pearson_in_small_blocks_equals_preprocess(demo, tmp_path):
    paths, raw = demo
    settings = {**SETTINGS, "normalisation": "pearson_residuals", "regress_library": True}
    summary = preprocess_h5ad(paths["counts"], tmp_path / "pre.h5ad", "individual", chunk=97,
                              **settings)
    ref = preprocess(raw, **settings)
    got = ad.read_h5ad(tmp_path / "pre.h5ad")
    assert summary["normalisation"] == "pearson_residuals" and summary["regress_library"]
    assert list(got.obs_names) == list(ref.obs_names)
    assert np.array_equal(got.var["highly_variable"], ref.var["highly_variable"])
    assert np.allclose(got.obsm["X_pca"], ref.obsm["X_pca"], atol=1e-4)


@pytest.mark.parametrize("normalisation", ["log1p", "pearson_residuals"])
def test_regress_library_uncorrelates_pcs_from_log_library(demo, normalisation):
    _, raw = demo
    before = preprocess(raw, normalisation=normalisation, **SETTINGS)
    after = preprocess(raw, normalisation=normalisation, regress_library=True, **SETTINGS)
    z = np.log(before.obs["total_counts"].to_numpy(np.float64))

    def corr(pcs):
        return np.array([abs(np.corrcoef(z, pcs[:, k])[0, 1]) for k in range(pcs.shape[1])])

    assert corr(before.obsm["X_pca"]).max() > 0.01  # the library sizes move the PCs a little
    assert corr(after.obsm["X_pca"]).max() < 1e-4
    assert after.uns["preprocess"]["regress_library"]
    # the PCs are those of the unregressed run, less their fit on the log library size
    resid = before.obsm["X_pca"] - np.outer(z - z.mean(), (z - z.mean()) @ before.obsm["X_pca"]
                                            / ((z - z.mean()) @ (z - z.mean())))
    assert np.allclose(after.obsm["X_pca"], resid, atol=1e-4)


def test_unknown_normalisation(demo):
    _, raw = demo
    with pytest.raises(NAMInputError, match="normalisation must be one of"):
        preprocess(raw, normalisation="sctransform", **SETTINGS)
