"""Genotype PCs from PLINK 1 files: agreement with plink2 and a dense reference, filters, errors."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pandas_plink import write_plink1_bin

from nam_core.errors import NAMInputError
from nam_core.inputs.genotypes import GenotypePCs, compute_genotype_pcs, read_fam, validate_plink
from nam_core.synthetic.ancestry import balding_nichols_genotypes

# ----------------------------------------------------------------------------- helpers


def write_bfile(prefix: Path, genotypes: np.ndarray, major: str = "variant") -> Path:
    """Write a (J, P) allele-count matrix (NaN = missing) as PLINK 1 files at ``prefix``."""
    n_ind, n_snp = genotypes.shape
    iids = [f"ind{j}" for j in range(n_ind)]
    snps = [f"rs{s}" for s in range(n_snp)]
    data = xr.DataArray(
        genotypes.astype(np.float32),
        dims=["sample", "variant"],
        coords={
            "sample": iids, "fid": ("sample", [f"fam{j}" for j in range(n_ind)]),
            "iid": ("sample", iids), "father": ("sample", ["0"] * n_ind),
            "mother": ("sample", ["0"] * n_ind), "gender": ("sample", ["0"] * n_ind),
            "trait": ("sample", ["-9"] * n_ind),
            "variant": snps, "snp": ("variant", snps), "chrom": ("variant", ["1"] * n_snp),
            "cm": ("variant", np.zeros(n_snp)),
            "pos": ("variant", np.arange(1, n_snp + 1, dtype=np.int32)),
            "a0": ("variant", ["A"] * n_snp), "a1": ("variant", ["G"] * n_snp),
        },
    )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_plink1_bin(data, f"{prefix}.bed", major=major, verbose=False)
    return prefix


def structured_genotypes(
    n_per_pop: int, n_snps: int, fst: float, missing_rate: float, seed: int
) -> np.ndarray:
    """Balding-Nichols genotypes of 3 populations as float (J, P), a fraction set to NaN."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_pop)
    genotypes, _ = balding_nichols_genotypes(labels, n_snps, fst, rng)
    genotypes = genotypes.astype(np.float64)
    genotypes[rng.random(genotypes.shape) < missing_rate] = np.nan
    return genotypes


