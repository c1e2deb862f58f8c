"""Coarse-to-fine restarts: every restart on a subsample of cells, the best one refined on all.

Restarts differ in where they start; choosing among them needs their final ELBOs, not all
cells. Each restart is fitted on the same fixed-seed subsample: every individual is kept (the
individual layer sees all J individuals), ``fraction`` of each individual's cells (at least
``min_cells``). The restart with the largest ELBO on the subsample is then refined on all cells
from its own solution: its cell labels on all cells (``predict``, one local step) and its
individual responsibilities ``rho_`` become ``init_resp`` of a single ``init="resp"`` fit
(:func:`refine_on_all_cells`). The workflow runs the same two steps as jobs (``fit.coarse_fraction``:
one subsample restart per seed job, then ``refine_fit``).

Only the public estimator API is used (``NAM(...).fit``, ``predict``, fitted ``_`` attributes).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..errors import NAMInputError
from .nam import NAM

__all__ = ["subsample_within_individuals", "coarse_cells", "merge_atoms_of_best", "refine_on_all_cells",
           "best_coarse_restart", "fit_coarse_to_fine"]

logger = logging.getLogger(__name__)


def subsample_within_individuals(
    group: np.ndarray, fraction: float, min_cells: int = 20, seed: int = 0,
    max_cells: int | None = None,
) -> np.ndarray:
    """Rows of ``fraction`` of each individual's cells (at least ``min_cells``, or all it has).

    With ``max_cells``, the fraction is lowered to ``max_cells / N`` where that is smaller, so
    a restart's cost stops growing with the cohort (the ``min_cells`` floor still holds, so the
    subsample can exceed ``max_cells`` by up to ``min_cells`` per individual).

    Parameters
    ----------
    group : ndarray (N,) of int
        Individual code of each cell.
    fraction : float
        Share of each individual's cells kept, in (0, 1].
    min_cells : int
    seed : int
    max_cells : int or None

    Returns
    -------
    ndarray (n,) of int
        Sorted rows; every individual of ``group`` keeps at least one cell.
    """
    if not 0 < fraction <= 1:
        raise NAMInputError(f"fraction must lie in (0, 1], got {fraction}")
    if max_cells is not None:
        if max_cells < 1:
            raise NAMInputError(f"max_cells must be at least 1, got {max_cells}")
        fraction = min(fraction, max_cells / max(len(group), 1))
    rng = np.random.default_rng(seed)
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    rows = []
    for members in np.split(order, starts[1:]):
        n = min(members.size, max(min_cells, int(np.ceil(fraction * members.size))))
        rows.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(rows))


def coarse_cells(Y, group, fraction: float | None, min_cells: int = 20, seed: int = 0,
                 max_cells: int | None = None):
    """The cells one coarse restart sees: all of them when ``fraction`` is None.

    Parameters
    ----------
    Y : ndarray (N, p)
    group : ndarray (N,) of int
    fraction, min_cells, seed, max_cells
        As in :func:`subsample_within_individuals`.

    Returns
    -------
    (Y, group) of the subsample; every individual keeps its code.
    """
    if fraction is None:
        return Y, group
    rows = subsample_within_individuals(np.asarray(group), fraction, min_cells, seed, max_cells)
    logger.info("coarse restart: %d of %d cells (%.3g of each individual's, at least %d%s), "
                "every individual kept", rows.size, len(group), fraction, min_cells,
                "" if max_cells is None else f", about {max_cells} in all at most")
    return Y[rows], group[rows]


def _continue_from(best, X, Y, group, **nam_params):
    """One ``init="resp"`` fit of ``Y`` from ``best``'s solution: its labels on ``Y`` and ``rho_``."""
    params = {k: v for k, v in nam_params.items() if k not in ("n_init", "seed", "init", "init_resp")}
    labels = best.predict(Y, group)  # (N,) atoms: one-hot a chunk at a time, not an N x L matrix
    model = NAM(n_init=1, seed=best.seed_, init="resp", init_resp=(labels, best.rho_), **params)
    return model.fit(X, Y, group)


def merge_atoms_of_best(best, X, Y, group, **nam_params):
    """The best restart, fitted without atom merges, continued on its own cells with them.

    Restarts only choose a starting point, so the atom-merge searches (several full sweeps per
    candidate) run once, on the chosen restart, not on every restart. ``Y`` and ``group`` are
    the cells ``best`` was fitted on; ``nam_params`` as in :func:`refine_on_all_cells`, with
    ``merge_atoms=True`` set here.
    """
    return _continue_from(best, X, Y, group, **{**nam_params, "merge_atoms": True})


