"""Valid but degenerate data: an early error that says what to change, or a fit with a warning.

Each case edits a private copy of the tiny cohort (30 individuals, about 45 cells each) and
runs the step that meets the problem first, as the workflow's rule would.
"""

import logging
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from nam_core import NAM
from nam_core.errors import NAMInputError
from nam_core.inputs.degenerate import check_fittable, check_full_rank
from nam_core.inputs.fit_inputs import assemble_fit_inputs
from nam_core.inputs.genotypes import compute_genotype_pcs

from .conftest import load_script

match_script = load_script("match_individuals")
preprocess_script = load_script("preprocess_expression")
PREPROCESS = dict(min_genes=100, min_cells=3, min_counts=300, max_pct_mt=20.0, n_top_genes=300,
                  n_pcs=5, target_sum=1000.0)


@pytest.fixture
def inputs(cohort, tmp_path):
    """A private copy of the cohort's PLINK files and counts, to edit."""
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{cohort['bfile']}.{ext}", tmp_path / f"geno.{ext}")
    shutil.copy(cohort["counts"], tmp_path / "counts.h5ad")
    return {"bfile": tmp_path / "geno", "counts": tmp_path / "counts.h5ad", "dir": tmp_path}


def edit_counts(inputs, edit):
    adata = ad.read_h5ad(inputs["counts"])
    adata = edit(adata)
    adata.write_h5ad(inputs["counts"])


def keep_individuals(names):
    return lambda a: a[a.obs["individual"].astype(str).isin(names)].copy()


def run_match(inputs, n_pcs=3):
    table = inputs["dir"] / "out" / "matching.tsv"
    match_script.match(inputs["bfile"], inputs["counts"], table, "individual", n_pcs=n_pcs)
    return table


@pytest.mark.parametrize(("kept", "words"), [
    (["IND0001"], "only 1 individual of .*geno.fam with cells in .*counts.h5ad; NAM clusters "
                  "individuals and needs at least 4 .*: add individuals"),
    (["IND0001", "IND0002", "IND0003"],
     r"only 3 individuals of .*geno.fam .* genotypes.n_pcs = 3 PCs need at least n_pcs \+ 1 = 4 "
     r"individuals .*: set genotypes.n_pcs to at most 2"),
])
def test_too_few_individuals_fail_in_the_first_step(inputs, kept, words):
    edit_counts(inputs, keep_individuals(kept))
    with pytest.raises(NAMInputError, match=words):
        run_match(inputs)
    assert not (inputs["dir"] / "out").exists() or not any((inputs["dir"] / "out").iterdir())


def test_as_many_individuals_as_pcs_plus_one_pass(inputs):
    edit_counts(inputs, keep_individuals(["IND0001", "IND0002", "IND0003", "IND0004"]))
    assert run_match(inputs).exists()


def test_monomorphic_genotypes_say_what_to_check(inputs):
    bed = inputs["dir"] / "geno.bed"
    data = bytearray(bed.read_bytes())
    data[3:] = bytes(len(data) - 3)  # everyone homozygous for allele 1 at every SNP
    bed.write_bytes(bytes(data))
    with pytest.raises(NAMInputError, match=r"0 of the 2000 SNPs in .*geno.bed pass the filters "
                                            r".*genotypes do not vary .*check the file"):
        compute_genotype_pcs(inputs["bfile"], n_pcs=3)


def preprocess(inputs, **settings):
    table = run_match(inputs)
    out = inputs["dir"] / "out" / "pre.h5ad"
    preprocess_script.preprocess_cells(inputs["counts"], table, out, "individual",
                                       {**PREPROCESS, **settings})
    return ad.read_h5ad(out)


def test_all_zero_genes_and_cells_are_removed_by_qc(inputs):
    def zero(adata):
        X = adata.X.tolil()
        X[:, :20] = 0  # 20 genes never detected
        X[:7, :] = 0  # 7 cells without a count
        adata.X = sp.csr_matrix(X)
        return adata

    edit_counts(inputs, zero)
    pre = preprocess(inputs)
    report = pre.uns["preprocess"]
    assert report["genes_removed"]["min_cells"] >= 20
    assert report["cells_removed"]["min_genes"] + report["cells_removed"]["min_counts"] >= 7
    assert np.isfinite(pre.obsm["X_pca"]).all()


def test_duplicated_barcodes_are_made_unique_with_a_warning(inputs, caplog):
    def duplicate(adata):
        names = adata.obs_names.to_numpy().copy()
        names[1] = names[0]
        adata.obs_names = names
        return adata

    edit_counts(inputs, duplicate)
    with caplog.at_level(logging.WARNING):
        pre = preprocess(inputs)
    assert pre.obs_names.is_unique
    assert "1 duplicated cell names (e.g. IND0001_C0001), made unique" in caplog.text


