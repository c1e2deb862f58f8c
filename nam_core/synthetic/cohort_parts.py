"""The parts of a synthetic cohort: people, their compositions, their cells and the cells' counts.

Shared by the demo cohort (:mod:`nam_core.synthetic.demo`) and the OneK1K-shaped cohort
(:mod:`nam_core.synthetic.scale_cohort`). Individuals fall into ancestries whose mean cell-type
compositions differ; each cell gets a log-normal library size, a mitochondrial fraction and,
for a few, a low-quality flag; counts are gamma-Poisson (negative binomial) around per-type
rates. The constants below are the generator's, recorded in the demo's ``uns["demo"]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from .ancestry import ancestry_labels, balding_nichols_genotypes
from .base import CohortSpec, cells_per_individual

__all__ = [
    "AMBIENT",
    "ANCESTRY_SPREAD",
    "INDIVIDUAL_CONCENTRATION",
    "LOW_QUALITY_RATE",
    "MEDIAN_LIBRARY",
    "MIN_COMPOSITION_TV",
    "MT_BETA",
    "MT_GENES",
    "IndividualsAndCells",
    "ambient_rates",
    "ancestry_compositions",
    "cell_quality",
    "draw_counts",
    "draw_individuals_and_cells",
    "mito_weights",
]

#: Synthetic mitochondrial genes and their relative weights within the mitochondrial fraction.
MT_GENES: dict[str, float] = {
    "MT-CO1": 0.25,
    "MT-CO2": 0.15,
    "MT-CO3": 0.15,
    "MT-ATP6": 0.15,
    "MT-CYB": 0.12,
    "MT-ND1": 0.08,
    "MT-ND2": 0.05,
    "MT-ND4": 0.05,
}

MEDIAN_LIBRARY = 3000.0  # median UMIs per healthy cell
AMBIENT = 0.01  # share of every cell's profile drawn from the pooled (ambient) profile
MT_BETA = (4.0, 96.0)  # mitochondrial fraction of healthy cells, mean 4 %
LOW_QUALITY_RATE = 0.03  # share of low-quality cells (half damaged, half near-empty)
ANCESTRY_SPREAD = 0.6  # sd of the log-normal perturbation of the base composition per ancestry
MIN_COMPOSITION_TV = 0.15  # ancestry compositions redrawn until pairwise total variation >= this
INDIVIDUAL_CONCENTRATION = 100.0  # omega_j ~ Dirichlet(100 * omega_ancestry)
_CHUNK_CELLS = 4096


@dataclasses.dataclass
class IndividualsAndCells:
    """The people of a cohort and their cells, before any count is drawn.

    Attributes
    ----------
    ancestry : ndarray (J,) of int
        Population of each individual.
    genotypes : ndarray (J, P) of int8
        Minor-allele counts.
    n_cells : ndarray (J,) of int
        Cells of each individual.
    group : ndarray (N,) of int
        Individual of each cell, cells sorted by individual.
    type_codes : ndarray (N,) of int
        Cell type of each cell (row of the profiles).
    library : ndarray (N,) of float
        UMIs of each cell.
    mt_fraction : ndarray (N,) in [0, 1)
        Mitochondrial share of each cell's UMIs.
    low_quality : ndarray (N,) of bool
        Damaged or near-empty cells.
    """

    ancestry: np.ndarray
    genotypes: np.ndarray
    n_cells: np.ndarray
    group: np.ndarray
    type_codes: np.ndarray
    library: np.ndarray
    mt_fraction: np.ndarray
    low_quality: np.ndarray


def ancestry_compositions(
    n_ancestries: int, base: np.ndarray, rng: np.random.Generator, max_tries: int = 1000
) -> np.ndarray:
    """Mean composition of each ancestry: ``base`` times a log-normal perturbation, renormalised.

    Redrawn until every pair differs by at least :data:`MIN_COMPOSITION_TV` in total variation
    (the most separated draw is kept if none qualifies in ``max_tries``).

    Returns
    -------
    omega : ndarray (n_ancestries, n_types), rows sum to 1
    """
    best, best_gap = None, -1.0
    for _ in range(max_tries):
        omega = base * np.exp(ANCESTRY_SPREAD * rng.standard_normal((n_ancestries, base.size)))
        omega /= omega.sum(axis=1, keepdims=True)
        tv = 0.5 * np.abs(omega[:, None, :] - omega[None, :, :]).sum(axis=-1)
        gap = tv[np.triu_indices(n_ancestries, 1)].min() if n_ancestries > 1 else np.inf
        if gap > best_gap:
            best, best_gap = omega, gap
        if gap >= MIN_COMPOSITION_TV:
            break
    return best


def cell_quality(
    n_cells: int, rng: np.random.Generator, library_sdlog: float = CohortSpec.library_sdlog
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Library size, mitochondrial fraction and low-quality flag of each cell.

    Healthy cells: log-normal library (median 3000 UMIs, sd ``library_sdlog`` of the natural
    log), MT fraction ~ Beta(4, 96). Low-quality
    cells (3 %): half damaged (MT fraction U(0.3, 0.6)), half near-empty (library U(100, 450)).

    Returns
    -------
    library : ndarray (n_cells,) of float, UMIs
    mt_fraction : ndarray (n_cells,) in [0, 1)
    low_quality : ndarray (n_cells,) of bool
    """
    library = MEDIAN_LIBRARY * np.exp(library_sdlog * rng.standard_normal(n_cells))
    mt_fraction = rng.beta(*MT_BETA, size=n_cells)
    kind = rng.random(n_cells)
    damaged = kind < LOW_QUALITY_RATE / 2
    empty = (kind >= LOW_QUALITY_RATE / 2) & (kind < LOW_QUALITY_RATE)
    mt_fraction[damaged] = rng.uniform(0.3, 0.6, size=int(damaged.sum()))
    library[empty] = rng.uniform(100.0, 450.0, size=int(empty.sum()))
    return library, mt_fraction, damaged | empty


