"""How sure the fit is of its partition of individuals: co-clustering and near-tied alternatives.

* :func:`coclustering` — the probability that two individuals share a cluster under q,
  sum_k rho_jk rho_j'k (the factors q(S_j) are independent under mean field).
* :func:`alternatives_table` — the partitions the merge search evaluated (the fitted model's
  ``alternatives_``), with their ELBO gap to the kept fit, best first; a gap below
  ``near_tie_nats`` is flagged as a near-tie.
* :func:`genotype_homogeneity` — the share of genotype-PC variance explained by a partition.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import NAMInputError

__all__ = [
    "DEFAULT_NEAR_TIE_NATS",
    "ALTERNATIVE_COLUMNS",
    "coclustering",
    "coclustering_order",
    "alternatives_table",
    "genotype_homogeneity",
]

logger = logging.getLogger(__name__)

#: Gap (nats) below which an alternative partition is a near-tie of the kept fit: 3 nats is a
#: likelihood ratio of e^3 = 20, the "strong evidence" boundary of Kass & Raftery (1995) on the
#: 2 log B scale (2 x 3 = 6). Float32 fits move their ELBO by far less than that between runs.
DEFAULT_NEAR_TIE_NATS = 3.0

ALTERNATIVE_COLUMNS = ["search", "keep", "drop", "n_clusters", "elbo", "gap_nats", "near_tie"]


def coclustering(rho) -> np.ndarray:
    """Co-clustering probabilities P(S_j = S_j') = sum_k rho_jk rho_j'k under q.

    Parameters
    ----------
    rho : array (J, K)
        q(S_j = k) (``NAM.rho_``); rows sum to 1.

    Returns
    -------
    ndarray (J, J) float64, symmetric, in [0, 1]; the diagonal is sum_k rho_jk^2 (1 for an
    individual assigned with certainty), not 1.
    """
    rho = np.asarray(rho, dtype=np.float64)
    if rho.ndim != 2:
        raise NAMInputError(f"rho must be (J, K), got shape {rho.shape}")
    return np.clip(rho @ rho.T, 0.0, 1.0)


def coclustering_order(matrix: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering on 1 - co-clustering (for the heatmap).

    Returns
    -------
    ndarray (J,) of int, a permutation of the individuals.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    J = matrix.shape[0]
    if J < 3:
        return np.arange(J)
    dist = 1.0 - np.asarray(matrix, dtype=np.float64)
    np.fill_diagonal(dist, 0.0)
    dist = np.clip((dist + dist.T) / 2, 0.0, None)
    return leaves_list(linkage(squareform(dist, checks=False), method="average",
                               optimal_ordering=J <= 2000))


def alternatives_table(model, near_tie_nats: float = DEFAULT_NEAR_TIE_NATS) -> tuple[pd.DataFrame, str]:
    """The evaluated merge candidates of a fit, best (smallest ELBO gap) first.

    Parameters
    ----------
    model : fitted NAM
        Uses ``elbo_`` and ``alternatives_``: a list of dicts with keys search (int, 0-based),
        keep, drop (individual-cluster labels at the time of that search), n_clusters (occupied
        individual clusters after the merge), elbo (float) and accepted (bool).
    near_tie_nats : float
        A candidate with gap_nats = elbo_ - elbo below this is a near-tie.

    Returns
    -------
    table : DataFrame with :data:`ALTERNATIVE_COLUMNS`, sorted by gap_nats then search: the
        candidates the search rejected (an accepted merge is the fit itself, not an alternative);
        search numbered from 1, keep and drop as individual-cluster names (``I<label + 1>``, the
        labels at the time of that search), elbo and gap_nats to 0.01 nat; empty
        (header only) when the model has no ``alternatives_`` (fits saved before the merge search
        recorded its candidates) or the search evaluated none.
    note : str
        One line for the log: how many candidates and near-ties, or why the table is empty.
    """
    if not near_tie_nats > 0:
        raise NAMInputError(f"near_tie_nats must be positive, got {near_tie_nats}")
    records = getattr(model, "alternatives_", None)
    if records is None:
        return (pd.DataFrame(columns=ALTERNATIVE_COLUMNS),
                "the fit has no alternatives_ (saved before the merge search recorded its "
                "candidates, or fitted with merge=False): alternatives table left empty")
    table = pd.DataFrame.from_records(list(records))
    if table.empty:
        return (pd.DataFrame(columns=ALTERNATIVE_COLUMNS),
                "the merge search evaluated no candidate partition (one occupied cluster)")
    missing = {"search", "keep", "drop", "n_clusters", "elbo", "accepted"} - set(table.columns)
    if missing:
        raise NAMInputError(f"alternatives_ records lack keys {sorted(missing)}")
    accepted = table["accepted"].astype(bool)
    n_searches = table["search"].nunique()
    table = table[~accepted].copy()
    table["elbo"] = table["elbo"].astype(np.float64)
    table["gap_nats"] = (float(model.elbo_) - table["elbo"]).round(2)
    table["near_tie"] = table["gap_nats"] < near_tie_nats
    table["elbo"] = table["elbo"].round(2)
    table["search"] = table["search"].astype(np.int64) + 1
    table["n_clusters"] = table["n_clusters"].astype(np.int64)
    for column in ("keep", "drop"):
        table[column] = "I" + (table[column].astype(np.int64) + 1).astype(str)  # as in the tables
    table = table.sort_values(["gap_nats", "search"], kind="stable").reset_index(drop=True)
    note = (f"{len(table)} rejected candidate partitions from {n_searches} merge searches "
            f"({int(accepted.sum())} accepted merges left out: they are the fit); "
            f"{int(table['near_tie'].sum())} within {near_tie_nats:g} nats of the kept fit")
    return table[ALTERNATIVE_COLUMNS], note


def genotype_homogeneity(pcs, labels) -> float:
    """Share of genotype-PC variance explained by a partition: between-cluster SS / total SS.

    Parameters
    ----------
    pcs : array (J, q)
        Genotype PCs of the individuals.
    labels : array (J,)
        Cluster of each individual.

    Returns
    -------
    float in [0, 1] (sums of squares pooled over the PCs; 0 for a single cluster).
    """
    X = np.asarray(pcs, dtype=np.float64)
    labels = np.asarray(labels)
    if X.shape[0] != labels.shape[0]:
        raise NAMInputError(f"{X.shape[0]} rows of PCs but {labels.shape[0]} labels")
    total = ((X - X.mean(0)) ** 2).sum()
    within = sum(((X[labels == k] - X[labels == k].mean(0)) ** 2).sum() for k in np.unique(labels))
    return float(1.0 - within / total) if total > 0 else 0.0
