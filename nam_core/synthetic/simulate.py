"""Simulate data from the two-level design of ``docs/model.md`` section "Simulation design".

Individuals fall into ``n_clusters`` true clusters; each cluster fixes the distribution of the
individual's genotype vector and its cells' composition over ``n_cell_types`` shared cell types.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NAMInputError
from .ancestry import balding_nichols_genotypes
from .base import (
    CohortSpec,
    SimulatedData,
    cells_per_individual,
    draw_partition,
    genotype_pcs,
    separated_centres,
)

__all__ = ["SimulatedData", "simulate"]  # SimulatedData: the type simulate returns


def _random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.normal(size=(dim, dim)))
    return Q * np.sign(np.diag(R))


def _realistic_counts(J, n_clusters, q, p, n_cell_types, mean_cells, n_snps, fst,
                      library_sdlog, gene_dispersion, seed) -> SimulatedData:
    """simulate(expression_model="counts"): the realistic-counts scenario in simulate's terms."""
    from .realistic import simulate_realistic_counts  # anndata and the preprocessing: only here

    if n_cell_types != 6:
        raise NAMInputError(
            f"expression_model 'counts' draws the demo's 6 cell types; set n_cell_types: 6, "
            f"not {n_cell_types}"
        )
    cohort = CohortSpec(
        n_individuals=J, n_ancestries=n_clusters, mean_cells=mean_cells, n_snps=n_snps, fst=fst,
        seed=0 if seed is None else seed, library_sdlog=library_sdlog,
        gene_dispersion=gene_dispersion,
    )
    return simulate_realistic_counts(cohort, n_pcs=p, q=q)


def simulate(
    J: int = 200,
    n_clusters: int = 4,
    q: int = 5,
    p: int = 10,
    n_cell_types: int = 8,
    mean_cells: float = 200.0,
    delta_x: float = 3.0,
    sigma_x: float = 1.0,
    delta_y: float = 4.0,
    sigma_y: float = 1.0,
    eta: float = 0.8,
    kappa: float = math.inf,
    weights: str = "uniform",
    alpha_true: float = 1.0,
    genotype_model: str = "gaussian",
    n_snps: int = 2000,
    fst: float = 0.01,
    conflicting: bool = False,
    min_cells: int = 20,
    dispersion: float = 5.0,
    expression_model: str = "gaussian",
    library_sdlog: float = 0.4,
    gene_dispersion: float = 10.0,
    seed: int | None = 0,
) -> SimulatedData:
    """Draw one data set from the simulation design of ``docs/model.md``.

    Parameters
    ----------
    J, n_clusters, q, p, n_cell_types : int
        Individuals, true individual clusters K*, genotype and expression dimensions, cell types L*.
    mean_cells : float
        Mean cells per individual (negative binomial with ``dispersion``; at least ``min_cells``).
    delta_x, sigma_x : float
        Genotype-centre separation and individual noise (``genotype_model="gaussian"``).
    delta_y, sigma_y : float
        Cell-type separation and within-type noise scale.
    eta : float in [0, 1]
        Composition distinctness (0: every cluster has the same composition).
    kappa : float
        Individual composition noise; ``inf`` draws cells from the cluster composition exactly,
        otherwise omega_j ~ Dirichlet(kappa * omega*_k).
    weights : {"uniform", "stick"}
        True cluster weights; "stick" draws them by stick breaking with ``alpha_true``.
    genotype_model : {"gaussian", "snp"}
        Gaussian centres, or Balding-Nichols SNPs (``n_snps``, ``fst``) reduced to q PCs.
    conflicting : bool
        Scenario D: genotype clusters and composition clusters drawn independently.
    expression_model : {"gaussian", "counts"}
        "gaussian": y drawn from the model (everything above). "counts": the realistic-counts
        scenario (:func:`nam_core.synthetic.realistic.simulate_realistic_counts`): NB counts around
        the demo's 6 PBMC profiles -> the workflow's preprocessing -> p expression PCs, with J,
        n_clusters (ancestries), q, mean_cells, n_snps, fst, ``library_sdlog`` and
        ``gene_dispersion``; the other parameters do not apply and n_cell_types must be 6.
    library_sdlog, gene_dispersion : float
        Log-normal sd of library sizes and NB shape of the genes ("counts" only).
    seed : int or None

    Returns
    -------
    SimulatedData
    """
    if not 0.0 <= eta <= 1.0:
        raise NAMInputError(f"eta must lie in [0, 1], got {eta}")
    if expression_model == "counts":
        return _realistic_counts(J, n_clusters, q, p, n_cell_types, mean_cells, n_snps, fst,
                                 library_sdlog, gene_dispersion, seed)
    if expression_model != "gaussian":
        raise NAMInputError(f"expression_model must be 'gaussian' or 'counts', got {expression_model!r}")
    params = {k: v for k, v in locals().items() if k != "params"}
    rng = np.random.default_rng(seed)
    S = draw_partition(n_clusters, J, weights, alpha_true, rng)
    comp_labels = draw_partition(n_clusters, J, weights, alpha_true, rng) if conflicting else S

    if genotype_model == "gaussian":
        centres_x = separated_centres(n_clusters, q, delta_x, delta_x, rng)
        X = centres_x[S] + sigma_x * rng.normal(size=(J, q))
    elif genotype_model == "snp":
        G, _ = balding_nichols_genotypes(S, n_snps, fst, rng)
        X = genotype_pcs(G, q)
    else:
        raise NAMInputError(f"genotype_model must be 'gaussian' or 'snp', got {genotype_model!r}")

    centres_y = separated_centres(n_cell_types, p, delta_y / math.sqrt(2.0), delta_y, rng)
    chol = np.empty((n_cell_types, p, p))
    for l in range(n_cell_types):
        Q = _random_rotation(p, rng)
        lam = rng.uniform(0.5, 1.5, size=p)
        chol[l] = sigma_y * Q * np.sqrt(lam)  # Sigma_l = chol chol^T = sigma^2 Q diag(lam) Q^T

    common = rng.dirichlet(np.ones(n_cell_types))
    sparse = rng.dirichlet(np.full(n_cell_types, 0.3), size=n_clusters)
    omega = (1.0 - eta) * common + eta * sparse  # (K*, L*)

    n_cells = cells_per_individual(J, mean_cells, rng, dispersion, min_cells)

    groups, types = [], []
    for j in range(J):
        w = omega[comp_labels[j]]
        if math.isfinite(kappa):
            w = rng.dirichlet(np.maximum(kappa * w, 1e-12))
        types.append(rng.choice(n_cell_types, size=n_cells[j], p=w / w.sum()))
        groups.append(np.full(n_cells[j], j))
    M = np.concatenate(types)
    group = np.concatenate(groups)
    Y = np.empty((M.size, p))
    for l in range(n_cell_types):
        in_type = M == l
        Y[in_type] = centres_y[l] + rng.normal(size=(int(in_type.sum()), p)) @ chol[l].T
    return SimulatedData(
        X=X, Y=Y, group=group, individual_labels=S, cell_labels=M,
        composition_labels=comp_labels, params=params,
    )
