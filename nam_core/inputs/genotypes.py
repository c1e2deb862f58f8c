"""Genotype principal components from PLINK 1 binary files (.bed/.bim/.fam).

The genotype matrix is read through pandas-plink as a lazy dask array and streamed in blocks of
SNPs, so the (individuals x SNPs) matrix is never held in memory. For each block the SNPs are
filtered (minor allele frequency, missingness), missing genotypes are mean-imputed and every SNP
is standardised as ``plink2 --pca`` does, ``z = (g - 2f) / sqrt(2f(1-f))``. The J x J matrix
``Z Z^T`` is summed over the blocks and its leading eigenvectors are the principal components.

Why the exact J x J route rather than randomized PCA: with J individuals and M SNPs, one pass
over the file costs J^2 M / 2 multiply-adds in a single symmetric BLAS call per block (``syrk``),
and the eigenproblem afterwards is J x J. For J up to a few thousand this is cheaper than the
several passes (each one decoding the whole .bed again) that a randomized SVD needs, and it is
exact: no oversampling, power iterations or seed to tune. It is also what ``plink2 --pca`` does
for fewer than 5,000 samples (its "exact" mode). Without missing calls the eigenvalues and
eigenvectors agree with plink2's to its printed precision; with missing calls plink2 also rescales
each relationship entry by the number of SNPs both individuals have called, where we mean-impute,
so the PCs differ slightly (correlation > 0.999 at 1% missing calls).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = [
    "BedScan", "GenotypePCs", "PlinkSummary", "compute_genotype_pcs", "read_fam", "scan_bed",
    "validate_plink",
]

logger = logging.getLogger(__name__)

BED_MAGIC = b"\x6c\x1b"
"""First two bytes of every PLINK 1 .bed file."""

FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "phenotype"]


@dataclasses.dataclass
class GenotypePCs:
    """Principal components of a genotype matrix, with the counts that produced them.

    Attributes
    ----------
    scores : pandas.DataFrame (J, n_pcs)
        Principal-component scores ``U * s`` (as ``sklearn.decomposition.PCA.fit_transform`` and
        :func:`nam_core.study.simulate.genotype_pcs` return them): the projections of the standardised
        genotypes on the SNP-space principal axes. Index named ``"individual"`` holding the IIDs
        of the .fam (str), columns ``"PC1".."PCn"``, float64. Each column is proportional to the
        matching plink2 eigenvector (unit norm); the sign is fixed so that the entry of largest
        magnitude is positive.
    eigenvalues : ndarray (n_pcs,)
        Leading eigenvalues of the genetic relationship matrix ``Z Z^T / M`` (M = SNPs used), in
        decreasing order; the same numbers as plink2's ``.eigenval``.
    explained_variance_ratio : ndarray (n_pcs,)
        Share of the total standardised-genotype variance carried by each PC:
        ``eigenvalues / trace(Z Z^T / M)``.
    n_snps_total : int
        SNPs in the .bim.
    n_snps_used : int
        SNPs that passed both filters.
    n_individuals : int
        Individuals J in the .fam.
    params : dict
        Arguments of the call that produced this result (bfile, n_pcs, filters, chunk size, seed)
        and the number of SNPs dropped by each filter.
    """

    scores: pd.DataFrame
    eigenvalues: np.ndarray
    explained_variance_ratio: np.ndarray
    n_snps_total: int
    n_snps_used: int
    n_individuals: int
    params: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _SnpStats:
    """Per-SNP summaries of one block, before filtering.

    Attributes
    ----------
    freq : ndarray (c,)
        Frequency f of the counted allele among non-missing calls (NaN if all are missing).
    missing_fraction : ndarray (c,)
        Fraction of individuals with a missing call.
    missing : ndarray (c, J) of bool, or None
        Where the calls are missing; None if no call of the block is missing.
    """

    freq: np.ndarray
    missing_fraction: np.ndarray
    missing: np.ndarray | None


def _plink_paths(bfile: str | os.PathLike) -> dict[str, Path]:
    """The .bed, .bim and .fam paths of a PLINK prefix, keyed by extension."""
    prefix = os.fspath(bfile)
    return {ext: Path(f"{prefix}.{ext}") for ext in ("bed", "bim", "fam")}


def read_fam(bfile: str | os.PathLike) -> pd.DataFrame:
    """Read the .fam file of a PLINK 1 fileset.

    Parameters
    ----------
    bfile : str or path
        Fileset prefix, without extension (``"data/cohort"`` for ``data/cohort.fam``).

    Returns
    -------
    pandas.DataFrame (J, 6)
        Columns ``fid, iid, father, mother, sex, phenotype``, all kept as str exactly as written
        (so ``"NA"`` or ``"-9"`` phenotypes and ``"0"`` parents survive untouched).

    Raises
    ------
    NAMInputError
        If the file is missing, empty, or a line does not have 6 whitespace-separated fields.
    """
    fam = _plink_paths(bfile)["fam"]
    if not fam.is_file():
        raise NAMInputError(f"PLINK .fam file {fam} not found")
    try:
        df = pd.read_csv(
            fam, sep=r"\s+", header=None, dtype=str, keep_default_na=False, engine="c"
        )
    except pd.errors.EmptyDataError:
        raise NAMInputError(f"PLINK .fam file {fam} is empty: it lists no individuals") from None
    except pd.errors.ParserError as err:
        raise NAMInputError(f"PLINK .fam file {fam} is malformed: {err}") from None
    if df.shape[1] != len(FAM_COLUMNS):
        raise NAMInputError(
            f"PLINK .fam file {fam} has {df.shape[1]} columns; expected 6 "
            "(FID IID father mother sex phenotype)"
        )
    df.columns = FAM_COLUMNS
    return df


def _count_lines(path: Path, block_bytes: int = 1 << 24) -> int:
    """Number of non-empty lines of a text file, counted in blocks (the .bim can be GBs)."""
    n_lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(block_bytes):
            n_lines += block.count(b"\n")
            last = block[-1:]
    return n_lines + (last != b"\n")


def _check_bim(bim: Path) -> int:
    """Check the first line of the .bim has 6 fields and return its number of SNPs."""
    with open(bim, "rb") as handle:
        first = handle.readline().split()
    if not first:
        raise NAMInputError(f"PLINK .bim file {bim} is empty: it lists no SNPs")
    if len(first) != 6:
        raise NAMInputError(
            f"PLINK .bim file {bim} has {len(first)} columns on its first line; expected 6 "
            "(chromosome SNP cM position allele1 allele2)"
        )
    return _count_lines(bim)


def _check_bed_header(bed: Path) -> None:
    """Check the magic bytes and the SNP-major mode byte of a .bed file."""
    with open(bed, "rb") as handle:
        header = handle.read(3)
    if len(header) < 3 or header[:2] != BED_MAGIC:
        raise NAMInputError(
            f"{bed} is not a PLINK 1 .bed file: its first bytes are {header.hex() or 'missing'}, "
            f"expected 6c1b01"
        )
    if header[2] == 0:
        raise NAMInputError(
            f"{bed} is an individual-major PLINK .bed (mode byte 00), which is not supported; "
            "convert it with `plink2 --bfile PREFIX --make-bed --out NEW`"
        )
    if header[2] != 1:
        raise NAMInputError(f"{bed} has an unknown PLINK .bed mode byte {header[2]:02x}")


def _bed_size_problem(paths: dict[str, Path], n_individuals: int, n_snps: int) -> str | None:
    """Why the .bed size disagrees with the .fam and .bim counts, or None if it matches."""
    bytes_per_snp = math.ceil(n_individuals / 4)
    expected = 3 + n_snps * bytes_per_snp
    size = paths["bed"].stat().st_size
    if size == expected:
        return None
    bed, bim, fam = paths["bed"], paths["bim"], paths["fam"]
    body = size - 3
    head = (
        f"{bed} has {size} bytes, but {fam} lists {n_individuals} individuals and {bim} lists "
        f"{n_snps} SNPs, which need 3 + {n_snps} x {bytes_per_snp} = {expected} bytes"
    )
    if body % bytes_per_snp == 0:
        held = body // bytes_per_snp
        hint = "truncated .bed" if held < n_snps else ".bed longer than the .bim"
        return (
            f"{head}: the .bed holds {held} SNPs for {n_individuals} individuals, the .bim "
            f"lists {n_snps} ({hint}, or .bim from another fileset)"
        )
    if n_snps and body % n_snps == 0:
        per_snp = body // n_snps
        return (
            f"{head}: the .bed holds {per_snp} bytes per SNP, i.e. {4 * per_snp - 3}-"
            f"{4 * per_snp} individuals, the .fam lists {n_individuals} "
            "(.fam from another fileset?)"
        )
    return f"{head}: the .bed is truncated or does not belong with this .bim/.fam"


def _check_unique_iids(fam_path: Path, iids: pd.Series) -> None:
    """Raise if an IID occurs more than once, naming (up to 10 of) the repeated IIDs."""
    repeated = iids[iids.duplicated()].unique()
    if repeated.size:
        shown = ", ".join(map(str, repeated[:10])) + (" ..." if repeated.size > 10 else "")
        raise NAMInputError(
            f"PLINK .fam file {fam_path} has {repeated.size} duplicate IIDs: {shown}; "
            "individual IDs (column 2) must be unique"
        )


@dataclasses.dataclass
class BedScan:
    """What one pass over the genotype codes of a .bed found (see :func:`scan_bed`).

    Attributes
    ----------
    n_snps : int
        SNPs scanned (M).
    n_missing : ndarray (J,) of int64
        Missing calls (code 01) of each .fam individual.
    n_hom_first : ndarray (J,) of int64
        Calls homozygous for the first .bim allele (code 00) of each .fam individual.
    log_max_chance_all_hom_first : float
        Natural log of an upper bound on the chance that one real individual is homozygous for
        the first allele at every SNP: ``sum_m log f_m`` with ``f_m`` the first allele's
        frequency among the calls of SNP m (``P(00) = f^2 + F f (1 - f) <= f`` whatever the
        inbreeding F). 0 when every SNP is monomorphic for the first allele.
    n_snps_bad_padding : int
        SNPs whose last byte has non-zero bits past the last .fam individual.
    n_snps_passing : int
        SNPs that pass the filters of :func:`snp_filter` (MAF and missingness), as the genotype
        PCs will use them; -1 when the scan was not given the filters.
    """

    n_snps: int
    n_missing: np.ndarray
    n_hom_first: np.ndarray
    log_max_chance_all_hom_first: float
    n_snps_bad_padding: int
    n_snps_passing: int = -1


@dataclasses.dataclass
class PlinkSummary:
    """A validated PLINK 1 fileset (see :func:`validate_plink`).

    Attributes
    ----------
    fam : pandas.DataFrame (J, 6)
        The .fam table, as :func:`read_fam` returns it.
    n_snps : int
        SNPs in the .bim (= SNPs in the .bed).
    uncalled : list of str
        IIDs whose every genotype call is missing (empty when the genotypes were not scanned).
    """

    fam: pd.DataFrame
    n_snps: int
    uncalled: list[str] = dataclasses.field(default_factory=list)


FALSE_ALARM_RATE = 1e-6
"""Largest chance, for a whole cohort of real individuals, that the all-homozygous check of
:func:`validate_plink` fires: the check uses a bound valid even for fully inbred individuals."""


def _code_table() -> np.ndarray:
    """(256, 4) uint8: the four 2-bit genotype codes of each .bed byte, lowest bits first."""
    byte = np.arange(256, dtype=np.uint8)[:, None]
    return (byte >> (2 * np.arange(4, dtype=np.uint8))) & 3


_CODES = _code_table()


def scan_bed(
    bed: Path,
    n_individuals: int,
    n_snps: int,
    chunk_snps: int = 20_000,
    filters: tuple[float, float] | None = None,
) -> BedScan:
    """Count missing and first-allele-homozygous calls of each individual, block by block.

    Reads the .bed ``chunk_snps`` SNPs at a time (``chunk_snps * ceil(J / 4)`` bytes, decoded to
    4 times that), never whole. The .bed size must already match J and M.

    Parameters
    ----------
    bed : Path
        SNP-major PLINK 1 .bed whose header has been checked.
    n_individuals : int
        J, the .fam line count.
    n_snps : int
        M, the .bim line count.
    chunk_snps : int
        SNPs per block.
    filters : (min_maf, max_missing), optional
        Also count the SNPs that pass these filters (:func:`snp_filter`).

    Returns
    -------
    BedScan
    """
    bytes_per_snp = math.ceil(n_individuals / 4)
    padded = n_individuals % 4
    pad_mask = np.uint8((0xFF << (2 * padded)) & 0xFF) if padded else np.uint8(0)
    n_missing = np.zeros(n_individuals, dtype=np.int64)
    n_hom_first = np.zeros(n_individuals, dtype=np.int64)
    log_chance = 0.0
    bad_padding = 0
    passing = 0 if filters else -1
    with open(bed, "rb") as handle:
        handle.seek(3)
        for start in range(0, n_snps, chunk_snps):
            count = min(chunk_snps, n_snps - start)
            raw = np.frombuffer(handle.read(count * bytes_per_snp), dtype=np.uint8)
            raw = raw.reshape(count, bytes_per_snp)
            if padded:
                bad_padding += int(np.count_nonzero(raw[:, -1] & pad_mask))
            codes = _CODES[raw].reshape(count, 4 * bytes_per_snp)[:, :n_individuals]
            hom_first = codes == 0
            missing = codes == 1
            n_hom_first += hom_first.sum(axis=0)
            n_missing += missing.sum(axis=0)
            called = 2 * (n_individuals - missing.sum(axis=1))
            first = 2 * hom_first.sum(axis=1) + (codes == 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_chance += float(np.log(first[called > 0] / called[called > 0]).sum())
                freq = first / called  # NaN where every call is missing
            if filters:
                stats = _SnpStats(freq, 1.0 - called / (2.0 * n_individuals), None)
                passing += int(snp_filter(stats, *filters)[0].sum())
    return BedScan(n_snps, n_missing, n_hom_first, log_chance, bad_padding, passing)


def _check_scan(paths: dict[str, Path], fam: pd.DataFrame, scan: BedScan) -> list[str]:
    """Raise for a .fam that does not line up with the .bed; return the uncalled IIDs."""
    bed, fam_path = paths["bed"], paths["fam"]
    if scan.n_snps_bad_padding:
        raise NAMInputError(
            f"{bed}: the last byte of {scan.n_snps_bad_padding} of its {scan.n_snps} SNPs holds "
            f"genotypes past the {len(fam)} individuals of {fam_path} (PLINK writes zeros "
            "there): the .bed has 1-3 more individuals than the .fam lists. The .fam is "
            "missing lines or comes from another fileset; every IID after the first missing "
            "line would get its neighbour's genotypes"
        )
    all_hom = scan.n_hom_first == scan.n_snps
    expected_false = len(fam) * math.exp(scan.log_max_chance_all_hom_first)
    if scan.n_snps and all_hom.any() and expected_false < FALSE_ALARM_RATE:
        iids = fam["iid"].to_numpy()[all_hom]
        lines = np.flatnonzero(all_hom) + 1
        shown = ", ".join(f"{iid} (line {line})" for iid, line in zip(iids[:10], lines[:10], strict=True))
        raise NAMInputError(
            f"{fam_path}: {all_hom.sum()} individuals read from {bed} as homozygous for the "
            f"first allele at every one of its {scan.n_snps} SNPs, which a real individual "
            f"is not (chance below {expected_false:.1e} for this cohort): {shown}. This is "
            "what lines past the end of the .bed read as (PLINK pads each SNP's last byte "
            "with zeros): the .fam has more lines than the .bed has individuals, or comes "
            "from another fileset"
        )
    uncalled = fam["iid"].to_numpy()[scan.n_missing == scan.n_snps].tolist()
    if uncalled:
        logger.warning(
            "%s: %d individuals have no genotype call at all (every SNP missing in %s): %s; "
            "they cannot be placed by genotype and are treated as not genotyped",
            fam_path, len(uncalled), bed, ", ".join(uncalled[:20])
            + (f" (and {len(uncalled) - 20} more)" if len(uncalled) > 20 else ""),
        )
    return uncalled


def validate_plink(
    bfile: str | os.PathLike,
    n_pcs: int | None = None,
    *,
    scan: bool = True,
    chunk_snps: int = 20_000,
    min_maf: float | None = None,
    max_missing: float | None = None,
) -> PlinkSummary:
    """Check a PLINK 1 fileset before any long computation.

    Reads the .fam, the .bim's first line and line count, the .bed header and size, and (with
    ``scan``) the genotype codes of the .bed in blocks of ``chunk_snps`` SNPs.

    The scan catches a .fam that is 1-3 lines off from its .bed, which the size check cannot
    see unless the count crosses a 4-individual byte boundary: PLINK writes the bits past the
    last individual of each SNP's last byte as zero, so non-zero bits there mean the .bed holds
    more individuals than the .fam lists; and a .fam line past the end of the .bed reads those
    zero bits, i.e. homozygous for the first allele at every SNP. Such an individual is an
    error when even a fully inbred real individual would be homozygous at every SNP with a
    chance below :data:`FALSE_ALARM_RATE` for the whole cohort (so monomorphic data, where
    everyone is, pass). Individuals with every call missing are named in a warning.

    Parameters
    ----------
    bfile : str or path
        Fileset prefix, without extension (``"data/cohort"`` for ``data/cohort.bed/.bim/.fam``).
    n_pcs : int, optional
        If given, also require at least ``n_pcs + 1`` individuals.
    scan : bool
        Read the genotype codes (one pass over the .bed: 2.4 s for 10^8 genotypes, 0.21 of
        the time of the genotype PCs, ``benchmarks/bench_bed_scan.py``).
    chunk_snps : int
        SNPs per block of the scan.
    min_maf, max_missing : float, optional
        The SNP filters of the genotype PCs (:func:`compute_genotype_pcs`); when both are given
        with ``n_pcs``, the scan also requires at least ``n_pcs`` SNPs to pass them.

    Returns
    -------
    PlinkSummary
        The .fam table, the SNP count and the IIDs with no genotype call.

    Raises
    ------
    NAMInputError
        Naming the file at fault, if a file is missing, the .bed magic bytes are wrong, the .bed
        size is not ``3 + n_snps * ceil(n_individuals / 4)`` (truncated, or .bim/.fam from
        another fileset: the message says which counts disagree), the .bed holds individuals
        past the end of the .fam, .fam lines read as homozygous at every SNP, an IID is
        duplicated, or there are too few individuals (or passing SNPs) for ``n_pcs``.
    """
    fam, n_snps = _validated_fam(bfile, n_pcs)
    paths = _plink_paths(bfile)
    uncalled = []
    if scan:
        tic = time.perf_counter()
        filters = None if min_maf is None or max_missing is None else (min_maf, max_missing)
        result = scan_bed(paths["bed"], len(fam), n_snps, chunk_snps, filters)
        uncalled = _check_scan(paths, fam, result)
        if filters and n_pcs is not None and result.n_snps_passing < n_pcs:
            raise NAMInputError(
                f"{result.n_snps_passing} of the {n_snps} SNPs in {paths['bed']} pass the "
                f"filters (MAF >= {min_maf}, missing fraction <= {max_missing}); {n_pcs} PCs "
                f"need at least {n_pcs} SNPs"
            )
        logger.info(
            "scanned %s: %d individuals x %d SNPs in %.1f s, %.3f%% of calls missing",
            paths["bed"], len(fam), n_snps, time.perf_counter() - tic,
            100.0 * result.n_missing.sum() / max(1, len(fam) * n_snps),
        )
    return PlinkSummary(fam=fam, n_snps=n_snps, uncalled=uncalled)


def _validated_fam(bfile: str | os.PathLike, n_pcs: int | None) -> tuple[pd.DataFrame, int]:
    """Run the file-level checks of :func:`validate_plink`; the .fam (J, 6) and SNP count."""
    paths = _plink_paths(bfile)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        hint = ""
        if os.fspath(bfile).endswith((".bed", ".bim", ".fam")):
            hint = f"; give the prefix without extension, e.g. {os.fspath(bfile)[:-4]!r}"
        raise NAMInputError(
            f"PLINK file(s) not found: {', '.join(missing)} "
            f"(prefix {os.fspath(bfile)!r} needs .bed, .bim and .fam){hint}"
        )
    _check_bed_header(paths["bed"])
    fam = read_fam(bfile)
    n_snps = _check_bim(paths["bim"])
    problem = _bed_size_problem(paths, len(fam), n_snps)
    if problem:
        raise NAMInputError(problem)
    _check_unique_iids(paths["fam"], fam["iid"])
    if n_pcs is not None and len(fam) < n_pcs + 1:
        raise NAMInputError(
            f"PLINK .fam file {paths['fam']} lists {len(fam)} individuals; "
            f"{n_pcs} PCs need at least {n_pcs + 1}"
        )
    return fam, n_snps


def _check_arguments(n_pcs: int, min_maf: float, max_missing: float, chunk_snps: int) -> None:
    """Raise NAMInputError for out-of-range arguments of :func:`compute_genotype_pcs`."""
    if int(n_pcs) != n_pcs or n_pcs < 1:
        raise NAMInputError(f"n_pcs must be a positive integer, got {n_pcs!r}")
    if not 0.0 <= min_maf <= 0.5:
        raise NAMInputError(f"min_maf must lie in [0, 0.5], got {min_maf!r}")
    if not 0.0 <= max_missing <= 1.0:
        raise NAMInputError(f"max_missing must lie in [0, 1], got {max_missing!r}")
    if int(chunk_snps) != chunk_snps or chunk_snps < 1:
        raise NAMInputError(f"chunk_snps must be a positive integer, got {chunk_snps!r}")


def _open_variant_major(paths: dict[str, Path], chunk_snps: int):
    """Lazy (M, J) float32 dask array of allele counts (NaN = missing), one block per chunk.

    pandas-plink returns (J, M); its transpose is SNP-major, which is the .bed layout, so each
    block computes to a C-contiguous (c, J) array without a transposing copy. Paths are passed
    as ``Path`` objects, which pandas-plink does not expand as glob patterns.
    """
    from pandas_plink import Chunk, read_plink1_bin

    try:
        genotypes = read_plink1_bin(
            paths["bed"].absolute(),
            paths["bim"].absolute(),
            paths["fam"].absolute(),
            verbose=False,
            chunk=Chunk(nsamples=None, nvariants=chunk_snps),
        )
    except ValueError as err:  # pandas ParserError (a ValueError) on a malformed .bim line
        raise NAMInputError(
            f"pandas-plink could not read {paths['bim']} / {paths['fam']}: {err}"
        ) from err
    return genotypes.data.T


def snp_stats(block: np.ndarray) -> _SnpStats:
    """Allele frequency and missingness of each SNP of a block; zeroes the missing calls.

    Parameters
    ----------
    block : ndarray (c, J) of float32
        Allele counts 0, 1, 2 with NaN for missing calls; overwritten: NaN become 0.

    Returns
    -------
    _SnpStats
        Frequencies (c,), missing fractions (c,) and the (c, J) missingness mask (None if
        nothing is missing).
    """
    missing = np.isnan(block)
    n_missing = missing.sum(axis=1)
    if n_missing.any():
        np.copyto(block, 0.0, where=missing)
    else:
        missing = None
    n_called = block.shape[1] - n_missing
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = block.sum(axis=1, dtype=np.float64) / (2.0 * n_called)
    return _SnpStats(freq=freq, missing_fraction=n_missing / block.shape[1], missing=missing)


def snp_filter(stats: _SnpStats, min_maf: float, max_missing: float) -> tuple[np.ndarray, ...]:
    """SNPs that pass the filters.

    Parameters
    ----------
    stats : _SnpStats
        Summaries of a block of c SNPs.
    min_maf : float
        Keep SNPs with minor allele frequency ``min(f, 1-f) >= min_maf``; monomorphic SNPs are
        always dropped (they have no variance to standardise).
    max_missing : float
        Keep SNPs with missing fraction ``<= max_missing``.

    Returns
    -------
    keep : ndarray (c,) of bool
        SNPs passing both filters.
    fail_maf, fail_missing : ndarray (c,) of bool
        SNPs failing each filter (a SNP may fail both; one with every call missing fails both).
    """
    with np.errstate(invalid="ignore"):
        maf = np.minimum(stats.freq, 1.0 - stats.freq)
        fail_maf = ~((maf >= min_maf) & (maf > 0.0))
    fail_missing = ~(stats.missing_fraction <= max_missing)
    return ~(fail_maf | fail_missing), fail_maf, fail_missing


def standardise(block: np.ndarray, freq: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Standardise SNPs in place as plink2 does, with mean imputation of missing calls.

    Parameters
    ----------
    block : ndarray (c, J) of float32
        Allele counts of kept SNPs, missing calls already zeroed; overwritten.
    freq : ndarray (c,)
        Allele frequency f of each SNP, strictly inside (0, 1).
    missing : ndarray (c, J) of bool, or None
        Missing calls; they are set to 0, the standardised value of the mean ``2f``.

    Returns
    -------
    ndarray (c, J) of float32
        ``(g - 2f) / sqrt(2f(1-f))``, the same array as ``block``.
    """
    centre = (2.0 * freq).astype(np.float32)[:, None]
    scale = (1.0 / np.sqrt(2.0 * freq * (1.0 - freq))).astype(np.float32)[:, None]
    block -= centre
    block *= scale
    if missing is not None:
        np.copyto(block, 0.0, where=missing)
    return block


