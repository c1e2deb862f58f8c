"""Do the individual clusters follow the sequencing pools? A check run after the fit."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

__all__ = ["POOL_ARI_WARNING", "majority_batch", "warn_if_clusters_follow_batches"]

logger = logging.getLogger(__name__)

#: ARI between individual clusters and each individual's majority batch above which the log warns.
POOL_ARI_WARNING = 0.5


def majority_batch(group: np.ndarray, batch, n_individuals: int) -> np.ndarray:
    """Each individual's most common batch among its cells.

    Parameters
    ----------
    group : ndarray (N,) of int
        Individual of each cell, 0..J-1.
    batch : array-like (N,)
        Batch (e.g. pool) of each cell.
    n_individuals : int
        J.

    Returns
    -------
    ndarray (J,) of str ("" for an individual without cells)
    """
    table = pd.crosstab(np.asarray(group), np.asarray(batch).astype(str))
    out = np.full(n_individuals, "", dtype=object)
    out[table.index.to_numpy()] = table.idxmax(axis=1).to_numpy()
    return out.astype(str)


def warn_if_clusters_follow_batches(
    individual_labels: np.ndarray, group: np.ndarray, batch, batch_key: str,
    threshold: float = POOL_ARI_WARNING,
) -> float:
    """Log a warning when the NAM individual clusters are predicted by the batch; return the ARI.

    Parameters
    ----------
    individual_labels : ndarray (J,) of int
        NAM individual cluster of each individual.
    group : ndarray (N,) of int
        Individual of each cell.
    batch : array-like (N,)
        Batch of each cell.
    batch_key : str
        Name of the batch column, for the message.
    threshold : float
        ARI above which the warning is logged.

    Returns
    -------
    float
        Adjusted Rand index between the clusters and each individual's majority batch.
    """
    labels = np.asarray(individual_labels)
    ari = float(adjusted_rand_score(majority_batch(group, batch, labels.size), labels))
    if ari > threshold:
        logger.warning(
            "the NAM individual clusters follow the %r column: ARI %.3f between each "
            "individual's cluster and its majority %s (above %.2f). The clusters may describe "
            "sequencing batches rather than genetics: set expression.batch_key to %r to correct "
            "the PCs, unless %s is confounded with the biology (docs/pools.md)",
            batch_key, ari, batch_key, threshold, batch_key, batch_key)
    else:
        logger.info("NAM individual clusters against each individual's majority %s: ARI %.3f",
                    batch_key, ari)
    return ari
