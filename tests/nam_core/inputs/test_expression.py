import logging

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from nam_core.errors import NAMInputError
from nam_core.inputs.expression import preprocess, read_counts, standardised_pca
from nam_core.inputs.expression.sinks import WRITE_CHUNK, H5adSink
from nam_core.results.umap import add_umap
from nam_core.synthetic.base import CohortSpec
from nam_core.synthetic.demo import make_demo_cohort

N_GOOD = 40
N_GENES = 300


def _tiny_counts(seed=0):
    """40 good cells in two expression programmes plus three cells that each fail one filter.

    Genes G000..G299 and MT-CO1, MT-CO2. Good cells express genes 0..259 (>= 1 UMI each, so 260
    detected genes, >= 520 UMIs) and ~10 mitochondrial UMIs. Genes 260..297 are never detected
    and gene 298 in two cells only, so min_cells=3 removes 39 genes; gene 299 is in 5 cells.
    """
    rng = np.random.default_rng(seed)
    X = np.zeros((N_GOOD + 3, N_GENES + 2))
    programme = np.repeat([0, 1], N_GOOD // 2)
    lam = np.where(np.arange(260) < 130, 1.0, 6.0)
    for i in range(N_GOOD):
        rate = lam if programme[i] == 0 else lam[::-1]
        X[i, :260] = 1 + rng.poisson(rate)
        X[i, N_GENES:] = 5 + rng.poisson(3, size=2)
    X[:2, 298] = 1
    X[:5, 299] = 2
    few_genes, low_counts, high_mt = N_GOOD, N_GOOD + 1, N_GOOD + 2
    X[few_genes, :150] = 5  # 150 genes < 200, 750 UMIs
    X[low_counts, :240] = 1  # 240 genes, 240 UMIs < 500
    X[high_mt, :260] = 2  # 520 UMIs + 300 mitochondrial = 37 %
    X[high_mt, N_GENES:] = 150
    names = [f"cell{i}" for i in range(N_GOOD)] + ["few_genes", "low_counts", "high_mt"]
    obs = pd.DataFrame(
        {"individual": [f"IND{i % 4}" for i in range(X.shape[0])]}, index=names
    )
    var = pd.DataFrame(index=[f"G{g:03d}" for g in range(N_GENES)] + ["MT-CO1", "MT-CO2"])
    return ad.AnnData(X=sp.csr_matrix(X.astype(np.float32)), obs=obs, var=var), programme


def _write(adata, path):
    adata.write_h5ad(path)
    return path


# ---------------------------------------------------------------- preprocess


def test_preprocess_applies_each_filter():
    adata, _ = _tiny_counts()
    before = adata.copy()
    out = preprocess(adata, n_top_genes=50, n_pcs=5)
    info = out.uns["preprocess"]
    assert info["cells_removed"] == {"min_genes": 1, "min_counts": 1, "max_pct_mt": 1}
    assert info["genes_removed"] == {"min_cells": 39}
    assert {"few_genes", "low_counts", "high_mt"}.isdisjoint(out.obs_names)
    assert out.n_obs == N_GOOD and out.n_vars == N_GENES + 2 - 39
    assert "G298" not in out.var_names and "G299" in out.var_names
    assert info["params"]["min_genes"] == 200 and info["n_pcs"] == 5
    # the input is left untouched
    assert adata.shape == before.shape and (adata.X != before.X).nnz == 0
    assert "pct_counts_mt" not in adata.obs


def test_preprocess_keeps_counts_and_normalises():
    adata, _ = _tiny_counts()
    out = preprocess(adata, n_top_genes=50, n_pcs=5, target_sum=1e4)
    expected = adata[out.obs_names, out.var_names].X.toarray()
    assert np.array_equal(out.layers["counts"].toarray(), expected)
    totals = np.expm1(out.X.toarray()).sum(axis=1)
    assert np.allclose(totals, 1e4, rtol=1e-3)
    assert out.var["highly_variable"].sum() == 50
    assert out.obsm["X_pca"].shape == (N_GOOD, 5)
    assert out.varm["PCs"].shape == (out.n_vars, 5)
    assert np.all(out.varm["PCs"][~out.var["highly_variable"].to_numpy()] == 0)
    assert out.obs["pct_counts_mt"].between(0, 20).all()


def test_preprocess_pcs_separate_programmes():
    adata, programme = _tiny_counts()
    out = preprocess(adata, n_top_genes=100, n_pcs=3)
    pc1 = out.obsm["X_pca"][:, 0]
    assert min(np.mean((pc1 > 0) == programme), np.mean((pc1 > 0) != programme)) == 0


def test_preprocess_dense_input_matches_sparse(tmp_path):
    adata, _ = _tiny_counts()
    dense = adata.copy()
    dense.X = dense.X.toarray()
    a = preprocess(adata, n_top_genes=50, n_pcs=4)
    b = preprocess(dense, n_top_genes=50, n_pcs=4)
    assert np.allclose(a.obsm["X_pca"], b.obsm["X_pca"], atol=1e-4)
    # everything stored is writable to .h5ad
    a.write_h5ad(tmp_path / "pp.h5ad")
    back = ad.read_h5ad(tmp_path / "pp.h5ad")
    assert back.uns["preprocess"]["cells_removed"]["max_pct_mt"] == 1


def test_preprocess_caps_n_pcs(caplog):
    adata, _ = _tiny_counts()
    with caplog.at_level(logging.INFO, logger="nam_core.inputs.expression"):
        out = preprocess(adata, n_top_genes=10, n_pcs=30)
    assert out.obsm["X_pca"].shape == (N_GOOD, 9)
    assert out.uns["preprocess"]["n_pcs"] == 9
    assert "capped" in caplog.text


def test_preprocess_no_cells_left():
    adata, _ = _tiny_counts()
    with pytest.raises(NAMInputError, match="no cells pass QC"):
        preprocess(adata, min_genes=10_000)


def test_preprocess_missing_individual_column():
    adata, _ = _tiny_counts()
    with pytest.raises(NAMInputError, match="donor"):
        preprocess(adata, individual_key="donor")


def test_standardised_pca_matches_sklearn():
    rng = np.random.default_rng(1)
    X = rng.poisson(2.0, size=(200, 30)).astype(np.float64) * rng.uniform(0.5, 3, size=30)
    ours = standardised_pca(sp.csr_matrix(X), 5, chunk=64)
    Z = (X - X.mean(0)) / X.std(0, ddof=1)
    ref = PCA(5, svd_solver="full").fit(Z)
    scores = ref.transform(Z)
    for k in range(5):
        sign = np.sign(scores[:, k] @ ours["scores"][:, k])
        assert np.allclose(ours["scores"][:, k], sign * scores[:, k], atol=1e-4)
    assert np.allclose(ours["variance"], ref.explained_variance_, rtol=1e-6)
    assert np.allclose(ours["variance_ratio"], ref.explained_variance_ratio_, rtol=1e-6)
    dense = standardised_pca(X, 5)
    assert np.allclose(dense["scores"], ours["scores"], atol=1e-4)


def test_preprocess_demo_cohort(tmp_path):
    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=20, mean_cells=50, n_snps=100, seed=2))
    raw = read_counts(paths["counts"], "individual")
    out = preprocess(raw, n_pcs=10)
    low_quality = raw.obs["low_quality"].to_numpy()
    kept = raw.obs_names.isin(out.obs_names)
    assert kept[low_quality].mean() < 0.1
    assert kept[~low_quality].mean() > 0.98
    # expression PCs separate the true cell types: nearest centroid is nearly perfect
    pcs, types = out.obsm["X_pca"], out.obs["cell_type"].astype(str).to_numpy()
    classes = np.unique(types)
    centroids = np.stack([pcs[types == c].mean(0) for c in classes])
    nearest = classes[((pcs[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)]
    assert np.mean(nearest == types) > 0.95


# ---------------------------------------------------------------- read_counts


def test_read_counts_ok(tmp_path):
    adata, _ = _tiny_counts()
    adata.obs["individual"] = np.arange(adata.n_obs) % 3  # integers become strings
    out = read_counts(_write(adata, tmp_path / "c.h5ad"), "individual")
    assert out.shape == adata.shape
    assert set(out.obs["individual"]) == {"0", "1", "2"}


def test_read_counts_missing_file(tmp_path):
    with pytest.raises(NAMInputError, match="nope.h5ad.*does not exist"):
        read_counts(tmp_path / "nope.h5ad", "individual")


def test_read_counts_unreadable_file(tmp_path):
    path = tmp_path / "bad.h5ad"
    path.write_text("not hdf5")
    with pytest.raises(NAMInputError, match="bad.h5ad.*could not be read"):
        read_counts(path, "individual")


def test_read_counts_wrong_individual_column(tmp_path):
    adata, _ = _tiny_counts()
    adata.obs["batch"] = "b1"
    path = _write(adata, tmp_path / "c.h5ad")
    with pytest.raises(NAMInputError) as err:
        read_counts(path, "donor_id")
    message = str(err.value)
    assert "c.h5ad" in message and "'donor_id'" in message
    assert "'individual'" in message and "'batch'" in message


def test_read_counts_missing_individuals(tmp_path):
    adata, _ = _tiny_counts()
    adata.obs["individual"] = adata.obs["individual"].astype(object)
    adata.obs.loc["cell3", "individual"] = None
    with pytest.raises(NAMInputError, match="missing for 1 cells.*cell3"):
        read_counts(_write(adata, tmp_path / "c.h5ad"), "individual")


@pytest.mark.parametrize("dense", [False, True])
def test_read_counts_nan_and_inf(tmp_path, dense):
    adata, _ = _tiny_counts()
    X = adata.X.toarray()
    X[3, 0], X[3, 1], X[7, 2] = np.nan, np.nan, np.inf
    adata.X = X if dense else sp.csr_matrix(X)
    with pytest.raises(NAMInputError) as err:
        read_counts(_write(adata, tmp_path / "c.h5ad"), "individual")
    message = str(err.value)
    assert "c.h5ad" in message and "2 NaN" in message and "1 infinite" in message
    assert "2 NaN values in 1 cells" in message and "'cell3'" in message and "'cell7'" in message


def test_read_counts_negative(tmp_path):
    adata, _ = _tiny_counts()
    X = adata.X.toarray()
    X[5, 10] = -1.0
    adata.X = sp.csr_matrix(X)
    with pytest.raises(NAMInputError) as err:
        read_counts(_write(adata, tmp_path / "c.h5ad"), "individual")
    message = str(err.value)
    assert "negative" in message and "'cell5'" in message and "'G010'" in message


def test_read_counts_non_integer_fails(tmp_path):
    adata, _ = _tiny_counts()
    adata.X = adata.X * 0.5
    with pytest.raises(NAMInputError) as err:
        read_counts(_write(adata, tmp_path / "c.h5ad"), "individual")
    message = str(err.value)
    assert "non-integer values" in message and "'cell0'" in message and "'G001'" in message


def test_read_counts_no_cells(tmp_path):
    adata, _ = _tiny_counts()
    with pytest.raises(NAMInputError, match="0 cells"):
        read_counts(_write(adata[:0].copy(), tmp_path / "c.h5ad"), "individual")


# ---------------------------------------------------------------- neighbours + UMAP


def test_neighbors_and_umap_above_pynndescent_threshold(monkeypatch):
    """pynndescent does the neighbour search above 8,192 cells (4,096 for non-euclidean metrics).

    That is where scanpy 1.11 breaks with pynndescent 0.7, so the test must go past it.
    """
    import pynndescent

    calls = []

    class SpyTransformer(pynndescent.PyNNDescentTransformer):
        def fit_transform(self, X, y=None, **kwargs):
            calls.append(X.shape)
            return super().fit_transform(X, y, **kwargs)

    monkeypatch.setattr(pynndescent, "PyNNDescentTransformer", SpyTransformer)
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 6.0, size=(4, 10))
    X = np.concatenate([c + rng.normal(size=(2600, 10)) for c in centres]).astype(np.float32)
    adata = ad.AnnData(X=X)
    adata.obsm["X_pca"] = X
    add_umap(adata, n_neighbors=10, seed=0)
    assert adata.n_obs > 8192
    assert calls, "pynndescent was not used for the neighbour search"
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2)
    assert np.isfinite(adata.obsm["X_umap"]).all()
    assert adata.obsp["connectivities"].shape == (adata.n_obs, adata.n_obs)
    assert adata.uns["neighbors"]["params"]["n_neighbors"] == 10


