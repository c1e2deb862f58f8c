"""Sequencing pools: donors sequenced together share a technical shift of every gene and library.

Large cohorts are sequenced in pools of a dozen donors or so (OneK1K: 75 pools of ~13 donors),
and each pool shifts the expression of its cells: a pool-specific factor on each gene's mean and
on the library size. :func:`draw_pools` assigns donors to pools, either independently of their
ancestry or mostly by ancestry (confounded), and draws those factors:

    mu_{ig} = library_i * L_{pool(i)} * rate_{type(i), g} * F_{pool(i), g},
    log L_k ~ N(0, sd^2),   log F_{kg} ~ N(0, sd^2).

The draws use a random stream of their own (derived from the cohort's seed), so a cohort
without pools is drawn exactly as before and switching pools on changes nothing else.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .base import CohortSpec

__all__ = ["Pools", "assign_pools", "draw_pools", "pool_names", "pools_per_ancestry"]

#: Spawn key of the pools' random stream, beside the cohort's main stream of the same seed.
_POOL_STREAM = (19,)


@dataclasses.dataclass
class Pools:
    """The pools of a cohort and their shifts.

    Attributes
    ----------
    pool : ndarray (J,) of int
        Pool of each donor, 0..n_pools-1.
    library_factor : ndarray (n_pools,)
        Multiplier of the library size of every cell of the pool (log-normal).
    gene_factor : ndarray (n_pools, n_genes)
        Multiplier of each gene's mean in the pool's cells (log-normal).
    names : list of str
        Pool names ``P01``... as written to ``obs["pool"]``.
    """

    pool: np.ndarray
    library_factor: np.ndarray
    gene_factor: np.ndarray
    names: list[str]

    def of_cells(self, group: np.ndarray) -> np.ndarray:
        """Pool of each cell, (N,) int, from the donor ``group`` (N,) of each cell."""
        return self.pool[np.asarray(group)]


def pool_names(n_pools: int) -> list[str]:
    """``P01``, ``P02``, ... (zero-padded to at least two digits)."""
    width = max(2, len(str(n_pools)))
    return [f"P{k + 1:0{width}d}" for k in range(n_pools)]


def pools_per_ancestry(ancestry: np.ndarray, n_pools: int) -> np.ndarray:
    """Pools reserved for each ancestry, proportional to its donors, at least one each.

    Returns
    -------
    ndarray (n_ancestries,) of int, summing to ``n_pools`` (largest remainders get the rest).
    """
    sizes = np.bincount(ancestry).astype(np.float64)
    share = n_pools * sizes / sizes.sum()
    counts = np.maximum(1, np.floor(share).astype(int))
    while counts.sum() < n_pools:
        counts[np.argmax(share - counts)] += 1
    while counts.sum() > n_pools:
        over = np.where(counts > 1, counts - share, -np.inf)
        counts[np.argmax(over)] -= 1
    return counts


def _balanced(n: int, n_pools: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels over ``n_pools`` pools, as equal in size as possible, in random order."""
    return rng.permutation(np.arange(n) % n_pools)


def assign_pools(
    ancestry: np.ndarray, n_pools: int, confounding: float, rng: np.random.Generator
) -> np.ndarray:
    """Pool of each donor.

    Parameters
    ----------
    ancestry : ndarray (J,) of int
        Population of each donor.
    n_pools : int
        Pools (at least one per ancestry when ``confounding`` > 0).
    confounding : float in [0, 1]
        Each donor independently, with this probability, goes to one of the pools reserved for
        its ancestry (:func:`pools_per_ancestry`, filled evenly); the others are spread evenly
        over all pools. 0 makes pool independent of ancestry.

    Returns
    -------
    ndarray (J,) of int in 0..n_pools-1
    """
    ancestry = np.asarray(ancestry)
    pool = np.empty(ancestry.size, dtype=np.int64)
    own = rng.random(ancestry.size) < confounding if confounding > 0 else np.zeros(
        ancestry.size, dtype=bool)
    if own.any():
        first = np.concatenate([[0], np.cumsum(pools_per_ancestry(ancestry, n_pools))])
        for k in range(int(ancestry.max()) + 1):
            members = np.flatnonzero(own & (ancestry == k))
            pool[members] = first[k] + _balanced(members.size, first[k + 1] - first[k], rng)
    others = np.flatnonzero(~own)
    pool[others] = _balanced(others.size, n_pools, rng)
    return pool


def draw_pools(spec: CohortSpec, ancestry: np.ndarray, n_genes: int) -> Pools | None:
    """Pools of a cohort (None when ``spec.n_pools`` is 0), from their own random stream.

    Parameters
    ----------
    spec : CohortSpec
        ``n_pools``, ``pool_shift_sd``, ``pool_confounding`` and ``seed`` are used.
    ancestry : ndarray (J,) of int
    n_genes : int
        Genes whose means the pools shift.

    Returns
    -------
    Pools or None
    """
    if spec.n_pools == 0:
        return None
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=_POOL_STREAM))
    pool = assign_pools(ancestry, spec.n_pools, spec.pool_confounding, rng)
    sd = spec.pool_shift_sd
    library_factor = np.exp(sd * rng.standard_normal(spec.n_pools))
    gene_factor = np.exp(sd * rng.standard_normal((spec.n_pools, n_genes)))
    return Pools(pool=pool, library_factor=library_factor, gene_factor=gene_factor,
                 names=pool_names(spec.n_pools))
