"""Do the individual clusters follow the sequencing pools? A check run after the fit.

Two measures, each against each individual's majority batch (a donor is sequenced in one pool):

- the adjusted Rand index between clusters and batches, high when the clusters *are* the batches;
- how well the batch predicts the cluster: the homogeneity ``1 - H(cluster | batch) / H(cluster)``
  (Rosenberg & Hirschberg 2007), chance-corrected against the same batches shuffled over the
  individuals, ``(h - mean h_shuffled) / (1 - mean h_shuffled)``. It is high when every batch
  holds one cluster, as when pools are confounded with ancestry, whatever the number of pools;
  the ARI misses that case when there are many more pools than clusters. The correction matters
  because small batches predict any labels partly by chance (13 donors per pool in OneK1K).

Given each individual's cluster from its genotype alone (the genotype-only groups of the
composition tests), a third measure looks inside those groups: the same chance-corrected
homogeneity within each group that holds two or more NAM clusters, averaged with the groups'
sizes as weights. It is high when NAM splits individuals of one genotype group by batch. With
many pools and several ancestries per pool the whole-cohort measures miss that: a pool's donors
sit in different clusters by ancestry, yet within an ancestry the pool decides (a 1.27M-cell
cohort in 75 pools, after Harmony: 0.80 within, 0.31 overall, ARI 0.02).

The log warns when any of them exceeds :data:`POOL_WARNING` = 0.5: the batch accounts for more
of the clustering than everything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, homogeneity_score

__all__ = ["POOL_WARNING", "BatchCheck", "batch_predicts_clusters",
           "batch_predicts_clusters_within", "majority_batch", "warn_if_clusters_follow_batches"]

logger = logging.getLogger(__name__)

#: ARI, or chance-corrected homogeneity, between the individual clusters and each individual's
#: majority batch above which the log warns.
POOL_WARNING = 0.5
#: Shuffles of the batches over individuals for the chance level of the homogeneity.
N_SHUFFLES = 200


@dataclass(frozen=True)
class BatchCheck:
    """The individual clusters against the batches.

    ari : adjusted Rand index between clusters and majority batches.
    homogeneity : chance-corrected homogeneity of the clusters given the batch (1: every batch
        holds one cluster; 0: no better than batches shuffled over the individuals).
    warned : whether any measure is above the threshold.
    within_genotype : the homogeneity within genotype-only groups
        (:func:`batch_predicts_clusters_within`; NaN when no genotype groups were given).
    """

    ari: float
    homogeneity: float
    warned: bool
    within_genotype: float = float("nan")


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


def batch_predicts_clusters(labels, batches, n_shuffles: int = N_SHUFFLES, seed: int = 0) -> float:
    """Chance-corrected homogeneity of ``labels`` (J,) given ``batches`` (J,).

    Returns 0.0 for a single cluster (nothing to predict) or a single batch (it predicts nothing).
    Seeded: the same inputs give the same value.
    """
    labels, batches = np.asarray(labels), np.asarray(batches).astype(str)
    if np.unique(labels).size < 2 or np.unique(batches).size < 2:
        return 0.0
    observed = homogeneity_score(labels, batches)
    rng = np.random.default_rng(seed)
    chance = float(np.mean([homogeneity_score(labels, rng.permutation(batches))
                            for _ in range(n_shuffles)]))
    return float((observed - chance) / (1.0 - chance)) if chance < 1.0 else 0.0


def batch_predicts_clusters_within(labels, batches, strata, n_shuffles: int = N_SHUFFLES,
                                   seed: int = 0) -> float:
    """:func:`batch_predicts_clusters` within each stratum, averaged over strata by size.

    Only strata holding two or more clusters count (in the others there is nothing to
    predict); 0.0 when there is none. ``labels``, ``batches``, ``strata``: (J,) each. Seeded.
    """
    labels, batches, strata = (np.asarray(a).astype(str) for a in (labels, batches, strata))
    values, sizes = [], []
    for stratum in np.unique(strata):
        inside = strata == stratum
        if np.unique(labels[inside]).size >= 2:
            values.append(batch_predicts_clusters(labels[inside], batches[inside], n_shuffles, seed))
            sizes.append(int(inside.sum()))
    return float(np.average(values, weights=sizes)) if values else 0.0


def warn_if_clusters_follow_batches(
    individual_labels: np.ndarray, group: np.ndarray, batch, batch_key: str,
    threshold: float = POOL_WARNING, genotype_groups: np.ndarray | None = None,
) -> BatchCheck:
    """Log a warning when the NAM individual clusters follow the batch (see the module docstring).

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
        ARI or chance-corrected homogeneity above which the warning is logged.
    genotype_groups : ndarray (J,) or None
        Each individual's cluster from its genotype alone; given, the homogeneity within these
        groups is measured and warned about too.

    Returns
    -------
    BatchCheck
    """
    labels = np.asarray(individual_labels)
    donor_batch = majority_batch(group, batch, labels.size)
    has_cells = donor_batch != ""
    ari = float(adjusted_rand_score(donor_batch[has_cells], labels[has_cells]))
    homogeneity = batch_predicts_clusters(labels[has_cells], donor_batch[has_cells])
    within = float("nan")
    if genotype_groups is not None:
        within = batch_predicts_clusters_within(labels[has_cells], donor_batch[has_cells],
                                                np.asarray(genotype_groups)[has_cells])
    check = BatchCheck(ari, homogeneity, max(ari, homogeneity, np.nan_to_num(within)) > threshold,
                       within)
    if ari > threshold or homogeneity > threshold:
        logger.warning(
            "the NAM individual clusters follow the %r column: each individual's majority %s "
            "predicts its cluster (chance-corrected homogeneity %.3f, ARI %.3f; warning above "
            "%.2f). The clusters may describe sequencing batches rather than genetics: set "
            "expression.batch_key to %r to correct the PCs. If %s is confounded with ancestry, "
            "no correction can separate the two (docs/pools.md)",
            batch_key, batch_key, homogeneity, ari, threshold, batch_key, batch_key)
    elif within > threshold:
        logger.warning(
            "NAM splits individuals of the same genotype by %r: within the groups the genotype "
            "alone gives, each individual's majority %s predicts its NAM cluster (chance-corrected "
            "homogeneity %.3f; over the whole cohort %.3f, ARI %.3f; warning above %.2f). "
            "Clusters that share a genotype group differ by %s, a batch effect the expression "
            "PCs still carry: read them as one (individual_groups/groups.tsv joins clusters that "
            "neither genotype nor cell types separate), and correct the PCs "
            "(expression.batch_key) or fit fewer individual clusters (docs/pools.md)",
            batch_key, batch_key, within, homogeneity, ari, threshold, batch_key)
    else:
        logger.info("NAM individual clusters against each individual's majority %s: "
                    "chance-corrected homogeneity %.3f (within genotype-only groups %.3f), "
                    "ARI %.3f", batch_key, homogeneity, within, ari)
    return check
