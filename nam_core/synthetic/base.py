"""What every generator shares: the cohort parameters, the simulated data, partitions, cell counts.

:class:`CohortSpec` carries the parameters of a synthetic cohort (people, ancestries, cells,
SNPs, noise, seed) once, for the demo cohort, the OneK1K-shaped cohort and the realistic-counts
scenario; :class:`SimulatedData` is what the in-memory generators return.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NAMInputError

__all__ = [
    "CohortSpec",
    "SimulatedData",
    "cells_per_individual",
    "draw_partition",
    "genotype_pcs",
    "separated_centres",
]


@dataclasses.dataclass(frozen=True)
class CohortSpec:
    """Parameters of a synthetic cohort of genotyped individuals with single-cell counts.

    Attributes
    ----------
    n_individuals : int
        Individuals J.
    n_ancestries : int
        Populations; sizes proportional to n_ancestries, ..., 1 (at least 2 each).
    mean_cells : float
        Mean cells per individual (negative binomial, dispersion 5, at least 20).
    n_snps : int
        SNPs P.
    fst : float
        Balding-Nichols fixation index between populations, in (0, 1).
    seed : int
        Seed of every random draw; the same seed draws the same cohort.
    library_sdlog : float
        Standard deviation of the natural log of healthy cells' library sizes (log-normal).
    gene_dispersion : float
        Negative-binomial (gamma-Poisson) shape theta of every gene's counts:
        Var = mu + mu^2 / theta; smaller is noisier.
    n_pools : int
        Sequencing pools the donors are split into (0: no pools). Each pool multiplies every
        gene's mean by its own log-normal factor and every cell's library size by another
        (:mod:`nam_core.synthetic.pools`).
    pool_shift_sd : float
        Standard deviation of the natural log of those factors (0.3 when pools are used).
    pool_confounding : float
        Share of donors, in [0, 1], placed in a pool reserved for their ancestry; the others go
        to pools at random. 0: pool independent of ancestry; 0.9: each ancestry mostly in its
        own pools.

    Raises
    ------
    NAMInputError
        On construction, when a parameter is out of range.
    """

    n_individuals: int = 200
    n_ancestries: int = 3
    mean_cells: float = 100
    n_snps: int = 20_000
    fst: float = 0.05
    seed: int = 0
    library_sdlog: float = 0.4
    gene_dispersion: float = 10.0
    n_pools: int = 0
    pool_shift_sd: float = 0.3
    pool_confounding: float = 0.0

    def __post_init__(self) -> None:
        if self.n_ancestries < 1:
            raise NAMInputError(f"n_ancestries must be >= 1, got {self.n_ancestries}")
        if self.n_individuals < 2 * self.n_ancestries:
            raise NAMInputError(
                f"n_individuals ({self.n_individuals}) must be at least 2 per ancestry "
                f"({self.n_ancestries})"
            )
        if self.mean_cells <= 0:
            raise NAMInputError(f"mean_cells must be positive, got {self.mean_cells}")
        if self.n_snps < 1:
            raise NAMInputError(f"n_snps must be >= 1, got {self.n_snps}")
        if not 0.0 < self.fst < 1.0:
            raise NAMInputError(f"fst must lie in (0, 1), got {self.fst}")
        if self.library_sdlog < 0:
            raise NAMInputError(f"library_sdlog must be >= 0, got {self.library_sdlog}")
        if self.gene_dispersion <= 0:
            raise NAMInputError(f"gene_dispersion must be positive, got {self.gene_dispersion}")
        if not 0 <= self.n_pools <= self.n_individuals:
            raise NAMInputError(
                f"n_pools must lie in [0, n_individuals={self.n_individuals}], got {self.n_pools}"
            )
        if self.n_pools and self.pool_confounding > 0 and self.n_pools < self.n_ancestries:
            raise NAMInputError(
                f"confounded pools need at least one pool per ancestry: n_pools={self.n_pools}, "
                f"n_ancestries={self.n_ancestries}"
            )
        if self.pool_shift_sd < 0:
            raise NAMInputError(f"pool_shift_sd must be >= 0, got {self.pool_shift_sd}")
        if not 0.0 <= self.pool_confounding <= 1.0:
            raise NAMInputError(
                f"pool_confounding must lie in [0, 1], got {self.pool_confounding}"
            )


@dataclasses.dataclass
class SimulatedData:
    """Data and truth drawn by a generator of this package.

    Attributes
    ----------
    X : ndarray (J, q)
        Individual-level vectors.
    Y : ndarray (N, p)
        Cell-level vectors, cells sorted by individual.
    group : ndarray (N,) of int
        Individual of each cell, 0..J-1.
    individual_labels : ndarray (J,) of int
        True individual cluster S_j (genotype cluster in scenario D).
    cell_labels : ndarray (N,) of int
        True cell type M_ji.
    composition_labels : ndarray (J,) of int
        Cluster that fixed each individual's composition (equals ``individual_labels`` except in
        scenario D, where the two partitions are drawn independently).
    params : dict
        Every generator parameter, for the record.
    """

    X: np.ndarray
    Y: np.ndarray
    group: np.ndarray
    individual_labels: np.ndarray
    cell_labels: np.ndarray
    composition_labels: np.ndarray
    params: dict


def separated_centres(
    n: int, dim: int, scale: float, min_dist: float, rng: np.random.Generator, max_tries: int = 10_000
) -> np.ndarray:
    """Draw ``n`` centres from N(0, scale^2 I_dim), redrawn until all pairwise distances >= min_dist.

    Returns an (n, dim) array. ``min_dist=0`` accepts the first draw.
    """
    for _ in range(max_tries):
        centres = rng.normal(0.0, scale, size=(n, dim))
        if n < 2 or min_dist <= 0:
            return centres
        diff = centres[:, None, :] - centres[None, :, :]
        dist = np.sqrt((diff**2).sum(-1))
        if dist[np.triu_indices(n, 1)].min() >= min_dist:
            return centres
    raise NAMInputError(
        f"could not draw {n} centres in {dim} dimensions at least {min_dist} apart "
        f"(scale {scale}) in {max_tries} tries; lower the separation or raise the dimension"
    )


def genotype_pcs(genotypes: np.ndarray, n_pcs: int) -> np.ndarray:
    """First ``n_pcs`` principal-component scores of a (J, P) genotype matrix.

    Columns are standardised (monomorphic SNPs dropped); scores are U * s from the thin SVD.
    """
    G = genotypes.astype(np.float64)
    mean = G.mean(0)
    sd = G.std(0)
    keep = sd > 0
    Z = (G[:, keep] - mean[keep]) / sd[keep]
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    return U[:, :n_pcs] * s[:n_pcs]


def _cluster_weights(n_clusters: int, weights: str, alpha_true: float, rng) -> np.ndarray:
    if weights == "uniform":
        return np.full(n_clusters, 1.0 / n_clusters)
    if weights != "stick":
        raise NAMInputError(f"weights must be 'uniform' or 'stick', got {weights!r}")
    v = rng.beta(1.0, alpha_true, size=n_clusters)
    v[-1] = 1.0
    return v * np.concatenate([[1.0], np.cumprod(1.0 - v[:-1])])


def draw_partition(n_clusters: int, J: int, weights: str, alpha_true: float, rng) -> np.ndarray:
    """Cluster labels for J individuals; redrawn until every cluster has at least 2 members.

    ``weights`` is "uniform" or "stick" (stick breaking with concentration ``alpha_true``).
    """
    for _ in range(10_000):
        pi = _cluster_weights(n_clusters, weights, alpha_true, rng)
        labels = rng.choice(n_clusters, size=J, p=pi)
        if np.bincount(labels, minlength=n_clusters).min() >= 2:
            return labels
    raise NAMInputError(f"could not give each of {n_clusters} clusters 2 of {J} individuals")


def cells_per_individual(
    n: int, mean_cells: float, rng: np.random.Generator, dispersion: float = 5.0,
    min_cells: int = 20,
) -> np.ndarray:
    """Cells of each of ``n`` individuals: negative binomial (mean ``mean_cells``), at least ``min_cells``.

    Returns
    -------
    ndarray (n,) of int
    """
    prob = dispersion / (dispersion + mean_cells)
    return np.maximum(min_cells, rng.negative_binomial(dispersion, prob, size=n))
