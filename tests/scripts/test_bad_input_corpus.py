"""Corpus of bad or unusual inputs, each run through the rule script where it must be caught.

Every case states the rule (the script called), asserts the exception type and the words of the
message (the file or key and the problem), and that the rule's output folder holds nothing
afterwards; legitimate inputs assert a correct run and a notice that reaches the console.
Config cases and the recovery after a kill run Snakemake (tests/workflow/test_recovery.py).
"""

import logging
import shutil
import unicodedata
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nam_core.errors import NAMInputError
from nam_core.inputs.cohort import near_misses
from nam_core.inputs.genotypes import validate_plink
from nam_core.intermediates import intact_problem, read_intermediate
from nam_core.validation import check_device_available

from .conftest import load_script

match_script = load_script("match_individuals")
pcs_script = load_script("compute_genotype_pcs")
common = load_script("_common")

J = 30  # individuals of the tiny cohort (conftest.TINY): 8 bytes per SNP, 2 of padding


@pytest.fixture
def inputs(cohort, tmp_path):
    """A private copy of the tiny cohort's PLINK files and counts, to damage."""
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{cohort['bfile']}.{ext}", tmp_path / f"geno.{ext}")
    shutil.copy(cohort["counts"], tmp_path / "counts.h5ad")
    return {"bfile": tmp_path / "geno", "counts": tmp_path / "counts.h5ad", "dir": tmp_path,
            "out": tmp_path / "out"}


def run_match(inputs, **kwargs):
    """Rule match_individuals on the copy (the workflow's defaults for the loss threshold)."""
    kwargs.setdefault("max_lost_fraction", 0.1)
    table = inputs["out"] / "individuals.tsv"
    return match_script.match(inputs["bfile"], inputs["counts"], table, "individual", **kwargs)


def assert_nothing_written(folder: Path):
    left = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert left == [], f"left behind: {left}"


def fails_in_match(inputs, *words, **kwargs) -> str:
    """Rule match_individuals raises NAMInputError whose message holds every one of ``words``."""
    with pytest.raises(NAMInputError) as err:
        run_match(inputs, **kwargs)
    for word in words:
        assert word in str(err.value), str(err.value)
    assert_nothing_written(inputs["out"])
    return str(err.value)


def fam_lines(inputs) -> list[str]:
    return Path(f"{inputs['bfile']}.fam").read_text().splitlines()


def write_fam(inputs, lines):
    Path(f"{inputs['bfile']}.fam").write_text("\n".join(lines) + "\n")


def edit_counts(inputs, edit):
    adata = ad.read_h5ad(inputs["counts"])
    edit(adata)
    adata.write_h5ad(inputs["counts"])


def rename_cells(inputs, rename):
    def edit(adata):
        adata.obs["individual"] = adata.obs["individual"].astype(str).map(rename).astype(
            "category")

    edit_counts(inputs, edit)