def _accumulate_cross_product(
    blocks, n_individuals: int, min_maf: float, max_missing: float, bed: Path
) -> tuple[np.ndarray, dict[str, int]]:
    """Stream SNP blocks, filter and standardise them, and sum ``Z Z^T`` over blocks.

    Parameters
    ----------
    blocks : dask array (M, J) of float32
        SNP-major genotypes, chunked along SNPs.
    n_individuals : int
        J.
    min_maf, max_missing : float
        Filter thresholds (see :func:`snp_filter`).
    bed : Path
        For log messages.

    Returns
    -------
    cross : ndarray (J, J) of float64
        ``sum_blocks Z_b^T Z_b`` over the kept SNPs (each block product in float32 BLAS
        ``syrk``, summed across blocks in float64).
    counts : dict
        ``used``, ``failed_maf``, ``failed_missing`` SNP counts.
    """
    cross = np.zeros((n_individuals, n_individuals))
    counts = {"used": 0, "failed_maf": 0, "failed_missing": 0}
    n_blocks = len(blocks.chunks[0])
    start = 0
    for index in range(n_blocks):
        tic = time.perf_counter()
        block = np.asarray(blocks.blocks[index, 0].compute(scheduler="synchronous"))
        stats = snp_stats(block)
        keep, fail_maf, fail_missing = snp_filter(stats, min_maf, max_missing)
        counts["failed_maf"] += int(fail_maf.sum())
        counts["failed_missing"] += int(fail_missing.sum())
        n_keep = int(keep.sum())
        if n_keep:
            if n_keep < keep.size:
                block = block[keep]
                if stats.missing is not None:
                    stats.missing = stats.missing[keep]
            z = standardise(block, stats.freq[keep], stats.missing)
            cross += z.T @ z  # numpy calls BLAS syrk for a product with its own transpose
            counts["used"] += n_keep
        logger.debug(
            "%s: block %d/%d (SNPs %d-%d): %d kept, %.2f s",
            bed, index + 1, n_blocks, start, start + keep.size - 1, n_keep,
            time.perf_counter() - tic,
        )
        start += keep.size
    return cross, counts


