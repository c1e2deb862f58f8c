"""Counts .h5ad files a user may bring: each is either accepted with the same results, or refused
by the first rule that reads it (match_individuals, else preprocess_expression) with a message
naming the file, the cells and genes at fault and where the counts may be, leaving no output."""

import logging
import tracemalloc

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _common import logged

from nam_core.errors import NAMInputError
from nam_core.inputs.counts_file import open_counts

from .conftest import load_script

match_script = load_script("match_individuals")
preprocess_script = load_script("preprocess_expression")
SETTINGS = dict(min_genes=200, min_cells=3, min_counts=500, max_pct_mt=20, n_top_genes=100,
                n_pcs=5, target_sum=1000)


def _lognormalised(counts: sp.csr_matrix) -> sp.csr_matrix:
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1e4 / totals) @ counts).log1p().astype(np.float32)


def _write(adata: ad.AnnData, path):
    adata.write_h5ad(path)
    return path


def _run(cohort, counts, out_dir, counts_layer=None):
    """match_individuals then preprocess_expression, as the workflow chains them."""
    table, cells = out_dir / "matching" / "individuals.tsv", out_dir / "expression" / "pre.h5ad"
    match_script.match(cohort["bfile"], counts, table, "individual", counts_layer=counts_layer)
    summary = preprocess_script.preprocess_cells(counts, table, cells, "individual", SETTINGS,
                                                 counts_layer=counts_layer)
    return summary, cells


def _assert_refused(cohort, counts, words, counts_layer=None):
    """The match step fails with every word in the message; no file is left in the output."""
    out = counts.parent / "out"
    with pytest.raises(NAMInputError) as err:
        _run(cohort, counts, out, counts_layer)
    message = str(err.value)
    for word in [counts.name, *words]:
        assert word in message, (word, message)
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()], "output left"
    return message


@pytest.fixture
def raw(cohort):
    return ad.read_h5ad(cohort["counts"])


@pytest.fixture
def reference(cohort, tmp_path_factory):
    """The PCs and kept cells from the demo counts as written (X holds the counts)."""
    summary, cells = _run(cohort, cohort["counts"], tmp_path_factory.mktemp("ref"))
    return ad.read_h5ad(cells)


def _same_result(cells_path, reference):
    got = ad.read_h5ad(cells_path)
    assert list(got.obs_names) == list(reference.obs_names)
    assert np.array_equal(got.var["highly_variable"], reference.var["highly_variable"])
    assert np.allclose(got.obsm["X_pca"], reference.obsm["X_pca"], atol=1e-4)


def test_cellxgene_layout_refused_then_read_from_raw(cohort, raw, reference, tmp_path):
    """Log-normalised X with the counts in .raw.X: refused, pointing to raw.X; then accepted."""
    lognorm = raw.copy()
    lognorm.raw = raw
    lognorm.X = _lognormalised(raw.X)
    path = _write(lognorm, tmp_path / "cellxgene.h5ad")
    _assert_refused(cohort, path, ["non-integer values", f"cell {raw.obs_names[0]!r}", "gene",
                                   "'raw.X'", "counts_layer"])
    _, cells = _run(cohort, path, tmp_path / "ok", counts_layer="raw.X")
    _same_result(cells, reference)


def test_scaled_x_refused_pointing_to_counts_layer(cohort, raw, reference, tmp_path):
    """Scaled X (negative values) with a counts layer: refused naming the layer; then accepted."""
    scaled = raw.copy()
    scaled.layers["counts"] = raw.X.copy()
    dense = _lognormalised(raw.X).toarray()
    scaled.X = (dense - dense.mean(0)) / (dense.std(0) + 1e-6)
    path = _write(scaled, tmp_path / "scaled.h5ad")
    _assert_refused(cohort, path, ["negative values", "'counts'", "counts_layer"])
    _, cells = _run(cohort, path, tmp_path / "ok", counts_layer="counts")
    _same_result(cells, reference)


def test_missing_counts_layer_lists_the_alternatives(cohort, raw, tmp_path):
    with_layer = raw.copy()
    with_layer.layers["umis"] = raw.X.copy()
    path = _write(with_layer, tmp_path / "layers.h5ad")
    _assert_refused(cohort, path, ["no layers/spliced", "'umis'"], counts_layer="spliced")