def refine_on_all_cells(best, X, Y, group, **nam_params):
    """Refit ``best`` (fitted on a subsample) on all cells, starting from its own solution.

    Its cell labels on all cells (``predict``: one local step) and its individual
    responsibilities ``rho_`` become ``init_resp`` of one ``init="resp"`` restart with seed
    ``best.seed_``.

    Parameters
    ----------
    best : NAM
        Fitted on rows of ``Y`` that keep every individual of ``group``.
    X : ndarray (J, q)
    Y : ndarray (N, p)
    group : ndarray (N,) of int in 0..J-1
    **nam_params
        Other parameters of :class:`nam_core.NAM` (K, L, atoms, checkpoint, ...); ``n_init``,
        ``seed``, ``init`` and ``init_resp`` are set here.

    Returns
    -------
    NAM fitted on all cells.
    """
    return _continue_from(best, X, Y, group, **nam_params)


def best_coarse_restart(X, Y, group, n_init: int = 4, fraction: float = 0.1,
                        min_cells: int = 20, seed: int = 0, atom_merges: str = "best",
                        max_cells: int | None = None, **nam_params):
    """Fit ``n_init`` NAM restarts on a subsample of cells and keep the one of largest ELBO.

    Parameters
    ----------
    X : ndarray (J, q)
    Y : ndarray (N, p)
    group : ndarray (N,) of int in 0..J-1
    n_init : int
        Restarts on the subsample, seeds ``seed, seed + 1, ...``.
    fraction, min_cells : float, int
        Subsample of :func:`subsample_within_individuals` (drawn with ``seed``).
    seed : int
    atom_merges : {"best", "all"}
        With ``merge_atoms=True``: "best" fits the restarts without atom merges and runs them on
        the chosen restart only (:func:`merge_atoms_of_best`), "all" in every restart.
    max_cells : int or None
        Cap on the subsample (:func:`subsample_within_individuals`).
    **nam_params
        Other parameters of :class:`nam_core.NAM` (K, L, max_iter, dtype, device, ...).

    Returns
    -------
    best : NAM
        Fitted on the subsample (after its atom merges).
    info : dict
        ``rows`` (the subsample), ``restarts`` (seed, ELBO on the subsample, seconds),
        ``best_seed`` and ``coarse_seconds`` (the restarts and the chosen one's merges).
    """
    if atom_merges not in ("best", "all"):
        raise NAMInputError(f"atom_merges must be 'best' or 'all', got {atom_merges!r}")
    group = np.asarray(group)
    Y = np.asarray(Y)
    rows = subsample_within_individuals(group, fraction, min_cells, seed, max_cells)
    logger.info("coarse-to-fine: %d restarts on %d of %d cells, every individual kept",
                n_init, rows.size, group.size)
    merge_best = atom_merges == "best" and nam_params.get("merge_atoms", False)
    restart_params = {**nam_params, "merge_atoms": False} if merge_best else nam_params
    restarts, best = [], None
    t0 = time.perf_counter()
    for r in range(n_init):
        t = time.perf_counter()
        model = NAM(n_init=1, seed=seed + r, **restart_params).fit(X, Y[rows], group[rows])
        restarts.append({"seed": seed + r, "elbo": float(model.elbo_),
                         "seconds": time.perf_counter() - t})
        if best is None or model.elbo_ > best.elbo_:
            best = model
    if merge_best:
        best = merge_atoms_of_best(best, X, Y[rows], group[rows], **nam_params)
    return best, {"rows": rows, "restarts": restarts, "best_seed": int(best.seed_),
                  "coarse_seconds": time.perf_counter() - t0}


def fit_coarse_to_fine(X, Y, group, n_init: int = 4, fraction: float = 0.1,
                       min_cells: int = 20, seed: int = 0, atom_merges: str = "best",
                       max_cells: int | None = None, **nam_params):
    """Fit ``n_init`` NAM restarts on a subsample of cells, refine the best on all cells.

    Parameters as :func:`best_coarse_restart`.

    Returns
    -------
    model : NAM
        Fitted on all cells from the best restart's solution.
    info : dict
        ``rows`` (the subsample), ``restarts`` (seed, ELBO on the subsample, seconds),
        ``best_seed``, ``coarse_seconds`` and ``refine_seconds``.
    """
    best, info = best_coarse_restart(X, Y, group, n_init, fraction, min_cells, seed, atom_merges,
                                     max_cells, **nam_params)
    t = time.perf_counter()
    final = refine_on_all_cells(best, X, np.asarray(Y), np.asarray(group), **nam_params)
    info["refine_seconds"] = time.perf_counter() - t
    logger.info("coarse-to-fine: best restart seed %d; restarts %.1f s, refinement %.1f s",
                info["best_seed"], info["coarse_seconds"], info["refine_seconds"])
    return final, info
