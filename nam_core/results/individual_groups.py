"""Individual groups: NAM's individual clusters joined where neither genotype nor cell types differ.

NAM clusters individuals by their genotype and by the composition of their cells over the cell
atoms. A technical shift that survives batch correction (a sequencing pool, say) can move cells
between two atoms of one cell type, and the individual clusters can then split one ancestry in
two along the pools: the halves have the same genotype and the same cell-type shares, and differ
only in atom shares (``docs/pools.md``). :func:`group_individual_clusters` joins such clusters,
the way :mod:`nam_core.results.cell_types` joins atoms into types. It reads the fitted labels,
the genotype PCs and the cell-type shares, and never touches the fit.

Two groups are joined when both hold:

- **the genotype does not separate them**: the error of the best linear rule between two
  Gaussians with their means and their pooled covariance on the genotype PCs, Phi(-D/2) with D
  the Mahalanobis distance between the means, is at least ``min_genotype_error`` (0.1: one
  individual in ten or more would be given the other cluster on its genotype alone). Different
  ancestries sit far beyond it (errors below 1e-6 on every cohort measured) and halves of one
  ancestry far inside (0.3 or more);
- **no cell type's share differs**: the mean share of every cell type over the groups'
  individuals differs by less than ``max_share_difference`` (0.05, five percentage points of the
  individuals' cells, the smallest difference the demo's composition check counts as real).

The closest pair (largest genotype error) is joined first and the statistics are taken again on
the joined groups, until no pair qualifies; so every member of a group passes both tests against
the rest of it, never by a chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import NAMInputError
from .labels import cluster_number

__all__ = ["MAX_SHARE_DIFFERENCE", "MIN_GENOTYPE_ERROR", "TABLE_MISSING", "IndividualGroups",
           "group_individual_clusters", "pair_statistics"]

MIN_GENOTYPE_ERROR = 0.1
MAX_SHARE_DIFFERENCE = 0.05
TABLE_COLUMNS = ["cluster", "group", "n_individuals", "nearest", "genotype_error",
                 "share_difference", "joined"]
#: The columns of ``individual_groups/groups.tsv`` that may be empty, with their meaning.
TABLE_MISSING = {
    "nearest": "a fit with one individual cluster has no other cluster to compare with",
    "genotype_error": "no other cluster, or too few individuals for a covariance of the PCs",
    "share_difference": "a fit with one individual cluster has no other cluster to compare with",
}


@dataclass
class IndividualGroups:
    """Individual clusters grouped.

    cluster_to_group : cluster label ``"I<k>"`` -> group label ``"G1"``, ``"G2"``, ... numbered
        by individuals, largest first.
    table : one row per cluster with the columns ``TABLE_COLUMNS``: its group, size, the cluster
        nearest to it in genotype (largest genotype error), the two statistics against that
        cluster, and whether the two share a group.
    """

    cluster_to_group: dict[str, str]
    table: pd.DataFrame

    def groups_of(self, clusters) -> np.ndarray:
        """Group label of each individual: array of str (J,) from its cluster label."""
        labels = np.asarray(clusters).astype(str)
        unknown = sorted(set(np.unique(labels)) - set(self.cluster_to_group))
        if unknown:
            raise NAMInputError(f"individual clusters not in the grouping: {unknown[:5]}")
        return np.array([self.cluster_to_group[c] for c in labels], dtype=object)


def pair_statistics(pcs_a: np.ndarray, pcs_b: np.ndarray, shares_a: np.ndarray,
                    shares_b: np.ndarray) -> tuple[float, float]:
    """(genotype error, share difference) between two sets of individuals.

    pcs_* : (n_*, q) genotype PCs; shares_* : (n_*, T) each individual's share of its cells in
    each cell type. The genotype error is Phi(-D/2), D^2 = d' S^-1 d with d the difference of the
    mean PCs and S the pooled within-set covariance (n_a + n_b - 2 degrees of freedom); NaN when
    those degrees of freedom are fewer than q or S is singular. The share difference is the
    largest absolute difference of mean shares over the T types.
    """
    share_difference = float(np.max(np.abs(shares_a.mean(0) - shares_b.mean(0))))
    n_a, n_b, q = len(pcs_a), len(pcs_b), pcs_a.shape[1]
    if n_a + n_b - 2 < q:
        return np.nan, share_difference
    scatter = ((pcs_a - pcs_a.mean(0)).T @ (pcs_a - pcs_a.mean(0))
               + (pcs_b - pcs_b.mean(0)).T @ (pcs_b - pcs_b.mean(0)))
    covariance = scatter / (n_a + n_b - 2)
    d = pcs_a.mean(0) - pcs_b.mean(0)
    try:
        d2 = float(d @ np.linalg.solve(covariance, d))
    except np.linalg.LinAlgError:
        return np.nan, share_difference
    if not np.isfinite(d2) or np.linalg.cond(covariance) > 1e12:
        return np.nan, share_difference
    return float(stats.norm.cdf(-np.sqrt(max(d2, 0.0)) / 2.0)), share_difference


def _check(pcs, clusters, shares):
    pcs = np.asarray(pcs, dtype=np.float64)
    shares = np.asarray(shares, dtype=np.float64)
    clusters = np.asarray(clusters).astype(str)
    if pcs.ndim != 2 or shares.ndim != 2:
        raise NAMInputError(f"pcs and shares must be 2-D (individuals, columns); got shapes "
                            f"{pcs.shape} and {shares.shape}")
    if not (len(pcs) == len(shares) == len(clusters)):
        raise NAMInputError(f"pcs, shares and clusters must have one row per individual; got "
                            f"{len(pcs)}, {len(shares)} and {len(clusters)}")
    for name, values in (("pcs", pcs), ("shares", shares)):
        if not np.isfinite(values).all():
            raise NAMInputError(f"{name} contain NaN or infinite values")
    return pcs, clusters, shares


def _joinable(stat: tuple[float, float], min_genotype_error: float,
              max_share_difference: float) -> bool:
    error, difference = stat
    return bool(np.isfinite(error) and error >= min_genotype_error
                and difference < max_share_difference)


def group_individual_clusters(pcs, clusters, shares, min_genotype_error=MIN_GENOTYPE_ERROR,
                              max_share_difference=MAX_SHARE_DIFFERENCE) -> IndividualGroups:
    """Join NAM's individual clusters that neither genotype nor cell-type shares tell apart.

    Parameters
    ----------
    pcs : array (J, q)
        The genotype PCs the fit saw, one row per individual.
    clusters : array of str (J,)
        Each individual's NAM cluster (``I<k>``).
    shares : array (J, T)
        Each individual's share of its cells in each cell type (rows sum to one).
    min_genotype_error, max_share_difference : float
        The two thresholds of the module docstring.

    Returns
    -------
    IndividualGroups
    """
    pcs, clusters, shares = _check(pcs, clusters, shares)
    names = sorted(np.unique(clusters), key=cluster_number)
    members = [[name] for name in names]
    rows = {name: np.flatnonzero(clusters == name) for name in names}

    def rows_of(group):
        return np.concatenate([rows[c] for c in group])

    while len(members) > 1:
        best, best_error = None, -np.inf
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                ra, rb = rows_of(members[a]), rows_of(members[b])
                stat = pair_statistics(pcs[ra], pcs[rb], shares[ra], shares[rb])
                if _joinable(stat, min_genotype_error, max_share_difference) and stat[0] > best_error:
                    best, best_error = (a, b), stat[0]
        if best is None:
            break
        a, b = best
        members[a] = members[a] + members.pop(b)
    return _name_groups(members, rows, pcs, shares, names)


def _name_groups(members, rows, pcs, shares, names) -> IndividualGroups:
    """Groups G1, G2, ... by individuals, largest first, and the per-cluster table."""
    sizes = [sum(len(rows[c]) for c in group) for group in members]
    order = sorted(range(len(members)),
                   key=lambda g: (-sizes[g], min(cluster_number(c) for c in members[g])))
    cluster_to_group = {c: f"G{rank + 1}" for rank, g in enumerate(order) for c in members[g]}
    table = []
    for name in names:
        nearest, stat = None, (np.nan, np.nan)
        for other in names:
            if other == name:
                continue
            ra, rb = rows[name], rows[other]
            candidate = pair_statistics(pcs[ra], pcs[rb], shares[ra], shares[rb])
            if nearest is None or np.nan_to_num(candidate[0], nan=-1.0) > np.nan_to_num(stat[0], nan=-1.0):
                nearest, stat = other, candidate
        table.append({
            "cluster": name, "group": cluster_to_group[name], "n_individuals": len(rows[name]),
            "nearest": nearest, "genotype_error": stat[0], "share_difference": stat[1],
            "joined": "" if nearest is None else
            ("yes" if cluster_to_group[nearest] == cluster_to_group[name] else "no"),
        })
    return IndividualGroups(cluster_to_group, pd.DataFrame(table, columns=TABLE_COLUMNS))