def test_add_umap_missing_representation():
    adata, _ = _tiny_counts()
    with pytest.raises(NAMInputError, match="X_pca"):
        add_umap(adata)


# ---------------------------------------------------------------- equality with scanpy


def _scanpy_reference(adata, min_genes, min_cells, min_counts, max_pct_mt, n_top_genes, n_pcs,
                      target_sum):
    """The in-memory scanpy pipeline that preprocess replaced (commit cd12d73), PCA by sklearn."""
    import scanpy as sc

    adata = adata.copy()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    adata.var["mt"] = adata.var_names.str.upper().str.startswith("MT-")
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
    obs = adata.obs
    keep = ((obs["n_genes_by_counts"] >= min_genes) & (obs["total_counts"] >= min_counts)
            & (obs["pct_counts_mt"] <= max_pct_mt)).to_numpy()
    adata = adata[keep].copy()
    adata = adata[:, np.asarray((adata.X > 0).sum(axis=0)).ravel() >= min_cells].copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=min(n_top_genes, adata.n_vars), flavor="seurat")
    Z = adata[:, adata.var["highly_variable"]].X.toarray().astype(np.float64)
    Z = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    scores = PCA(n_pcs, svd_solver="full").fit_transform(Z)
    return adata, scores


@pytest.mark.parametrize("settings", [
    dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20, n_top_genes=500, n_pcs=5,
         target_sum=1000),  # config/config.yaml
    dict(min_genes=100, min_cells=10, min_counts=300, max_pct_mt=10, n_top_genes=200, n_pcs=10,
         target_sum=1e4),
])
def test_preprocess_equals_scanpy_on_demo(tmp_path, settings):
    """Same cells, same genes and HVGs, same log-normalised values, PCs equal up to sign."""
    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=30, mean_cells=60, n_snps=100, seed=5))
    raw = read_counts(paths["counts"], "individual")
    ours = preprocess(raw, **settings)
    ref, scores = _scanpy_reference(raw, **settings)
    assert list(ours.obs_names) == list(ref.obs_names)
    assert list(ours.var_names) == list(ref.var_names)
    assert np.array_equal(ours.var["highly_variable"], ref.var["highly_variable"])
    assert np.allclose(ours.var["dispersions_norm"], ref.var["dispersions_norm"], atol=1e-6,
                       equal_nan=True)
    assert abs(ours.X - ref.X).max() < 1e-6
    assert (ours.layers["counts"] != raw[ours.obs_names, ours.var_names].X).nnz == 0
    for k in range(settings["n_pcs"]):
        sign = np.sign(scores[:, k] @ ours.obsm["X_pca"][:, k])
        assert np.allclose(ours.obsm["X_pca"][:, k], sign * scores[:, k], atol=1e-3)


