"""Structured populations: ancestry labels and Balding-Nichols genotypes (every generator)."""

from __future__ import annotations

import numpy as np

from ..errors import NAMInputError

__all__ = ["ancestry_labels", "balding_nichols_genotypes"]


def ancestry_labels(n_individuals: int, n_ancestries: int, rng: np.random.Generator) -> np.ndarray:
    """Unequal population sizes proportional to n_ancestries, ..., 2, 1, shuffled; each >= 2.

    Returns
    -------
    labels : ndarray (n_individuals,) of int in 0..n_ancestries-1
    """
    weights = np.arange(n_ancestries, 0, -1, dtype=np.float64)
    sizes = np.maximum(2, np.floor(n_individuals * weights / weights.sum()).astype(int))
    sizes[0] += n_individuals - sizes.sum()
    if sizes.min() < 2:  # only for very small cohorts: fall back to near-equal sizes
        sizes = np.full(n_ancestries, n_individuals // n_ancestries)
        sizes[: n_individuals % n_ancestries] += 1
    labels = np.repeat(np.arange(n_ancestries), sizes)
    return rng.permutation(labels)


def balding_nichols_genotypes(
    labels: np.ndarray, n_snps: int, fst: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Balding-Nichols SNP genotypes for individuals in populations ``labels``.

    Ancestral frequencies f_s ~ U(0.05, 0.5); population frequencies
    f_ks ~ Beta(f_s (1-F)/F, (1-f_s)(1-F)/F); genotypes G_js ~ Binomial(2, f_{S_j s}).

    Parameters
    ----------
    labels : ndarray (J,) of int
        Population of each individual, 0..K-1.
    n_snps : int
        Number of SNPs P.
    fst : float
        Fixation index F in (0, 1).
    rng : numpy Generator

    Returns
    -------
    genotypes : ndarray (J, P) of int8
        Minor-allele counts 0, 1 or 2.
    population_freqs : ndarray (K, P)
        Allele frequency of each population.
    """
    if not 0.0 < fst < 1.0:
        raise NAMInputError(f"fst must lie in (0, 1), got {fst}")
    labels = np.asarray(labels)
    n_pops = int(labels.max()) + 1
    ancestral = rng.uniform(0.05, 0.5, size=n_snps)
    shape = (1.0 - fst) / fst
    freqs = rng.beta(ancestral * shape, (1.0 - ancestral) * shape, size=(n_pops, n_snps))
    genotypes = rng.binomial(2, freqs[labels]).astype(np.int8)
    return genotypes, freqs