def test_fewer_cells_than_expression_pcs_caps_the_pcs_with_a_warning(inputs, caplog):
    edit_counts(inputs, lambda a: a[~a.obs["individual"].duplicated().to_numpy()].copy())
    with caplog.at_level(logging.WARNING):
        pre = preprocess(inputs, n_pcs=40)
    n_cells = pre.n_obs
    assert pre.obsm["X_pca"].shape[1] == n_cells - 1 < 40
    assert f"n_pcs=40 capped at {n_cells - 1}" in caplog.text


def matching_table(individuals):
    return pd.DataFrame({"individual": individuals, "in_genotypes": True, "n_cells": 1,
                         "status": "matched", "action": "kept"})


def assemble(x, y, group):
    individuals = [f"I{j}" for j in range(len(x))]
    pcs = pd.DataFrame(x, index=pd.Index(individuals, name="individual"))
    inputs = assemble_fit_inputs(pcs, np.asarray(individuals)[group], y,
                                 [f"c{i}" for i in range(len(y))], matching_table(individuals))
    check_fittable(inputs.x, inputs.y, inputs.group, inputs.individuals, "pre.h5ad", "pcs.tsv")
    return inputs


def test_identical_cells_fail_before_the_fit():
    rng = np.random.default_rng(0)
    with pytest.raises(NAMInputError, match=r"pre.h5ad: the 3 expression PCs of the cells are "
                                            r"the same for all 40 rows"):
        assemble(rng.normal(size=(8, 2)), np.ones((40, 3)), np.arange(40) % 8)


def test_a_constant_expression_pc_names_the_pc_and_the_key():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 3))
    y[:, 2] = 0.5
    with pytest.raises(NAMInputError, match=r"span only 2 dimensions over 40 rows \(PC 3 is "
                                            r"constant\).*set expression.n_pcs to at most 2"):
        assemble(rng.normal(size=(8, 2)), y, np.arange(40) % 8)


def test_too_few_individuals_after_qc_fail_before_the_fit():
    rng = np.random.default_rng(0)
    with pytest.raises(NAMInputError, match=r"only 3 individuals enter the fit .*pre.h5ad"):
        assemble(rng.normal(size=(3, 3)), rng.normal(size=(30, 4)), np.arange(30) % 3)


def test_non_finite_pcs_are_named():
    y = np.ones((10, 2))
    y[4, 1] = np.nan
    with pytest.raises(NAMInputError, match=r"f.npz: y hold NaN or infinite values \(PC 2\)"):
        check_full_rank(y, "y", "k", "f.npz")


def two_groups_one_type(rng, n_individuals=12, cells=30):
    """x in two ancestry groups; every cell drawn from one Gaussian cell type."""
    x = np.repeat([[-3.0, 0.0], [3.0, 0.0]], n_individuals // 2, axis=0)
    x += rng.normal(scale=0.3, size=x.shape)
    group = np.repeat(np.arange(n_individuals), cells)
    return x, rng.normal(size=(len(group), 3)), group


def fit_small(inputs, n_init=1):
    return NAM(K=4, L=6, dtype="float64", device="cpu", n_init=n_init, max_iter=300, tol=1e-6,
               merge_atoms=True, check_monotone=True, seed=0).fit(inputs.x, inputs.y, inputs.group)


def test_an_individual_with_one_cell_is_fitted_and_named(caplog):
    rng = np.random.default_rng(1)
    x, y, group = two_groups_one_type(rng)
    keep = (group != 0) | (np.arange(len(group)) == 0)  # I0 keeps one cell
    with caplog.at_level(logging.WARNING):
        inputs = assemble(x, y[keep], group[keep])
    assert "1 individuals have fewer than 5 cells: I0 (1 cell)" in caplog.text
    model = fit_small(inputs)
    assert np.isfinite(model.rho_).all() and np.isfinite(model.elbo_)  # ELBO checked monotone


def test_a_cohort_of_one_cell_type_fits_to_one_dominant_atom():
    rng = np.random.default_rng(2)
    # one restart in ten stops in a worse optimum with several atoms; the best of four holds
    model = fit_small(assemble(*two_groups_one_type(rng)), n_init=4)
    shares = np.bincount(model.cell_labels_) / len(model.cell_labels_)
    assert shares.max() > 0.9, shares  # one Gaussian: one atom holds nearly every cell
    assert np.isfinite(model.elbo_)