def dense_reference(
    genotypes: np.ndarray, n_pcs: int, min_maf: float = 0.01, max_missing: float = 0.05
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores (J, n_pcs), GRM eigenvalues and SNPs used, by a plain float64 SVD of the matrix."""
    called = ~np.isnan(genotypes)
    freq = np.nansum(genotypes, 0) / (2 * called.sum(0))
    maf = np.minimum(freq, 1 - freq)
    keep = (maf >= min_maf) & (maf > 0) & ((~called).mean(0) <= max_missing)
    z = (genotypes[:, keep] - 2 * freq[keep]) / np.sqrt(2 * freq[keep] * (1 - freq[keep]))
    z[np.isnan(z)] = 0.0
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return u[:, :n_pcs] * s[:n_pcs], s[:n_pcs] ** 2 / keep.sum(), int(keep.sum())


def assert_same_up_to_sign(a: np.ndarray, b: np.ndarray, rtol: float = 1e-4) -> None:
    """Columns of a and b agree up to one sign per column."""
    signs = np.sign((a * b).sum(0))
    np.testing.assert_allclose(a * signs, b, rtol=rtol, atol=rtol * np.abs(b).max())


def run_plink2(plink2: str, *args: str) -> None:
    """Run plink2 quietly on one thread; fail the test with its log if it fails."""
    cmd = [plink2, *args, "--threads", "1", "--memory", "1024"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plink2() -> str:
    """Path of plink2; skip without it, fail if NAM_REQUIRE_PLINK2=1 (as CI sets)."""
    path = shutil.which("plink2")
    if path is None:
        if os.environ.get("NAM_REQUIRE_PLINK2") == "1":
            pytest.fail("plink2 is not on PATH and NAM_REQUIRE_PLINK2=1")
        pytest.skip("plink2 is not on PATH")
    return path


@pytest.fixture(scope="module")
def small_genotypes() -> np.ndarray:
    """40 individuals x 300 SNPs, 3 populations, 2% missing calls."""
    return structured_genotypes(n_per_pop=14, n_snps=300, fst=0.05, missing_rate=0.02, seed=3)[
        :40
    ]


@pytest.fixture(scope="module")
def small_bfile(tmp_path_factory, small_genotypes) -> Path:
    """A valid fileset of ``small_genotypes``; copy it before corrupting it."""
    return write_bfile(tmp_path_factory.mktemp("small") / "small", small_genotypes)


@pytest.fixture
def copied_bfile(tmp_path, small_bfile) -> Path:
    """A private copy of ``small_bfile`` in ``tmp_path`` for tests that damage it."""
    prefix = tmp_path / "cohort"
    for ext in ("bed", "bim", "fam"):
        shutil.copy(f"{small_bfile}.{ext}", f"{prefix}.{ext}")
    return prefix


# ----------------------------------------------------------------------------- plink2


@pytest.mark.parametrize(
    ("missing_rate", "min_corr", "eig_rtol"),
    [
        (0.0, 0.99999, 1e-4),
        # plink2 rescales each GRM entry by the SNPs both individuals have called; we
        # mean-impute, so with missing calls the two differ slightly.
        (0.01, 0.999, 0.05),
    ],
)
def test_matches_plink2_pca(tmp_path, plink2, missing_rate, min_corr, eig_rtol):
    genotypes = structured_genotypes(50, 5000, fst=0.05, missing_rate=missing_rate, seed=1)
    bfile = write_bfile(tmp_path / "cohort", genotypes)
    out = tmp_path / "plink2_pca"
    run_plink2(plink2, "--bfile", str(bfile), "--pca", "3", "--maf", "0.01", "--geno", "0.05",
               "--out", str(out))
    eigenvec = pd.read_csv(f"{out}.eigenvec", sep="\t")
    eigenval = np.loadtxt(f"{out}.eigenval")
    plink2_used = int(
        re.search(r"(\d+) variants remaining after main filters", Path(f"{out}.log").read_text())[1]
    )

    res = compute_genotype_pcs(bfile, n_pcs=3, min_maf=0.01, max_missing=0.05, chunk_snps=1500)

    assert res.n_snps_used == plink2_used
    assert list(res.scores.index) == list(eigenvec["IID"])
    for k in range(3):
        corr = np.corrcoef(res.scores[f"PC{k + 1}"], eigenvec[f"PC{k + 1}"])[0, 1]
        assert abs(corr) > max(0.99, min_corr), f"PC{k + 1}: correlation {corr}"
    np.testing.assert_allclose(res.eigenvalues, eigenval, rtol=eig_rtol)


def test_reads_files_written_by_plink2_dummy(tmp_path, plink2):
    out = tmp_path / "dummy"
    run_plink2(plink2, "--dummy", "60", "500", "0.02", "acgt", "--make-bed", "--out", str(out))

    res = compute_genotype_pcs(out, n_pcs=4, min_maf=0.01, max_missing=0.1)

    assert res.scores.shape == (60, 4)
    assert list(res.scores.index) == list(read_fam(out)["iid"]) == [f"per{j}" for j in range(60)]
    assert np.isfinite(res.scores.to_numpy()).all()
    assert (res.n_individuals, res.n_snps_total) == (60, 500)
    assert 0 < res.n_snps_used <= 500


@pytest.mark.parametrize("n_individuals", [29, 30, 31])
def test_plink2_writes_zero_padding_so_the_scan_passes_and_catches_a_short_fam(
    tmp_path, plink2, n_individuals
):
    """PLINK's own files: the padding bits are zero, and a .fam one line short is caught."""
    out = tmp_path / "dummy"
    run_plink2(plink2, "--dummy", str(n_individuals), "800", "0.02", "acgt", "--make-bed",
               "--out", str(out))
    summary = validate_plink(out, 3, min_maf=0.01, max_missing=0.1)
    assert len(summary.fam) == n_individuals and summary.uncalled == []
    fam = Path(f"{out}.fam")
    lines = fam.read_text().splitlines()
    fam.write_text("\n".join(lines[:-1]) + "\n")
    if n_individuals % 4 == 1:  # one fewer individual drops a whole byte: the size check
        with raises_naming(f"{out}.bed", "bytes, but"):
            validate_plink(out)
    else:
        with raises_naming(f"{out}.bed", f"past the {n_individuals - 1} individuals"):
            validate_plink(out)


def test_plink2_make_bed_round_trip_gives_same_pcs(tmp_path, plink2, small_bfile):
    out = tmp_path / "round_trip"
    run_plink2(plink2, "--bfile", str(small_bfile), "--make-bed", "--out", str(out))

    ours = compute_genotype_pcs(small_bfile, n_pcs=3)
    theirs = compute_genotype_pcs(out, n_pcs=3)

    assert theirs.n_snps_used == ours.n_snps_used
    assert list(theirs.scores.index) == list(ours.scores.index)
    assert_same_up_to_sign(theirs.scores.to_numpy(), ours.scores.to_numpy(), rtol=1e-5)


# ----------------------------------------------------------------------------- the computation


def test_matches_dense_reference_whatever_the_chunk_size(small_bfile, small_genotypes):
    ref_scores, ref_eig, ref_used = dense_reference(small_genotypes, n_pcs=3)

    for chunk_snps in (7, 100, 10_000):
        res = compute_genotype_pcs(small_bfile, n_pcs=3, chunk_snps=chunk_snps)
        assert res.n_snps_used == ref_used
        assert_same_up_to_sign(res.scores.to_numpy(), ref_scores)
        np.testing.assert_allclose(res.eigenvalues, ref_eig, rtol=1e-5)


def test_result_layout(small_bfile):
    res = compute_genotype_pcs(small_bfile, n_pcs=5, seed=7)

    assert isinstance(res, GenotypePCs)
    assert res.scores.index.name == "individual"
    assert list(res.scores.columns) == ["PC1", "PC2", "PC3", "PC4", "PC5"]
    assert all(dtype == np.float64 for dtype in res.scores.dtypes)
    assert list(res.scores.index) == [f"ind{j}" for j in range(40)]
    assert res.eigenvalues.shape == res.explained_variance_ratio.shape == (5,)
    assert np.all(np.diff(res.eigenvalues) <= 0)
    assert 0 < res.explained_variance_ratio.sum() < 1
    assert (res.n_individuals, res.n_snps_total) == (40, 300)
    assert res.params["seed"] == 7 and res.params["n_pcs"] == 5
    # sign convention: the largest-magnitude entry of every PC is positive
    values = res.scores.to_numpy()
    assert np.all(values[np.abs(values).argmax(0), np.arange(5)] > 0)


def test_filters_drop_monomorphic_rare_and_missing_snps(tmp_path, small_genotypes):
    freq = np.nanmean(small_genotypes, 0) / 2
    common = ~np.isnan(small_genotypes).any(0) & (np.minimum(freq, 1 - freq) >= 0.1)
    clean = small_genotypes[:, common][:, :100]
    monomorphic = np.zeros((40, 1))
    rare = np.zeros((40, 1))
    rare[0] = 1  # MAF 1/80 < 0.05
    gappy = clean[:, :1].copy()
    gappy[:8] = np.nan  # 20% missing > 5%
    bfile = write_bfile(tmp_path / "filters", np.hstack([monomorphic, clean, rare, gappy]))
    clean_bfile = write_bfile(tmp_path / "clean", clean)

    res = compute_genotype_pcs(bfile, n_pcs=3, min_maf=0.05, max_missing=0.05, chunk_snps=40)
    ref = compute_genotype_pcs(clean_bfile, n_pcs=3, min_maf=0.05, max_missing=0.05)

    assert res.n_snps_total == 103
    assert res.n_snps_used == ref.n_snps_used == 100
    assert res.params["n_snps_failed_maf"] == 2
    assert res.params["n_snps_failed_missing"] == 1
    assert_same_up_to_sign(res.scores.to_numpy(), ref.scores.to_numpy(), rtol=1e-6)


def test_logs_start_and_finish(small_bfile, caplog):
    with caplog.at_level(logging.DEBUG, logger="nam_core.inputs.genotypes"):
        compute_genotype_pcs(small_bfile, n_pcs=2, chunk_snps=100)
    messages = [r.getMessage() for r in caplog.records]
    assert any("start" in m and "40 individuals x 300 SNPs" in m for m in messages)
    assert any("done in" in m and "SNPs used" in m for m in messages)
    assert sum(r.levelno == logging.DEBUG and "block" in r.getMessage() for r in caplog.records) == 3


def test_read_fam_columns(small_bfile):
    fam = read_fam(small_bfile)
    assert list(fam.columns) == ["fid", "iid", "father", "mother", "sex", "phenotype"]
    assert fam["iid"].tolist()[:2] == ["ind0", "ind1"]
    assert fam["phenotype"].iloc[0] == "-9"


# ----------------------------------------------------------------------------- bad input


def raises_naming(path: Path | str, *more: str):
    """pytest.raises(NAMInputError) whose message names ``path`` and contains ``more``."""
    pattern = "(?s)" + "".join(f"(?=.*{re.escape(str(part))})" for part in (path, *more))
    return pytest.raises(NAMInputError, match=pattern)


@pytest.mark.parametrize("ext", ["bed", "bim", "fam"])
def test_missing_file(copied_bfile, ext):
    os.remove(f"{copied_bfile}.{ext}")
    with raises_naming(f"{copied_bfile}.{ext}", "not found"):
        validate_plink(copied_bfile)
    with raises_naming(f"{copied_bfile}.{ext}"):
        compute_genotype_pcs(copied_bfile, n_pcs=2)


def test_prefix_with_extension_gets_a_hint(copied_bfile):
    with raises_naming(f"{copied_bfile}.bed.bed", "without extension"):
        validate_plink(f"{copied_bfile}.bed")


def test_wrong_magic_bytes(copied_bfile):
    bed = Path(f"{copied_bfile}.bed")
    data = bytearray(bed.read_bytes())
    data[:3] = b"BED"
    bed.write_bytes(bytes(data))
    with raises_naming(bed, "not a PLINK 1 .bed"):
        validate_plink(copied_bfile)


def test_individual_major_bed_is_refused(tmp_path, small_genotypes):
    bfile = write_bfile(tmp_path / "sample_major", small_genotypes, major="sample")
    with raises_naming(f"{bfile}.bed", "individual-major"):
        compute_genotype_pcs(bfile, n_pcs=2)


@pytest.mark.parametrize(("cut", "says"), [(10, "holds 299 SNPs"), (5, "truncated")])
def test_truncated_bed(copied_bfile, cut, says):
    bed = Path(f"{copied_bfile}.bed")
    bed.write_bytes(bed.read_bytes()[:-cut])
    with raises_naming(bed, "lists 300 SNPs", says):
        validate_plink(copied_bfile)
    with raises_naming(bed):
        compute_genotype_pcs(copied_bfile, n_pcs=2)


def test_bim_with_an_extra_snp(copied_bfile):
    bim = Path(f"{copied_bfile}.bim")
    bim.write_text(bim.read_text() + "1\trs_extra\t0\t999\tA\tG\n")
    with raises_naming(bim, "lists 301 SNPs", "holds 300 SNPs"):
        validate_plink(copied_bfile)


def test_fam_with_an_extra_individual(copied_bfile):
    fam = Path(f"{copied_bfile}.fam")
    fam.write_text(fam.read_text() + "famX indX 0 0 0 -9\n")
    with raises_naming(fam, "41 individuals", "37-40 individuals"):
        validate_plink(copied_bfile)


def test_fam_with_wrong_column_count(copied_bfile):
    fam = Path(f"{copied_bfile}.fam")
    lines = fam.read_text().splitlines()
    fam.write_text("\n".join(" ".join(line.split()[:5]) for line in lines) + "\n")
    with raises_naming(fam, "5 columns"):
        validate_plink(copied_bfile)


def test_duplicate_iids_are_named(copied_bfile):
    fam = Path(f"{copied_bfile}.fam")
    lines = fam.read_text().splitlines()
    lines[5] = lines[5].replace("ind5", "ind2")
    fam.write_text("\n".join(lines) + "\n")
    with raises_naming(fam, "duplicate IIDs: ind2"):
        validate_plink(copied_bfile)
    with raises_naming(fam, "ind2"):
        compute_genotype_pcs(copied_bfile, n_pcs=2)


def test_too_few_individuals_for_n_pcs(copied_bfile):
    with raises_naming(f"{copied_bfile}.fam", "40 individuals", "at least 41"):
        compute_genotype_pcs(copied_bfile, n_pcs=40)
    validate_plink(copied_bfile)  # fine without n_pcs
    with raises_naming(f"{copied_bfile}.fam"):
        validate_plink(copied_bfile, n_pcs=40)


def test_no_snp_passes_filters(tmp_path):
    genotypes = np.zeros((20, 30))
    genotypes[:, ::2] = 2.0  # every SNP monomorphic
    bfile = write_bfile(tmp_path / "flat", genotypes)
    validate_plink(bfile)
    with raises_naming(f"{bfile}.bed", "0 of the 30 SNPs", "30 fail"):
        compute_genotype_pcs(bfile, n_pcs=2)


@pytest.mark.parametrize(
    "kwargs", [{"n_pcs": 0}, {"min_maf": 0.6}, {"max_missing": -0.1}, {"chunk_snps": 0}]
)
def test_bad_arguments(small_bfile, kwargs):
    with pytest.raises(NAMInputError, match=next(iter(kwargs))):
        compute_genotype_pcs(small_bfile, **kwargs)


def test_malformed_bim_line_past_the_first(copied_bfile):
    bim = Path(f"{copied_bfile}.bim")
    lines = bim.read_text().splitlines()
    lines[10] += "\textra_field"
    bim.write_text("\n".join(lines) + "\n")
    with raises_naming(bim):
        compute_genotype_pcs(copied_bfile, n_pcs=2)


def test_path_with_glob_characters(tmp_path, small_genotypes):
    bfile = write_bfile(tmp_path / "cohort[1]" / "data*", small_genotypes)
    res = compute_genotype_pcs(bfile, n_pcs=2)
    assert res.scores.shape == (40, 2)


@pytest.mark.parametrize(
    ("edit", "line", "fields"),
    [("drop_allele", 11, 5), ("blank", 11, 0), ("last_without_newline_short", 300, 5)],
)
def test_bim_line_with_wrong_field_count_is_named(copied_bfile, edit, line, fields):
    """A .bim line with 5 fields (or none) fails naming the file, the line and the count."""
    bim = Path(f"{copied_bfile}.bim")
    lines = bim.read_text().splitlines()
    if edit == "drop_allele":
        lines[10] = lines[10].rsplit("\t", 1)[0]
        text = "\n".join(lines) + "\n"
    elif edit == "blank":
        text = "\n".join(lines[:10] + [""] + lines[10:]) + "\n"
    else:
        lines[-1] = lines[-1].rsplit("\t", 1)[0]
        text = "\n".join(lines)
    bim.write_text(text)
    with raises_naming(bim, f"line {line} has {fields} fields; expected 6"):
        validate_plink(copied_bfile)


@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_bim_field_check_across_block_boundaries(tmp_path, block_bytes):
    from nam_core.inputs.genotypes.text_fields import count_lines_and_check_fields

    good = "".join(f"1 rs{i}\t0  {i}\tA\tG\r\n" for i in range(50))
    path = tmp_path / "x.bim"
    path.write_text(good)
    assert count_lines_and_check_fields(path, 6, block_bytes) == (50, None)
    path.write_text(good + "1 rs50 0 50 A")
    assert count_lines_and_check_fields(path, 6, block_bytes) == (51, (51, 5))
    path.write_text(good[:-6] + "\n" + good[-6:])  # the last line split in two
    n, bad = count_lines_and_check_fields(path, 6, block_bytes)
    assert bad is not None and bad[0] == 50