def test_int64_indptr_int32_indices_accepted(cohort, raw, reference, tmp_path):
    path = _write(raw, tmp_path / "mixed.h5ad")
    with h5py.File(path, "r+") as f:
        for key, dtype in (("indptr", np.int64), ("indices", np.int32)):
            values = f[f"X/{key}"][...].astype(dtype)
            del f[f"X/{key}"]
            f[f"X/{key}"] = values
    with h5py.File(path, "r") as f:
        assert f["X/indptr"].dtype == np.int64 and f["X/indices"].dtype == np.int32
    _, cells = _run(cohort, path, tmp_path / "ok")
    _same_result(cells, reference)


@pytest.mark.parametrize("value, words", [
    (np.nan, ["1 NaN values in 1 cells"]),
    (-3.0, ["1 negative values", "give the raw counts in X, .raw.X or a layer"]),
    (2.5, ["1 non-integer values", "= 2.5"]),
])
def test_bad_value_named_by_cell_and_gene(cohort, raw, tmp_path, value, words):
    bad = raw.copy()
    row, where = 37, bad.X.indptr[37] + 2
    bad.X.data[where] = value
    cell, gene = bad.obs_names[row], bad.var_names[bad.X.indices[where]]
    path = _write(bad, tmp_path / "bad.h5ad")
    _assert_refused(cohort, path, [*words, f"cell {cell!r} gene {gene!r}"])


def test_bad_value_caught_by_preprocess_alone(cohort, raw, tmp_path):
    """preprocess_expression checks the values too (a counts file changed after matching)."""
    table = tmp_path / "matching.tsv"
    match_script.match(cohort["bfile"], cohort["counts"], table, "individual")
    bad = raw.copy()
    bad.X.data[5] = -1.0
    path = _write(bad, tmp_path / "bad.h5ad")
    out = tmp_path / "expression" / "pre.h5ad"
    with pytest.raises(NAMInputError, match=r"bad\.h5ad' does not hold raw UMI counts.*negative"):
        preprocess_script.preprocess_cells(path, table, out, "individual", SETTINGS)
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_ensembl_ids_warn_on_the_console(cohort, raw, tmp_path, capfd):
    """No gene name starts with MT-: the mitochondrial filter is a no-op, said on stderr."""
    ensembl = raw.copy()
    ensembl.var["gene_symbols"] = ensembl.var_names.astype(str)
    ensembl.var_names = [f"ENSG{i:011d}" for i in range(ensembl.n_vars)]
    path = _write(ensembl, tmp_path / "ensembl.h5ad")
    log = tmp_path / "preprocess.log"
    try:
        with logged(log):
            summary, _ = _run(cohort, path, tmp_path / "out")
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    err = capfd.readouterr().err
    assert "no gene name starts with 'MT-'" in err and "'ENSG00000000000'" in err
    assert "var column 'gene_symbols'" in err and "max_pct_mt=20" in err
    assert "no gene name starts with 'MT-'" in log.read_text()
    assert summary["n_mt_genes"] == 0 and summary["cells_removed"]["max_pct_mt"] == 0


def test_validation_holds_one_block_not_a_copy_of_x(tmp_path):
    """Validation traces under a quarter of X's size (a COO copy of X was over 1.5 times it)."""
    rng = np.random.default_rng(0)
    X = sp.random(20_000, 2_000, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    X.data = np.ceil(X.data * 10)
    obs = pd.DataFrame({"individual": ["a"] * X.shape[0]}, index=[f"c{i}" for i in range(X.shape[0])])
    path = _write(ad.AnnData(X, obs=obs), tmp_path / "big.h5ad")
    x_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    with open_counts(path) as counts:
        tracemalloc.start()
        counts.validate_values(chunk=1000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 0.25 * x_bytes, (peak, x_bytes)

def test_raw_x_layer_on_counts_in_x_suggests_removing_it(cohort, raw, tmp_path):
    """The OneK1K template's counts_layer: raw.X on a file with counts in X names the fix."""
    path = _write(raw, tmp_path / "counts_in_x.h5ad")
    _assert_refused(cohort, path, ["no raw/X", "remove inputs.counts_layer"], counts_layer="raw.X")


def test_match_logs_the_median_umis_and_suggests_target_sum(cohort, raw, tmp_path):
    """The first job's log names the median UMIs per cell, computed in the validation pass."""
    path = _write(raw, tmp_path / "counts.h5ad")
    log = tmp_path / "match.log"
    with logged(log):
        match_script.match(cohort["bfile"], path, tmp_path / "table.tsv", "individual")
    expected = np.median(np.asarray(raw.X.sum(axis=1)).ravel())
    text = log.read_text()
    assert f"median UMIs per cell: {expected:.0f}" in text, text[-2000:]
    assert "expression.target_sum" in text