def set_bed_codes(inputs, individual: int, code: int, snps=slice(None)):
    """Overwrite one individual's 2-bit genotype code at ``snps`` of the .bed."""
    bed = Path(f"{inputs['bfile']}.bed")
    raw = np.frombuffer(bed.read_bytes(), dtype=np.uint8)
    body = raw[3:].reshape(-1, (J + 3) // 4).copy()
    byte, shift = individual // 4, 2 * (individual % 4)
    body[snps, byte] = (body[snps, byte] & ~np.uint8(3 << shift)) | np.uint8(code << shift)
    bed.write_bytes(raw[:3].tobytes() + body.tobytes())


# ------------------------------------------------------------------ PLINK: .fam off from .bed


def test_fam_one_line_short_is_caught_by_the_padding_bits(inputs):
    """29 lines for 30 individuals: same .bed size, so only the padding bits show it."""
    write_fam(inputs, fam_lines(inputs)[:-1])
    fails_in_match(inputs, "geno.bed", "past the 29 individuals", "geno.fam",
                   "1-3 more individuals than the .fam lists")


def test_fam_line_missing_in_the_middle(inputs):
    """A line lost in the middle shifts every later IID onto its neighbour's genotypes."""
    lines = fam_lines(inputs)
    write_fam(inputs, lines[:10] + lines[11:])
    fails_in_match(inputs, "geno.bed", "neighbour's genotypes")


@pytest.mark.parametrize("extra", [1, 2])
def test_fam_with_extra_lines_reads_as_all_homozygous(inputs, extra):
    """31 or 32 lines for 30 individuals: the extra lines read the zero padding."""
    lines = fam_lines(inputs)
    write_fam(inputs, lines + [f"F{i} EXTRA{i} 0 0 0 -9" for i in range(extra)])
    message = fails_in_match(inputs, "geno.fam", "homozygous for the first allele at every one",
                             "EXTRA0 (line 31)", "more lines than the .bed")
    assert (extra == 2) == ("EXTRA1 (line 32)" in message)


def test_monomorphic_data_are_not_mistaken_for_extra_lines(inputs):
    """Everyone homozygous at every SNP is possible (monomorphic data): no error."""
    for individual in range(J):
        set_bed_codes(inputs, individual, 0)
    summary = validate_plink(inputs["bfile"])
    assert len(summary.fam) == J and summary.uncalled == []


def test_one_real_individual_homozygous_at_few_snps_is_accepted(inputs, tmp_path):
    """With only a handful of SNPs an all-homozygous individual is plausible: no error."""
    keep_first_snps(inputs, 3)
    set_bed_codes(inputs, 5, 0)
    validate_plink(inputs["bfile"])


def test_duplicate_iid_across_families(inputs):
    lines = fam_lines(inputs)
    fid, iid, *rest = lines[3].split()
    lines[7] = " ".join(["OTHERFAM", iid, *rest])
    write_fam(inputs, lines)
    fails_in_match(inputs, "geno.fam", "duplicate IIDs", iid)


def test_too_few_individuals_for_the_genotype_pcs_fails_in_the_first_rule(inputs):
    fails_in_match(inputs, "geno.fam", "30 individuals", "40 PCs need at least 41", n_pcs=40)


# ------------------------------------------------------------------ PLINK: legitimate oddities


def test_individual_without_any_genotype_call_is_dropped_with_a_notice(inputs, caplog):
    set_bed_codes(inputs, 4, 1)  # code 01: missing, at every SNP
    iid = fam_lines(inputs)[4].split()[1]
    with caplog.at_level(logging.WARNING):
        result = run_match(inputs)
    assert "no genotype call at all" in caplog.text and iid in caplog.text
    report = result.report.set_index("individual")
    assert report.loc[iid, "status"] == "no_calls" and report.loc[iid, "action"] == "dropped"
    assert iid not in result.individuals
    assert result.cell_mask.sum() == result.cell_mask.size - report.loc[iid, "n_cells"]


def test_uncalled_individuals_above_the_loss_threshold_fail(inputs):
    for individual in range(5):  # 5 of 30 individuals = 17%
        set_bed_codes(inputs, individual, 1)
    fails_in_match(inputs, "5 of the 30 individuals", "no usable genotypes", "geno.fam",
                   "matching.max_lost_fraction = 0.1")


FILTERS = {"min_maf": 0.01, "max_missing": 0.05}


def test_all_missing_snps_are_filtered_not_fatal(inputs):
    for individual in range(J):
        set_bed_codes(inputs, individual, 1, snps=slice(0, 50))
    run_match(inputs, n_pcs=3, snp_filters=FILTERS)
    out = inputs["out"]
    result = pcs_script.compute(inputs["bfile"], out / "pcs.tsv", out / "eigen.tsv", n_pcs=3,
                                chunk_snps=500, **FILTERS)
    assert result.params["n_snps_failed_missing"] >= 50
    assert np.isfinite(result.scores.to_numpy()).all()
    scan = validate_plink(inputs["bfile"], 3, chunk_snps=300, **FILTERS)
    assert scan.n_snps == result.n_snps_total


def test_scan_counts_the_snps_the_pcs_use(inputs):
    """The first rule's count of SNPs passing the filters is the PCs' n_snps_used."""
    from nam_core.inputs.genotypes import scan_bed

    for individual in range(0, J, 3):
        set_bed_codes(inputs, individual, 1, snps=slice(0, 200))  # 1/3 missing: fail
    out = inputs["out"]
    result = pcs_script.compute(inputs["bfile"], out / "pcs.tsv", out / "eigen.tsv", n_pcs=3,
                                chunk_snps=700, **FILTERS)
    scan = scan_bed(Path(f"{inputs['bfile']}.bed"), J, result.n_snps_total, 300,
                    (FILTERS["min_maf"], FILTERS["max_missing"]))
    assert scan.n_snps_passing == result.n_snps_used < result.n_snps_total - 200


def keep_first_snps(inputs, n_keep: int):
    bed, bim = Path(f"{inputs['bfile']}.bed"), Path(f"{inputs['bfile']}.bim")
    bed.write_bytes(bed.read_bytes()[: 3 + n_keep * ((J + 3) // 4)])
    bim.write_text("".join(bim.read_text().splitlines(keepends=True)[:n_keep]))


def test_too_few_snps_passing_the_filters_fails_in_the_first_rule(inputs):
    keep_first_snps(inputs, 40)
    for individual in range(0, J, 2):
        set_bed_codes(inputs, individual, 1, snps=slice(0, 38))  # half missing: 38 fail
    fails_in_match(inputs, "2 of the 40 SNPs in", "geno.bed", "pass the filters (MAF >= 0.01",
                   "3 PCs need at least 3 SNPs", n_pcs=3, snp_filters=FILTERS)


def test_sex_chromosomes_and_duplicated_snp_ids_in_the_bim(inputs):
    """Chromosome codes X, Y, MT, 23 and a SNP ID repeated (merged arrays) are read as given."""
    bim = Path(f"{inputs['bfile']}.bim")
    rows = [line.split("\t") for line in bim.read_text().splitlines()]
    for row, chrom in zip(rows[:4], ("X", "Y", "MT", "23"), strict=True):
        row[0] = chrom
    rows[10][1] = rows[11][1]
    bim.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    run_match(inputs)
    out = inputs["out"]
    result = pcs_script.compute(inputs["bfile"], out / "pcs.tsv", out / "eigen.tsv", n_pcs=3,
                                min_maf=0.01, max_missing=0.05, chunk_snps=500)
    assert result.n_snps_total == len(rows)


def test_fam_with_windows_line_endings_and_tabs(inputs):
    lines = [line.replace(" ", "\t") for line in fam_lines(inputs)]
    Path(f"{inputs['bfile']}.fam").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    result = run_match(inputs)
    assert len(result.individuals) == J and result.cell_mask.all()


def test_non_ascii_ids_match(inputs):
    lines = fam_lines(inputs)
    renamed = {line.split()[1]: f"Zoë_{i}" for i, line in enumerate(lines)}
    write_fam(inputs, [" ".join([f.replace(k, v) for f in line.split()])
                       for line, (k, v) in zip(lines, renamed.items(), strict=True)])
    rename_cells(inputs, renamed)
    result = run_match(inputs)
    assert result.individuals[0] == "Zoë_0" and result.cell_mask.all()


# ------------------------------------------------------------------ matching: quiet losses


def test_zero_padding_on_some_ids_fails_and_names_the_near_miss(inputs):
    """Cells of 5 of 30 individuals (17%) written without the zero padding of the .fam."""
    iids = [line.split()[1] for line in fam_lines(inputs)]
    unpadded = {iid: iid.replace("IND000", "IND") for iid in iids[:5]}
    rename_cells(inputs, lambda iid: unpadded.get(iid, iid))
    fails_in_match(inputs, "5 of the 30 individuals", "counts.h5ad", "zero padding",
                   f"'IND1 ~ {iids[0]}'", "max_lost_fraction")


def test_integer_vs_float_ids_fail_with_the_hint(inputs):
    """.fam IIDs 1..30; the h5ad column was stored as float (1.0, ...)."""
    lines = fam_lines(inputs)
    to_number = {line.split()[1]: str(i + 1) for i, line in enumerate(lines)}
    write_fam(inputs, [" ".join(["F", str(i + 1), *line.split()[2:]])
                       for i, line in enumerate(lines)])
    rename_cells(inputs, lambda iid: f"{float(to_number[iid]):.1f}")
    fails_in_match(inputs, "no individual is in both", "integer vs float", "'1.0 ~ 1'")


def test_case_difference_fails_with_the_hint(inputs):
    rename_cells(inputs, str.lower)
    fails_in_match(inputs, "no individual is in both", "case", "'ind0001 ~ IND0001'")


def test_unicode_normalisation_difference_fails_with_the_hint(inputs):
    """NFC in the .fam, NFD in the cells (macOS tools): the same name, different bytes."""
    lines = fam_lines(inputs)
    names = {line.split()[1]: f"Renée{i}" for i, line in enumerate(lines)}
    write_fam(inputs, [" ".join(["F", unicodedata.normalize("NFC", names[line.split()[1]]),
                                 *line.split()[2:]]) for line in lines])
    rename_cells(inputs, lambda iid: unicodedata.normalize("NFD", names[iid]))
    fails_in_match(inputs, "no individual is in both", "Unicode normalisation")


def test_small_loss_runs_and_is_summarised_on_the_console(inputs, tmp_path, capsys):
    """One individual of 30 (3%) lost: below the threshold, a console summary names it."""
    rename_cells(inputs, lambda iid: "IND1" if iid == "IND0001" else iid)
    with common.logged(tmp_path / "match.log"):
        result = run_match(inputs)
    err = capsys.readouterr().err
    assert "NAM WARNING" in err and "1 of the 30 individuals" in err
    assert "zero padding" in err and "IND1 ~ IND0001" in err
    assert len(result.individuals) == J - 1
    assert "NAM WARNING" not in (tmp_path / "match.log").read_text()  # the log has its format


def test_loss_threshold_can_be_raised(inputs):
    iids = [line.split()[1] for line in fam_lines(inputs)]
    rename_cells(inputs, lambda iid: iid + "x" if iid in iids[:6] else iid)
    fails_in_match(inputs, "6 of the 30 individuals")
    result = run_match(inputs, max_lost_fraction=0.25)
    assert len(result.individuals) == J - 6


def test_near_miss_kinds():
    misses = near_misses(["01", "1.0", "ab c", "ABC", "x"], ["1", "2", "abc"])
    assert misses["cells_id"].tolist() == ["01", "1.0", "ab c", "ABC"]
    assert misses["difference"].tolist() == [
        "zero padding ('01' vs '1')", "integer vs float ('1' vs '1.0')", "whitespace", "case"]


def test_individual_column_with_nan(inputs):
    def blank(adata):
        values = adata.obs["individual"].astype(object).to_numpy()
        values[:3] = np.nan
        adata.obs["individual"] = values

    edit_counts(inputs, blank)
    with pytest.raises(NAMInputError) as err:
        run_match(inputs)
    assert "counts.h5ad" in str(err.value) and "individual" in str(err.value)
    assert_nothing_written(inputs["out"])


# ------------------------------------------------------------------ config: device


@pytest.mark.parametrize("device", ["cuda:7", "cuda:99"])
def test_device_index_past_the_visible_devices(device):
    with pytest.raises(NAMInputError, match=r"fit\.device is 'cuda:\d+' but this machine sees"):
        check_device_available(device, key="fit.device")


def test_device_string_torch_cannot_parse():
    with pytest.raises(NAMInputError, match=r"fit\.device must be 'auto', 'cpu'"):
        check_device_available("gpu0", key="fit.device")


# ------------------------------------------------------------------ damaged intermediates


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def test_truncated_h5ad_names_the_file_and_the_rule(cohort, tmp_path):
    """Rule compute_umap reading a truncated expression/preprocessed.h5ad."""
    cells = truncated_copy(cohort["counts"], tmp_path / "expression" / "preprocessed.h5ad")
    umap = load_script("compute_umap")
    with common.logged(tmp_path / "log", {str(cells): "preprocess_expression"}):
        with pytest.raises(NAMInputError) as err:
            umap.compute(cells, tmp_path / "out" / "umap.tsv")
    message = str(err.value)
    for word in (str(cells), "not a complete HDF5 file", "rule preprocess_expression",
                 "--forcerun preprocess_expression"):
        assert word in message, message
    assert_nothing_written(tmp_path / "out")


def test_truncated_fit_inputs_names_the_file_and_the_rule(tmp_path):
    """fit/inputs.npz cut short: the zip directory at its end is gone."""
    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.zeros((30, 3)), y=np.ones((1000, 5), dtype=np.float32))
    truncated_copy(path, path, keep=0.7)
    with common.logged(tmp_path / "log", {str(path): "assemble_fit_inputs"}):
        with pytest.raises(NAMInputError,
                           match=r"inputs\.npz is not a complete \.npz.*rule assemble_fit_inputs"):
            common.read_fit_inputs(path)


def test_truncated_tsv_names_the_rule(cohort, tmp_path):
    """Rule preprocess_expression reading a matching table cut mid-line."""
    table = tmp_path / "matching" / "individuals.tsv"
    table.parent.mkdir()
    table.write_text("individual\tin_genotypes\tn_cells\tstatus\taction\nIND0001\tTrue\t4")
    script = load_script("preprocess_expression")
    with common.logged(tmp_path / "log", {str(table): "match_individuals"}):
        with pytest.raises(NAMInputError, match=r"does not end with a newline.*match_individuals"):
            script.preprocess_cells(cohort["counts"], table, tmp_path / "out" / "pre.h5ad",
                                    "individual", {})
    assert_nothing_written(tmp_path / "out")


def test_empty_and_missing_intermediates(tmp_path):
    empty = tmp_path / "pcs.tsv"
    empty.write_bytes(b"")
    with pytest.raises(NAMInputError, match=r"pcs\.tsv is empty\. It was made by rule compute_genotype_pcs: rebuild"):
        read_intermediate(empty, pd.read_csv, "compute_genotype_pcs")
    with pytest.raises(NAMInputError, match=r"gone\.npz does not exist"):
        read_intermediate(tmp_path / "gone.npz", np.load, "assemble_fit_inputs")


def test_intact_problem_on_whole_and_cut_files(cohort, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    for suffix in (".png", ".pdf"):
        path = tmp_path / f"figure{suffix}"
        fig.savefig(path)
        assert intact_problem(path) is None
        truncated_copy(path, path, keep=0.9)
        assert "end marker" in intact_problem(path)
    plt.close(fig)
    assert intact_problem(cohort["counts"]) is None
    assert intact_problem(cohort["truth_individuals"]) is None