def test_preprocess_h5ad_in_small_blocks_equals_preprocess(tmp_path):
    """File to file in blocks of 97 cells, for a subset of individuals: as in memory."""
    from nam_core.inputs.expression import preprocess_h5ad

    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=20, mean_cells=50, n_snps=100, seed=4))
    raw = read_counts(paths["counts"], "individual")
    chosen = sorted(set(raw.obs["individual"].astype(str)))[::2]
    settings = dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20, n_top_genes=300,
                    n_pcs=6, target_sum=1000)
    summary = preprocess_h5ad(paths["counts"], tmp_path / "pre.h5ad", "individual",
                              individuals=[f" {c} " for c in chosen], chunk=97, **settings)
    subset = raw[raw.obs["individual"].isin(chosen).to_numpy()].copy()
    ref = preprocess(subset, **settings)
    got = ad.read_h5ad(tmp_path / "pre.h5ad")
    assert summary == {k: v for k, v in ref.uns["preprocess"].items()}
    assert list(got.obs_names) == list(ref.obs_names)
    assert list(got.var_names) == list(ref.var_names)
    assert abs(got.X - ref.X).max() < 1e-6 and (got.layers["counts"] != ref.layers["counts"]).nnz == 0
    assert got.X.indptr.dtype == got.X.indices.dtype
    with h5py.File(tmp_path / "pre.h5ad") as f:  # chunks of a size that reads fast
        assert f["X/data"].chunks == f["layers/counts/indices"].chunks == (WRITE_CHUNK,)
    assert np.allclose(got.obsm["X_pca"], ref.obsm["X_pca"], atol=1e-4)
    pd.testing.assert_frame_equal(got.var, ref.var, check_dtype=False, check_categorical=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pre.h5ad")]


def test_a_failed_block_write_stops_preprocessing_and_leaves_no_file(tmp_path, monkeypatch):
    """The blocks are written by a thread: its error reaches the caller, and nothing is left."""
    import threading

    from nam_core.inputs.expression import preprocess_h5ad

    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=10, mean_cells=40, n_snps=100, seed=4))
    writes = []

    def fail_on_third(self, counts, lognorm):
        writes.append(counts.shape[0])
        if len(writes) == 3:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(H5adSink, "_write", fail_on_third)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="No space left"):
        preprocess_h5ad(paths["counts"], out / "pre.h5ad", "individual", chunk=37, n_pcs=4,
                        n_top_genes=200)
    assert list(out.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "h5ad-writer"]