def top_eigenpairs(cross: np.ndarray, n_pcs: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenpairs of a symmetric positive semi-definite matrix, with a fixed sign.

    Parameters
    ----------
    cross : ndarray (J, J)
        Symmetric matrix ``Z Z^T``.
    n_pcs : int
        Number of eigenpairs, at most J.

    Returns
    -------
    values : ndarray (n_pcs,)
        Eigenvalues in decreasing order, clipped at 0.
    vectors : ndarray (J, n_pcs)
        Unit eigenvectors; each flipped so that its entry of largest magnitude is positive.
    """
    # Full divide-and-conquer eigh (LAPACK syevd through numpy): 0.3 s at J = 1,000. Subset
    # solvers (MRRR, bisection) were slower and erratic on the tightly clustered spectra of
    # genotype GRMs, and would load scipy's second OpenBLAS thread pool.
    values, vectors = np.linalg.eigh(cross)
    values = np.clip(values[::-1][:n_pcs], 0.0, None)
    vectors = vectors[:, ::-1][:, :n_pcs].copy()
    largest = np.abs(vectors).argmax(axis=0)
    vectors *= np.sign(vectors[largest, np.arange(n_pcs)])
    return values, vectors


def compute_genotype_pcs(
    bfile: str | os.PathLike,
    n_pcs: int = 10,
    min_maf: float = 0.01,
    max_missing: float = 0.05,
    chunk_snps: int = 20_000,
    seed: int | None = 0,
) -> GenotypePCs:
    """Genotype principal components of a PLINK 1 fileset, streamed in blocks of SNPs.

    Method: SNPs are read ``chunk_snps`` at a time (a (chunk_snps, J) float32 block; 80 MB for
    J = 1,000 and the default). In each block, SNPs with minor allele frequency below
    ``min_maf`` (or monomorphic) or missing fraction above ``max_missing`` are dropped; the rest
    are standardised as plink2 does, ``z = (g - 2f) / sqrt(2f(1-f))`` with f the frequency
    among non-missing calls, and missing calls are imputed by the mean (z = 0). The J x J matrix
    ``Z Z^T`` is accumulated block by block (one BLAS ``syrk`` each); its top eigenvectors U and
    eigenvalues s^2 give the scores ``U s``. This is exact (the same eigenvectors as an SVD of
    the full standardised matrix), needs one pass over the .bed and O(J^2 + chunk_snps J)
    memory, and costs J^2 M / 2 multiply-adds (half a minute for J = 1,000, M = 10^6 on two
    cores, several times faster than ``plink2 --pca``). It matches ``plink2 --pca`` (its exact
    mode) up to the sign of each PC; see the module docstring for missing calls.

    Parameters
    ----------
    bfile : str or path
        Fileset prefix without extension (``"data/cohort"`` for ``data/cohort.bed/.bim/.fam``).
    n_pcs : int
        Number of PCs; needs at least ``n_pcs + 1`` individuals and ``n_pcs`` SNPs passing.
    min_maf : float
        Minimum minor allele frequency (``plink2 --maf``).
    max_missing : float
        Maximum fraction of missing calls per SNP (``plink2 --geno``).
    chunk_snps : int
        SNPs per block. Peak memory is about ``12 * chunk_snps * J`` bytes for a block, ``8 J^2``
        for ``Z Z^T`` and about 0.5 GB per million SNPs for pandas-plink's copy of the .bim
        (0.9 GB in all at J = 1,000, M = 10^6).
    seed : int or None
        Recorded in ``params``; the exact method draws no random numbers, so results do not
        depend on it.

    Returns
    -------
    GenotypePCs
        Scores (J, n_pcs) indexed by IID, eigenvalues of the GRM ``Z Z^T / M`` (as plink2's
        ``.eigenval``), explained variance ratios and SNP counts.

    Raises
    ------
    NAMInputError
        For any problem :func:`validate_plink` finds (before reading genotypes), for bad
        arguments, and if fewer than ``n_pcs`` SNPs (or none) pass the filters.

    Notes
    -----
    BLAS threads come from the numpy build (OpenBLAS uses all cores; limit them with
    ``threadpoolctl`` or ``OPENBLAS_NUM_THREADS``). pandas-plink's dask graph is computed with
    the synchronous scheduler, so no second thread pool competes with BLAS.
    """
    tic = time.perf_counter()
    _check_arguments(n_pcs, min_maf, max_missing, chunk_snps)
    fam, _ = _validated_fam(bfile, n_pcs)
    paths = _plink_paths(bfile)
    blocks = _open_variant_major(paths, chunk_snps)
    n_snps_total, n_individuals = blocks.shape
    logger.info(
        "genotype PCs of %s: start, %d individuals x %d SNPs in blocks of %d, %d PCs, "
        "MAF >= %g, missing <= %g",
        paths["bed"], n_individuals, n_snps_total, chunk_snps, n_pcs, min_maf, max_missing,
    )
    cross, counts = _accumulate_cross_product(
        blocks, n_individuals, min_maf, max_missing, paths["bed"]
    )
    n_used = counts["used"]
    if n_used < n_pcs:
        raise NAMInputError(
            f"{n_used} of the {n_snps_total} SNPs in {paths['bed']} pass the filters "
            f"(MAF >= {min_maf}: {counts['failed_maf']} fail; missing fraction <= "
            f"{max_missing}: {counts['failed_missing']} fail); {n_pcs} PCs need at least "
            f"{n_pcs} SNPs"
        )
    values, vectors = top_eigenpairs(cross, n_pcs)
    scores = pd.DataFrame(
        vectors * np.sqrt(values),
        index=pd.Index(fam["iid"].astype(str).to_numpy(), name="individual"),
        columns=[f"PC{k + 1}" for k in range(n_pcs)],
        dtype=np.float64,
    )
    result = GenotypePCs(
        scores=scores,
        eigenvalues=values / n_used,
        explained_variance_ratio=values / np.trace(cross),
        n_snps_total=int(n_snps_total),
        n_snps_used=int(n_used),
        n_individuals=int(n_individuals),
        params={
            "bfile": os.fspath(bfile), "n_pcs": int(n_pcs), "min_maf": float(min_maf),
            "max_missing": float(max_missing), "chunk_snps": int(chunk_snps), "seed": seed,
            "n_snps_failed_maf": counts["failed_maf"],
            "n_snps_failed_missing": counts["failed_missing"],
        },
    )
    logger.info(
        "genotype PCs of %s: done in %.1f s, %d of %d SNPs used (%d fail MAF, %d fail "
        "missingness), %d individuals, explained variance ratio of PC1-PC%d: %s",
        paths["bed"], time.perf_counter() - tic, n_used, n_snps_total, counts["failed_maf"],
        counts["failed_missing"], n_individuals, n_pcs,
        np.array2string(result.explained_variance_ratio, precision=4),
    )
    return result
