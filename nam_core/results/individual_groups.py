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
  ancestry far inside (0.25 or more);
- **no cell type's share differs**: the mean share of every cell type over the groups'
  individuals differs by less than ``max_share_difference`` (0.05, five percentage points of the
  individuals' cells, the smallest difference the demo's composition check counts as real).

The statistics are taken between clusters, never on joined groups (whose pooled covariance would
hold the spread between their clusters). Groups are joined by complete linkage, the pair whose
least genotype error is largest first, and only when every cluster of one passes both tests
against every cluster of the other; so a group never forms by a chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import NAMInputError
from .composition.counts import group_counts
from .labels import cluster_number, grouped_labels

__all__ = ["MAX_SHARE_DIFFERENCE", "MIN_GENOTYPE_ERROR", "TABLE_MISSING", "IndividualGroups",
           "group_cohort", "group_individual_clusters", "group_name", "pair_statistics"]

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

    cluster_to_group : cluster label ``"I<k>"`` -> group label, its clusters joined by "+"
        (``"I1+I2"``; a cluster alone keeps its name), so tables read the same with or without
        joins.
    table : one row per cluster with the columns ``TABLE_COLUMNS``: its group, size, the cluster
        nearest to it in genotype (largest genotype error), the two statistics against that
        cluster, and whether the two share a group.
    """

    cluster_to_group: dict[str, str]
    table: pd.DataFrame

    def groups_of(self, clusters) -> np.ndarray:
        """Group label of each individual: array of str (J,) from its cluster label."""
        return grouped_labels(clusters, self.cluster_to_group, "individual clusters")


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
    rows = {name: np.flatnonzero(clusters == name) for name in names}
    pairs = {}
    for i, a in enumerate(names):  # both statistics are symmetric: each pair computed once
        for b in names[i + 1:]:
            pairs[a, b] = pairs[b, a] = pair_statistics(pcs[rows[a]], pcs[rows[b]],
                                                        shares[rows[a]], shares[rows[b]])
    members = [[name] for name in names]
    while True:
        best, best_error = None, -np.inf
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                cross = [pairs[a, b] for a in members[i] for b in members[j]]
                if all(_joinable(stat, min_genotype_error, max_share_difference) for stat in cross):
                    error = min(stat[0] for stat in cross)
                    if error > best_error:
                        best, best_error = (i, j), error
        if best is None:
            break
        i, j = best
        members[i] = members[i] + members.pop(j)
    return _name_groups(members, rows, pairs, names)


def group_name(clusters) -> str:
    """A group's name: its clusters in number order joined by "+" ("I1+I2"; "I3" alone)."""
    return "+".join(sorted(map(str, clusters), key=cluster_number))


def _name_groups(members, rows, pairs, names) -> IndividualGroups:
    """The group of each cluster (:func:`group_name`) and the per-cluster table."""
    cluster_to_group = {c: group_name(group) for group in members for c in group}
    table = []
    for name in names:
        others = [other for other in names if other != name]
        nearest = max(others, key=lambda o: np.nan_to_num(pairs[name, o][0], nan=-1.0), default=None)
        error, difference = pairs[name, nearest] if nearest else (np.nan, np.nan)
        table.append({
            "cluster": name, "group": cluster_to_group[name], "n_individuals": len(rows[name]),
            "nearest": nearest, "genotype_error": error, "share_difference": difference,
            "joined": "" if nearest is None else
            ("yes" if cluster_to_group[nearest] == cluster_to_group[name] else "no"),
        })
    return IndividualGroups(cluster_to_group, pd.DataFrame(table, columns=TABLE_COLUMNS))


def group_cohort(individuals: pd.DataFrame, counts: pd.DataFrame, atom_to_group: dict,
                 min_genotype_error: float = MIN_GENOTYPE_ERROR,
                 max_share_difference: float = MAX_SHARE_DIFFERENCE
                 ) -> tuple[IndividualGroups, pd.DataFrame]:
    """Individual groups from the workflow's tables.

    Parameters
    ----------
    individuals : DataFrame
        ``individuals.tsv``: individual, cluster and the genotype PCs of the fit (``PC1``, ...).
    counts : DataFrame
        ``composition/cells_per_individual.tsv``: individual, cluster, cells per atom (``C<l>``).
    atom_to_group : dict
        Atom (``C<l>``) -> cell type (``T<g>``), from ``cell_types/groups.tsv``.

    Returns
    -------
    (IndividualGroups, DataFrame individual, cluster, group: one row per individual of
    ``individuals``, in its order).
    """
    pc_columns = [c for c in individuals.columns if str(c).startswith("PC")]
    for column in ("individual", "cluster"):
        if column not in individuals.columns:
            raise NAMInputError(f"individuals.tsv lacks column {column!r}")
    if not pc_columns:
        raise NAMInputError("individuals.tsv has no genotype PC columns (PC1, PC2, ...)")
    types = group_counts(counts, atom_to_group).set_index("individual")
    type_columns = [c for c in types.columns if c != "cluster"]
    ids = individuals["individual"].astype(str)
    missing = sorted(set(ids) - set(types.index.astype(str)))
    if missing:
        raise NAMInputError(f"cells_per_individual.tsv has no row for individuals {missing[:5]}")
    cells = types.loc[ids, type_columns].to_numpy(dtype=np.float64)
    shares = cells / np.maximum(cells.sum(1, keepdims=True), 1.0)
    clusters = individuals["cluster"].astype(str).to_numpy()
    groups = group_individual_clusters(individuals[pc_columns].to_numpy(dtype=np.float64), clusters,
                                       shares, min_genotype_error, max_share_difference)
    table = pd.DataFrame({"individual": ids.to_numpy(), "cluster": clusters,
                          "group": groups.groups_of(clusters)})
    return groups, table