def test_without_the_counts_layer_the_file_holds_the_same_cells_in_half_the_space(tmp_path):
    from nam_core.inputs.expression import preprocess_h5ad

    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=10, mean_cells=40, n_snps=100, seed=4))
    settings = dict(chunk=37, n_pcs=4, n_top_genes=200)
    preprocess_h5ad(paths["counts"], tmp_path / "with.h5ad", "individual", **settings)
    preprocess_h5ad(paths["counts"], tmp_path / "without.h5ad", "individual", keep_counts=False,
                    **settings)
    with_counts, without = (ad.read_h5ad(tmp_path / f"{n}.h5ad") for n in ("with", "without"))
    assert "counts" in with_counts.layers and not without.layers
    assert (with_counts.X != without.X).nnz == 0
    assert np.array_equal(with_counts.obsm["X_pca"], without.obsm["X_pca"])
    assert (tmp_path / "without.h5ad").stat().st_size < 0.7 * (tmp_path / "with.h5ad").stat().st_size


def _three_clusters(n_per: int = 300, dim: int = 6):
    rng = np.random.default_rng(1)
    centres = rng.normal(0.0, 8.0, size=(3, dim))
    labels = np.repeat(np.arange(3), n_per)
    return (centres[labels] + rng.normal(size=(3 * n_per, dim))).astype(np.float32), labels


