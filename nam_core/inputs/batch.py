"""Batch correction of the expression PCs: Harmony on a cell-level batch column, such as the pool.

Cells sequenced in one pool share a technical shift (library size, every gene's mean), which
moves them together in PC space; NAM's cell atoms and, through the compositions, its individual
clusters would then follow the pools. :func:`correct_pcs` removes it before the fit:

1. optionally regress the centred log library size out of the PCs (:func:`regress_out_library`);
   a pool's library factor otherwise remains a direction Harmony's per-cluster linear
   correction does not fully remove;
2. Harmony (Korsunsky et al. 2019, Nat Methods 16:1289; the maintained ``harmonypy`` port)
   with the batch column as its only covariate.

Harmony removes what differs between batches within each of its soft clusters. Biology that
differs between batches (donors of one ancestry sequenced together) is removed with the pool
(docs/pools.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from ..errors import NAMInputError, examples

__all__ = ["BatchSettings", "check_batch_column", "correct_pcs", "regress_out_library"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How the PCs are corrected for a batch column (the config's ``expression.harmony``).

    Attributes
    ----------
    theta : float
        Harmony's diversity penalty (2 in Harmony; larger mixes batches harder).
    max_iter : int
        Harmony iterations at most (its convergence test may stop it sooner).
    seed : int
        Seed of Harmony's k-means initialisation.
    regress_library : bool
        Regress the log library size out of the PCs before Harmony.
    """

    theta: float = 2.0
    max_iter: int = 10
    seed: int = 0
    regress_library: bool = True

    def __post_init__(self) -> None:
        if not self.theta >= 0:
            raise NAMInputError(f"harmony theta must be >= 0, got {self.theta}")
        if self.max_iter < 1:
            raise NAMInputError(f"harmony max_iter must be >= 1, got {self.max_iter}")


def check_batch_column(obs: pd.DataFrame, batch_key: str, source: str) -> None:
    """Raise unless ``obs`` has ``batch_key`` with a value for every cell and two values at least.

    Parameters
    ----------
    obs : DataFrame (N, ...)
        The cells' table.
    batch_key : str
        The batch column (e.g. ``pool``).
    source : str
        File named in the message.

    Raises
    ------
    NAMInputError
        The column is absent, missing for some or all cells, or holds one value only.
    """
    where = f"{source}: obs column {batch_key!r} (expression.batch_key)"
    if batch_key not in obs.columns:
        raise NAMInputError(
            f"{source}: obs has no column {batch_key!r} named by expression.batch_key; available "
            f"obs columns: {examples(obs.columns, limit=50) or 'none'}"
        )
    values = obs[batch_key]
    missing = values.isna().to_numpy()
    if missing.all():
        raise NAMInputError(f"{where} is missing for every one of its {missing.size} cells")
    if missing.any():
        raise NAMInputError(
            f"{where} is missing for {int(missing.sum())} of {missing.size} cells, e.g. "
            f"{examples(obs.index[missing])}; Harmony needs each cell's batch"
        )
    if values.nunique() < 2:
        raise NAMInputError(
            f"{where} holds one value ({values.iloc[0]!r}); batch correction needs two batches "
            f"at least (set expression.batch_key to null to skip it)"
        )


def regress_out_library(Y: np.ndarray, total_counts: np.ndarray) -> np.ndarray:
    """The PCs minus their least-squares fit on the centred log library size.

    Parameters
    ----------
    Y : array (N, p)
        Expression PCs of the cells.
    total_counts : array (N,)
        UMIs of each cell (before normalisation), all positive.

    Returns
    -------
    ndarray (N, p) float64
        Y - z b^T with z = log(total_counts) - mean and b = Y^T z / z^T z (p,): each column is
        uncorrelated with z; the column means are unchanged.
    """
    Y = np.asarray(Y, dtype=np.float64)
    z = np.log(np.asarray(total_counts, dtype=np.float64))
    z = z - z.mean()
    b = z @ Y / (z @ z)
    return Y - np.outer(z, b)


def _harmony(Y: np.ndarray, batch: pd.Categorical, settings: BatchSettings, n_threads: int):
    """Run harmonypy on (N, p) ``Y``; return the corrected (N, p) and the objective trace."""
    import harmonypy

    logging.getLogger("harmonypy").setLevel(logging.WARNING)  # its INFO lines flood the log
    meta = pd.DataFrame({"batch": batch})
    result = harmonypy.run_harmony(
        Y, meta, "batch", theta=settings.theta, max_iter_harmony=settings.max_iter,
        random_state=settings.seed, ncores=n_threads, verbose=False,
    )
    return np.asarray(result.Z_corr, dtype=np.float64), list(result.objective_harmony)


def correct_pcs(
    pcs: np.ndarray,
    batch,
    total_counts: np.ndarray | None,
    settings: BatchSettings = BatchSettings(),
    n_threads: int = 1,
) -> tuple[np.ndarray, dict]:
    """Correct expression PCs for a batch column: library regression (optional), then Harmony.

    Parameters
    ----------
    pcs : array (N, p)
        Expression PCs of the cells.
    batch : array-like (N,)
        Batch of each cell (e.g. its pool); no missing values (:func:`check_batch_column`).
    total_counts : array (N,) or None
        UMIs of each cell; needed when ``settings.regress_library``.
    settings : BatchSettings
    n_threads : int
        Harmony's threads (its result does not depend on them).

    Returns
    -------
    corrected : ndarray (N, p) float32
    summary : dict
        Settings, number of batches, Harmony's iterations and objective, seconds taken.
    """
    t0 = time.perf_counter()
    batch = pd.Categorical(np.asarray(batch).astype(str))
    Y = np.asarray(pcs, dtype=np.float64)
    if settings.regress_library:
        if total_counts is None:
            raise NAMInputError("regress_library needs each cell's total counts")
        Y = regress_out_library(Y, total_counts)
    logger.info("Harmony on %d cells x %d PCs, %d batches (theta %g, at most %d iterations, "
                "seed %d, library regressed out first: %s)", Y.shape[0], Y.shape[1],
                len(batch.categories), settings.theta, settings.max_iter, settings.seed,
                settings.regress_library)
    corrected, objective = _harmony(Y, batch, settings, n_threads)
    seconds = time.perf_counter() - t0
    summary = {**dataclasses.asdict(settings), "n_batches": len(batch.categories),
               "n_iterations": len(objective), "objective": [float(v) for v in objective],
               "seconds": seconds}
    logger.info("Harmony done in %.1f s after %d iterations (objective %s)", seconds,
                len(objective), ", ".join(f"{v:.4g}" for v in objective[-3:]))
    return corrected.astype(np.float32), summary
