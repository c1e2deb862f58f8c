"""Checks for data that are valid but too degenerate to fit: each names what to change.

The fit of docs/model.md sets its default Normal-Wishart priors from the covariance of the
genotype PCs x (J, q) and of the expression PCs y (N, p). That covariance must have full rank:
J individuals give a covariance of rank at most J - 1, so q genotype PCs need q + 1 individuals;
identical cells, or a PC that is constant, give a singular covariance. Without these checks the
fit stops deep inside a Cholesky factorisation. Individuals with very few cells are fitted (the
model allows any count) but named in a warning, since their composition rests on so few cells.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import NAMInputError

__all__ = ["MIN_CELLS_WARNING", "check_enough_individuals", "check_full_rank",
           "check_fittable", "warn_few_cells"]

logger = logging.getLogger(__name__)

MIN_CELLS_WARNING = 5
"""Individuals with fewer cells than this are named in a warning (they are still fitted)."""

_RANK_TOL = 1e-10
"""An eigenvalue of the covariance below this share of the largest counts as zero."""

_CHUNK = 100_000


def check_enough_individuals(n_individuals: int, n_pcs: int, where: str) -> None:
    """Raise unless ``n_individuals`` can carry ``n_pcs`` genotype PCs (at least n_pcs + 1).

    Parameters
    ----------
    n_individuals : int
        Individuals that enter the fit (genotyped, with cells, or kept without cells).
    n_pcs : int
        Genotype PCs q (``genotypes.n_pcs``).
    where : str
        What was counted, named in the message (e.g. "with both genotypes in x.fam and cells
        in y.h5ad").

    Raises
    ------
    NAMInputError
        Fewer than ``n_pcs + 1`` individuals; the message says to lower genotypes.n_pcs.
    """
    if n_individuals >= n_pcs + 1 and n_individuals >= 2:
        return
    if n_individuals < 2:
        raise NAMInputError(
            f"only {n_individuals} individual {where}; NAM clusters individuals and needs at "
            f"least {n_pcs + 1} (genotypes.n_pcs = {n_pcs} PCs need n_pcs + 1): add individuals"
        )
    raise NAMInputError(
        f"only {n_individuals} individuals {where}; genotypes.n_pcs = {n_pcs} PCs need at "
        f"least n_pcs + 1 = {n_pcs + 1} individuals for their covariance: set genotypes.n_pcs "
        f"to at most {n_individuals - 1}, or add individuals"
    )


def _covariance(values: np.ndarray) -> np.ndarray:
    """Covariance (d, d) in float64 of the rows of ``values`` (n, d), in row chunks."""
    n, d = values.shape
    total, gram = np.zeros(d), np.zeros((d, d))
    for start in range(0, n, _CHUNK):
        block = np.asarray(values[start:start + _CHUNK], dtype=np.float64)
        total += block.sum(axis=0)
        gram += block.T @ block
    mean = total / max(n, 1)
    return (gram - n * np.outer(mean, mean)) / max(n - 1, 1)


def check_full_rank(values: np.ndarray, what: str, key: str, source: str) -> None:
    """Raise unless the columns of ``values`` vary and are linearly independent.

    Parameters
    ----------
    values : array (n, d)
        Genotype PCs of the individuals or expression PCs of the cells.
    what : str
        Their name in the message ("expression PCs of the cells").
    key : str
        The config key that sets d ("expression.n_pcs").
    source : str
        The file they come from.

    Raises
    ------
    NAMInputError
        A non-finite value, a constant column, or a covariance of rank r < d; the message
        names the columns and says to set ``key`` to r or to check the data.
    """
    n, d = values.shape
    finite = np.isfinite(values)
    if not finite.all():
        bad = ", ".join(str(c + 1) for c in np.flatnonzero(~finite.all(axis=0)))
        raise NAMInputError(f"{source}: {what} hold NaN or infinite values (PC {bad}); "
                            "the file is damaged: rebuild it")
    cov = _covariance(values)
    constant = np.flatnonzero(np.diag(cov) <= _RANK_TOL * max(float(np.diag(cov).max()), 0.0))
    eigenvalues = np.linalg.eigvalsh(cov)
    rank = int((eigenvalues > _RANK_TOL * max(float(eigenvalues.max()), 0.0)).sum())
    if rank == d and not len(constant) and eigenvalues.max() > 0:
        return
    detail = (f"PC {', '.join(str(c + 1) for c in constant)} "
              f"{'is' if len(constant) == 1 else 'are'} constant" if len(constant)
              else "they are linearly dependent")
    if rank == 0:
        raise NAMInputError(
            f"{source}: the {d} {what} are the same for all {n} rows (every PC is constant): "
            "the data do not vary (e.g. identical cells); check the input file"
        )
    raise NAMInputError(
        f"{source}: the {d} {what} span only {rank} dimension{'s' if rank != 1 else ''} over "
        f"{n} rows ({detail}); the fit needs a covariance of full rank. Identical rows (e.g. "
        f"identical cells) or fewer distinct rows than PCs cause this: set {key} to at most "
        f"{rank}, or check the data"
    )


def warn_few_cells(group: np.ndarray, individuals, minimum: int = MIN_CELLS_WARNING) -> list:
    """Warn, naming them, about individuals with fewer than ``minimum`` cells; return them.

    Parameters
    ----------
    group : array (N,) of int
        Index of each cell's individual.
    individuals : sequence (J,)
        The individuals' IDs.
    minimum : int
        Cells below which an individual is named.
    """
    counts = np.bincount(group, minlength=len(individuals))
    few = [(str(individuals[j]), int(c)) for j, c in enumerate(counts) if 0 < c < minimum]
    if few:
        shown = ", ".join(f"{name} ({count} cell{'s' if count != 1 else ''})"
                          for name, count in few[:10])
        logger.warning(
            "%d individuals have fewer than %d cells: %s%s; they are fitted, but their cell-type "
            "composition rests on very few cells (and with one cell, on that cell alone)",
            len(few), minimum, shown, ", ..." if len(few) > 10 else "",
        )
    return [name for name, _ in few]


def check_fittable(x: np.ndarray, y: np.ndarray, group: np.ndarray, individuals, source: str,
                   pcs_source: str) -> None:
    """Every check of this module on NAM's inputs, before any fit starts.

    Parameters
    ----------
    x : array (J, q)
        Genotype PCs of the individuals that enter the fit.
    y : array (N, p)
        Expression PCs of the cells.
    group : array (N,) of int
        Index 0..J-1 of each cell's individual.
    individuals : sequence (J,)
        Their IDs.
    source, pcs_source : str
        The cells' file and the genotype PCs' file, named in errors.

    Raises
    ------
    NAMInputError
        Fewer than q + 1 individuals, or constant or dependent PCs (e.g. identical cells).
        Individuals with fewer than :data:`MIN_CELLS_WARNING` cells are named in a warning.
    """
    check_enough_individuals(len(individuals), x.shape[1],
                             f"enter the fit (after the expression QC of {source})")
    check_full_rank(x, "genotype PCs of the individuals", "genotypes.n_pcs", pcs_source)
    check_full_rank(y, "expression PCs of the cells", "expression.n_pcs", source)
    warn_few_cells(group, individuals)
