"""Reading and validating PLINK 1 binary filesets (.bed/.bim/.fam) before any long computation.

:func:`validate_plink` checks the three files against each other (magic bytes, mode, sizes,
duplicated IIDs) and, with ``scan``, reads the genotype codes once in blocks (:func:`scan_bed`)
to catch a .fam that is a few lines off from its .bed.
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

from ...errors import NAMInputError
from .snps import SnpStats, snp_filter
from .text_fields import count_lines_and_check_fields

__all__ = [
    "BedScan", "PlinkSummary", "plink_paths", "read_fam", "scan_bed", "validate_plink",
    "validated_fam",
]

logger = logging.getLogger(__name__)


BED_MAGIC = b"\x6c\x1b"
"""First two bytes of every PLINK 1 .bed file."""

FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "phenotype"]


def plink_paths(bfile: str | os.PathLike) -> dict[str, Path]:
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
    fam = plink_paths(bfile)["fam"]
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
    except UnicodeDecodeError as err:
        raise NAMInputError(
            f"PLINK .fam file {fam} is not text (byte {err.start} is not UTF-8): the file is "
            "damaged"
        ) from None
    if df.shape[1] != len(FAM_COLUMNS):
        raise NAMInputError(
            f"PLINK .fam file {fam} has {df.shape[1]} columns; expected 6 "
            "(FID IID father mother sex phenotype)"
        )
    df.columns = FAM_COLUMNS
    return df


def _check_bim(bim: Path) -> int:
    """Check every line of the .bim has 6 fields and return its number of SNPs."""
    with open(bim, "rb") as handle:
        first = handle.readline().split()
    if not first:
        raise NAMInputError(f"PLINK .bim file {bim} is empty: it lists no SNPs")
    if len(first) != 6:
        raise NAMInputError(
            f"PLINK .bim file {bim} has {len(first)} columns on its first line; expected 6 "
            "(chromosome SNP cM position allele1 allele2)"
        )
    n_lines, bad = count_lines_and_check_fields(bim, 6)
    if bad is not None:
        raise NAMInputError(
            f"PLINK .bim file {bim} line {bad[0]} has {bad[1]} fields; expected 6 (chromosome "
            "SNP cM position allele1 allele2): the file is damaged, rewrite it with plink "
            "--make-bed"
        )
    return n_lines


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
                stats = SnpStats(freq, 1.0 - called / (2.0 * n_individuals), None)
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
    fam, n_snps = validated_fam(bfile, n_pcs)
    paths = plink_paths(bfile)
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


def validated_fam(bfile: str | os.PathLike, n_pcs: int | None) -> tuple[pd.DataFrame, int]:
    """Run the file-level checks of :func:`validate_plink`; the .fam (J, 6) and SNP count."""
    paths = plink_paths(bfile)
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