@pytest.mark.parametrize("placement", ["neighbours", "transform"])
def test_umap_on_a_subsample_places_the_rest_near_their_cluster(placement):
    """Above max_cells: fitted on a seeded subsample, the other cells land near their cluster."""
    X, labels = _three_clusters()
    adata = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(900)]), obsm={"X_pca": X})
    add_umap(adata, n_neighbors=10, seed=0, max_cells=400, placement=placement)
    emb = adata.obsm["X_umap"]
    assert emb.shape == (900, 2) and np.isfinite(emb).all()
    assert adata.uns["umap"]["params"]["fitted_cells"] == 400
    assert adata.uns["umap"]["params"]["rest"] == placement
    centroids = np.stack([emb[labels == k].mean(0) for k in range(3)])
    nearest = ((emb[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(nearest == labels) > 0.95


def test_placing_by_neighbours_is_umaps_own_start_of_transform():
    """The weighted mean of neighbours equals umap-learn's init_graph_transform on its graph."""
    import umap
    from umap.umap_ import init_graph_transform

    from nam_core.results.umap import place_by_neighbours

    X, _ = _three_clusters(n_per=150)
    model = umap.UMAP(n_neighbors=10, random_state=0).fit(X[::2])
    placed = place_by_neighbours(model, X[1::2])
    assert model.transform_mode == "embedding"  # as the model was
    model.set_params(transform_mode="graph")
    expected = init_graph_transform(model.transform(X[1::2]).tocsr(), model.embedding_)
    assert np.allclose(placed, expected, atol=1e-5)


def test_hvg_values_replayed_from_memory_give_the_pcs_of_a_second_read(tmp_path, monkeypatch, caplog):
    """The kept HVG blocks (uint16 column indices) give the same PCs as reading the counts again;
    each pass over the counts logs its progress."""
    from nam_core.inputs.expression import passes, pipeline, preprocess_h5ad

    paths = make_demo_cohort(tmp_path, CohortSpec(n_individuals=10, mean_cells=40, n_snps=100, seed=4))
    settings = dict(chunk=37, n_pcs=4, n_top_genes=200)
    monkeypatch.setattr(passes, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger=passes.__name__):
        preprocess_h5ad(paths["counts"], tmp_path / "kept.h5ad", "individual", **settings)
    passes = {r.args[0] for r in caplog.records if r.getMessage().startswith("pass ")}
    monkeypatch.setattr(pipeline, "HVG_CACHE_BYTES", 0)
    preprocess_h5ad(paths["counts"], tmp_path / "read.h5ad", "individual", **settings)
    kept, read = (ad.read_h5ad(tmp_path / f"{n}.h5ad") for n in ("kept", "read"))
    assert np.array_equal(kept.obsm["X_pca"], read.obsm["X_pca"])
    assert passes == {1, 2, 3}  # QC, the kept cells, the HVGs (their scores come from memory)


def test_rows_appended_past_two_billion_values_get_int64_offsets(tmp_path):
    """A 5M-cell cohort writes more than 2**31 - 1 values: each block's int32 indptr is offset in int64."""
    block = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], dtype=np.float32))
    written = 2**31 + 5  # values already in the file; the datasets are resized, not filled
    sink = H5adSink(tmp_path / "big.h5ad", nnz=written + block.nnz, keep_counts=False)
    try:
        sink._create("X", block)
        group = sink.file["X"]
        for name in ("data", "indices"):
            group[name].resize((written,))
        sink._append(group, block)
        assert group["indptr"].dtype == np.int64
        np.testing.assert_array_equal(group["indptr"][-2:], [written + 2, written + 3])
        np.testing.assert_array_equal(group["indices"][-3:], [0, 2, 1])
    finally:
        sink.close()


def test_hvg_values_kept_in_memory_are_given_back_to_the_system_once_freed():
    """Freed replay blocks leave resident memory only after release_freed_memory (glibc's heap)."""
    import gc

    import psutil

    from nam_core.inputs.expression.passes import Replay, release_freed_memory

    def resident():
        return psutil.Process().memory_info().rss

    n, per_cell, n_blocks = 16_384, 109, 60  # blocks of the size the HVG pass yields
    big = np.ones(3_000_000)  # 24 MB freed first (as the passes before free theirs) lifts glibc's mmap threshold
    del big

    def make():
        indptr = np.arange(n + 1, dtype=np.int32) * per_cell
        for _ in range(n_blocks):
            yield sp.csr_matrix((np.ones(n * per_cell, dtype=np.float32),
                                 np.arange(n * per_cell, dtype=np.int32) % 2000, indptr),
                                shape=(n, 2000))

    replay = Replay(make, 4 * 1024**3)
    for _ in replay():
        pass
    kept = sum(part.nbytes for block in replay.kept for part in block[:3])
    before = resident()
    del replay
    gc.collect()
    if not release_freed_memory():
        pytest.skip("no malloc_trim in this C library")
    assert before - resident() > 0.8 * kept
