"""Data from the generative processes of the nested DP and the HDP (``docs/model.md`` 9c, 9d).

The NAM/CAM/fiSAN design (shared atoms, weights clustered by individual) is
:func:`nam_core.synthetic.simulate.simulate`; these two generators give each baseline data from its
own model, for recovery tests and benchmarks. Both return
:class:`~nam_core.synthetic.base.SimulatedData`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NAMInputError
from .base import SimulatedData, cells_per_individual, draw_partition, separated_centres

__all__ = ["simulate_ndp", "simulate_hdp"]


def _draw_cells(weights, n_cells, centres, sigma_y, rng):
    """Cells of each individual j from Cat(weights[j]) over ``centres``, N(centre, sigma^2 I)."""
    types = [rng.choice(centres.shape[0], size=n, p=w / w.sum()) for w, n in zip(weights, n_cells, strict=True)]
    M = np.concatenate(types)
    group = np.repeat(np.arange(len(n_cells)), n_cells)
    Y = centres[M] + sigma_y * rng.normal(size=(M.size, centres.shape[1]))
    return Y, group, M


def simulate_ndp(
    J: int = 60, n_clusters: int = 3, n_atoms: int = 3, q: int = 2, p: int = 3,
    mean_cells: float = 60.0, delta_x: float = 3.0, delta_y: float = 5.0, sigma_y: float = 1.0,
    min_cells: int = 20, dispersion: float = 5.0, seed: int | None = 0,
) -> SimulatedData:
    """Nested-DP data: every individual cluster owns its ``n_atoms`` cell atoms (none shared).

    S_j uniform over ``n_clusters`` (each with >= 2 members); cluster k has atoms
    (k, 1..n_atoms) with centres at least ``delta_y`` apart (over all K* x L* atoms) and
    weights ~ Dir(1); x_j ~ N(mu^x_{S_j}, I) with centres ``delta_x`` apart.

    Returns
    -------
    SimulatedData
        ``cell_labels`` are k * n_atoms + l (the pair (cluster, atom)).
    """
    params = dict(locals())
    rng = np.random.default_rng(seed)
    S = draw_partition(n_clusters, J, "uniform", 1.0, rng)
    centres_x = separated_centres(n_clusters, q, delta_x, delta_x, rng)
    X = centres_x[S] + rng.normal(size=(J, q))
    centres_y = separated_centres(n_clusters * n_atoms, p, delta_y / math.sqrt(2.0), delta_y, rng)
    omega = np.zeros((n_clusters, n_clusters * n_atoms))
    for k in range(n_clusters):
        omega[k, k * n_atoms : (k + 1) * n_atoms] = rng.dirichlet(np.ones(n_atoms))
    n_cells = cells_per_individual(J, mean_cells, rng, dispersion, min_cells)
    Y, group, M = _draw_cells(omega[S], n_cells, centres_y, sigma_y, rng)
    return SimulatedData(X=X, Y=Y, group=group, individual_labels=S, cell_labels=M,
                         composition_labels=S, params=params)


def simulate_hdp(
    J: int = 40, n_atoms: int = 5, p: int = 3, mean_cells: float = 80.0, gamma: float = 5.0,
    alpha0: float = 2.0, delta_y: float = 5.0, sigma_y: float = 1.0, min_cells: int = 20,
    dispersion: float = 5.0, seed: int | None = 0,
) -> SimulatedData:
    """HDP data: ``n_atoms`` shared atoms, individual weights w_j ~ Dir(alpha0 * beta).

    Global weights beta ~ Dir(gamma / n_atoms * 1) (a finite approximation of the GEM); no
    clustering of individuals (``individual_labels`` is ``arange(J)``, ``X`` is empty (J, 0)).
    """
    if gamma <= 0 or alpha0 <= 0:
        raise NAMInputError(f"gamma and alpha0 must be positive, got {gamma}, {alpha0}")
    params = dict(locals())
    rng = np.random.default_rng(seed)
    centres_y = separated_centres(n_atoms, p, delta_y / math.sqrt(2.0), delta_y, rng)
    beta = rng.dirichlet(np.full(n_atoms, gamma / n_atoms))
    weights = rng.dirichlet(np.maximum(alpha0 * beta, 1e-3), size=J)
    n_cells = cells_per_individual(J, mean_cells, rng, dispersion, min_cells)
    Y, group, M = _draw_cells(weights, n_cells, centres_y, sigma_y, rng)
    labels = np.arange(J)
    return SimulatedData(X=np.empty((J, 0)), Y=Y, group=group, individual_labels=labels,
                         cell_labels=M, composition_labels=labels, params=params)