def draw_individuals_and_cells(
    spec: CohortSpec, base: np.ndarray, rng: np.random.Generator
) -> IndividualsAndCells:
    """Ancestries, genotypes, compositions and cells of a cohort, in one fixed order of draws.

    Individuals get ancestries (:func:`~nam_core.synthetic.ancestry.ancestry_labels`) and
    Balding-Nichols genotypes; each ancestry a mean composition
    (:func:`ancestry_compositions`), each individual omega_j ~ Dirichlet(100 omega_ancestry);
    cell counts are negative binomial; each cell a type ~ Cat(omega_j) and a library, MT
    fraction and quality flag (:func:`cell_quality`).

    Parameters
    ----------
    spec : CohortSpec
    base : ndarray (n_types,)
        Base composition, in the order of the profiles' rows.
    rng : numpy Generator

    Returns
    -------
    IndividualsAndCells
    """
    ancestry = ancestry_labels(spec.n_individuals, spec.n_ancestries, rng)
    genotypes, _ = balding_nichols_genotypes(ancestry, spec.n_snps, spec.fst, rng)
    omega_ancestry = ancestry_compositions(spec.n_ancestries, base, rng)
    omega = rng.gamma(INDIVIDUAL_CONCENTRATION * omega_ancestry[ancestry])  # Dirichlet draws
    omega /= omega.sum(axis=1, keepdims=True)  # (J, T)
    n_cells = cells_per_individual(spec.n_individuals, spec.mean_cells, rng)
    group = np.repeat(np.arange(spec.n_individuals), n_cells)
    type_codes = np.concatenate(
        [rng.choice(base.size, size=n, p=w) for n, w in zip(n_cells, omega, strict=True)]
    )
    library, mt_fraction, low_quality = cell_quality(group.size, rng, spec.library_sdlog)
    return IndividualsAndCells(
        ancestry=ancestry, genotypes=genotypes, n_cells=n_cells, group=group,
        type_codes=type_codes, library=library, mt_fraction=mt_fraction, low_quality=low_quality,
    )


def ambient_rates(profiles) -> np.ndarray:
    """Per-type rates with the ambient share: (1 - a) p_t + a mean_t p_t, a = :data:`AMBIENT`.

    Parameters
    ----------
    profiles : DataFrame (n_types, n_genes)
        Rows sum to 1.

    Returns
    -------
    ndarray (n_types, n_genes), rows sum to 1
    """
    p = profiles.to_numpy(dtype=np.float64)
    return (1.0 - AMBIENT) * p + AMBIENT * p.mean(axis=0)


def mito_weights() -> np.ndarray:
    """Relative weights of :data:`MT_GENES` within the mitochondrial fraction, (n_mt,), sum 1."""
    weights = np.fromiter(MT_GENES.values(), dtype=np.float64)
    weights /= weights.sum()
    return weights


def draw_counts(
    rates: np.ndarray,
    type_codes: np.ndarray,
    library: np.ndarray,
    mt_fraction: np.ndarray,
    rng: np.random.Generator,
    gene_dispersion: float = CohortSpec.gene_dispersion,
    gene_factor: np.ndarray | None = None,
    pool: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Gamma-Poisson UMI counts, built in chunks of cells to bound memory.

    Parameters
    ----------
    rates : ndarray (n_types, n_genes)
        Nuclear profile of each type (rows sum to 1, ambient share included).
    type_codes : ndarray (N,) of int
    library, mt_fraction : ndarray (N,)
    gene_dispersion : float
        Gamma-Poisson shape theta: Var = mu + mu^2 / theta.
    gene_factor : ndarray (n_pools, n_genes + len(MT_GENES)), optional
        Multiplier of each gene's mean in each sequencing pool
        (:class:`~nam_core.synthetic.pools.Pools`); with ``pool`` (N,), the pool of each cell.
        The pool's library factor is already in ``library``.

    Returns
    -------
    counts : csr_matrix (N, n_genes + len(MT_GENES)) of float32
    """
    mt_weights = mito_weights()
    blocks = []
    for start in range(0, type_codes.size, _CHUNK_CELLS):
        sl = slice(start, start + _CHUNK_CELLS)
        nuclear = (library[sl] * (1.0 - mt_fraction[sl]))[:, None] * rates[type_codes[sl]]
        mito = (library[sl] * mt_fraction[sl])[:, None] * mt_weights
        mu = np.hstack([nuclear, mito])
        if gene_factor is not None:
            mu *= gene_factor[pool[sl]]
        lam = mu * rng.gamma(gene_dispersion, 1.0 / gene_dispersion, size=mu.shape)
        blocks.append(sp.csr_matrix(rng.poisson(lam).astype(np.float32)))
    return sp.vstack(blocks, format="csr")
