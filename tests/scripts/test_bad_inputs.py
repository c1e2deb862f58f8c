"""Bad input fails in the first step (match_individuals) with a message naming file and problem,
and leaves no output behind."""

import logging
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError

from .conftest import load_script

match_script = load_script("match_individuals")


@pytest.fixture
def inputs(cohort, tmp_path):
    """A private copy of the cohort's PLINK files and counts, to damage."""
    src = cohort["bfile"]
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{src}.{ext}", tmp_path / f"geno.{ext}")
    shutil.copy(cohort["counts"], tmp_path / "counts.h5ad")
    return {"bfile": tmp_path / "geno", "counts": tmp_path / "counts.h5ad", "dir": tmp_path}


def run_match(inputs, **kwargs):
    table = inputs["dir"] / "out" / "individuals.tsv"
    result = match_script.match(inputs["bfile"], inputs["counts"], table, "individual", **kwargs)
    return result, table


def assert_fails(inputs, pattern, **kwargs):
    with pytest.raises(NAMInputError, match=pattern):
        run_match(inputs, **kwargs)
    out = inputs["dir"] / "out"
    assert not out.exists() or not any(out.iterdir()), "partial output left behind"


def edit_counts(inputs, edit):
    adata = ad.read_h5ad(inputs["counts"])
    edit(adata)
    adata.write_h5ad(inputs["counts"])


def test_good_inputs_match(inputs):
    result, table = run_match(inputs)
    report = pd.read_csv(table, sep="\t")
    assert (report["status"] == "matched").all() and len(report) == 30
    assert result.cell_mask.all()


def test_missing_bed(inputs):
    (inputs["dir"] / "geno.bed").unlink()
    assert_fails(inputs, r"geno\.bed")


def test_truncated_bed(inputs):
    bed = inputs["dir"] / "geno.bed"
    bed.write_bytes(bed.read_bytes()[:-100])
    assert_fails(inputs, r"geno\.bed has \d+ bytes")


def test_bed_not_plink(inputs):
    (inputs["dir"] / "geno.bed").write_bytes(b"not a bed file at all")
    assert_fails(inputs, r"geno\.bed is not a PLINK 1 \.bed file")


def test_fam_does_not_match_bed(inputs):
    fam = inputs["dir"] / "geno.fam"
    lines = fam.read_text().splitlines()
    # 4 more individuals: one more byte per SNP (a .bed stores 4 individuals per byte, so a
    # .fam off by fewer than 4 rows can only be caught when the row count crosses a byte)
    extra = [lines[0].replace("IND0001", f"EXTRA{i}") for i in range(4)]
    fam.write_text("\n".join(lines + extra) + "\n")
    assert_fails(inputs, r"geno\.fam lists 34 individuals")


def test_bim_does_not_match_bed(inputs):
    bim = inputs["dir"] / "geno.bim"
    bim.write_text("".join(bim.read_text().splitlines(keepends=True)[:-10]))
    assert_fails(inputs, r"geno\.bim lists 1990 SNPs")


def test_wrong_individual_column(inputs):
    with pytest.raises(NAMInputError, match=r"counts\.h5ad.*no column 'donor'.*'individual'"):
        match_script.match(inputs["bfile"], inputs["counts"], inputs["dir"] / "t.tsv", "donor")
    assert not (inputs["dir"] / "t.tsv").exists()


def test_nan_counts(inputs):
    def add_nan(adata):
        adata.X.data[:3] = np.nan

    edit_counts(inputs, add_nan)
    assert_fails(inputs, r"counts\.h5ad.*3 NaN")


def test_negative_counts(inputs):
    def negate(adata):
        adata.X.data[5] = -2.0

    edit_counts(inputs, negate)
    assert_fails(inputs, r"counts\.h5ad.*negative values")


def test_no_overlap_names_both_files(inputs):
    def rename(adata):
        adata.obs["individual"] = ("X" + adata.obs["individual"].astype(str)).astype("category")

    edit_counts(inputs, rename)
    assert_fails(inputs, r"no individual is in both the genotypes .*geno\.fam.* and the cells .*counts\.h5ad")


def drop_individuals(inputs, names):
    def drop(adata):
        keep = ~adata.obs["individual"].astype(str).isin(names)
        adata._inplace_subset_obs(keep.to_numpy())

    edit_counts(inputs, drop)


def add_ungenotyped_cells(inputs, name="STRANGER", n=7):
    def add(adata):
        extra = adata[:n].copy()
        extra.obs_names = [f"{name}_{i}" for i in range(n)]
        extra.obs["individual"] = name
        merged = ad.concat([adata, extra])
        merged.obs["individual"] = merged.obs["individual"].astype("category")
        adata._init_as_actual(merged)

    edit_counts(inputs, add)


def test_individuals_without_cells_reported_and_dropped(inputs, caplog):
    drop_individuals(inputs, ["IND0002", "IND0005"])
    result, table = run_match(inputs, individuals_without_cells="drop")
    report = pd.read_csv(table, sep="\t")
    missing = report[report["status"] == "no_cells"]
    assert sorted(missing["individual"]) == ["IND0002", "IND0005"]
    assert (missing["action"] == "dropped").all()
    assert "IND0002" not in result.individuals and len(result.individuals) == 28
    assert "IND0002" in caplog.text and "IND0005" in caplog.text


def test_individuals_without_cells_fail(inputs):
    drop_individuals(inputs, ["IND0002"])
    assert_fails(inputs, r"1 individuals of .*geno.* have no cells .*'IND0002'",
                 individuals_without_cells="fail")


def test_cells_without_genotype_reported_and_dropped(inputs, caplog):
    caplog.set_level(logging.INFO)
    add_ungenotyped_cells(inputs)
    result, table = run_match(inputs)
    report = pd.read_csv(table, sep="\t")
    row = report[report["individual"] == "STRANGER"].iloc[0]
    assert row["status"] == "no_genotype" and row["n_cells"] == 7 and row["action"] == "dropped"
    assert (~result.cell_mask).sum() == 7
    assert "STRANGER (7 cells)" in caplog.text


def test_cells_without_genotype_fail(inputs):
    add_ungenotyped_cells(inputs)
    assert_fails(inputs, r"7 cells of .*counts\.h5ad.* missing from .*geno\.fam.*'STRANGER'",
                 cells_without_genotype="fail")
