"""Per-SNP summaries, filters and standardisation of a block of genotypes.

The validation scan (:mod:`.plink`) and the genotype PCs (:mod:`.pcs`) count the same SNPs as
passing: both call :func:`snp_filter` on the summaries of :func:`snp_stats`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["SnpStats", "snp_filter", "snp_stats", "standardise"]


@dataclasses.dataclass
class SnpStats:
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


def snp_stats(block: np.ndarray) -> SnpStats:
    """Allele frequency and missingness of each SNP of a block; zeroes the missing calls.

    Parameters
    ----------
    block : ndarray (c, J) of float32
        Allele counts 0, 1, 2 with NaN for missing calls; overwritten: NaN become 0.

    Returns
    -------
    SnpStats
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
    return SnpStats(freq=freq, missing_fraction=n_missing / block.shape[1], missing=missing)


def snp_filter(stats: SnpStats, min_maf: float, max_missing: float) -> tuple[np.ndarray, ...]:
    """SNPs that pass the filters.

    Parameters
    ----------
    stats : SnpStats
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
