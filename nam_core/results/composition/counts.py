"""Cells per individual and cell cluster: the counts every composition test reads."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import NAMInputError
from ..labels import cell_cluster_names

__all__ = ["MIN_MEAN_CELLS", "PSEUDO_COUNT", "cell_counts", "counts_with_cells", "group_counts",
           "tested_cell_clusters"]

logger = logging.getLogger(__name__)

#: Pseudo-count added to every cell count before the logit, as propeller does (0.5).
PSEUDO_COUNT = 0.5
#: A cell cluster is tested only when it averages at least this many cells per individual: below
#: the pseudo-count, the logit of (n + 0.5) / (N + 0.5 L) of most individuals is the pseudo-count
#: over their total N, so a test of a near-empty cluster compares cells per individual, not
#: composition. The filter sees only the pooled count, never the groups (independent filtering,
#: Bourgon et al. 2010), and the FDR is taken over the tested clusters.
MIN_MEAN_CELLS = PSEUDO_COUNT


def cell_counts(labels, group, individuals, clusters) -> pd.DataFrame:
    """``cells_per_individual.tsv`` from cell labels: individual, cluster, cells per ``C<l>``.

    Parameters
    ----------
    labels : array (N,) of int
        Cell-cluster label of each cell.
    group : array (N,) of int
        Individual code of each cell, 0..J-1.
    individuals : array (J,) of str
        Name of each individual code.
    clusters : array (J,) of str
        Individual cluster (``I<k>``) of each individual.
    """
    labels, group = np.asarray(labels), np.asarray(group)
    occupied = np.unique(labels)
    counts = np.zeros((len(individuals), len(occupied)), dtype=np.int64)
    np.add.at(counts, (group, np.searchsorted(occupied, labels)), 1)
    table = pd.DataFrame(counts, columns=[str(c) for c in cell_cluster_names(occupied)])
    table.insert(0, "cluster", np.asarray(clusters, dtype=str))
    table.insert(0, "individual", np.asarray(individuals, dtype=str))
    return table


def _group_order(groups) -> list[str]:
    """Group names in number order (T1, T2, ..., T10)."""
    return sorted(set(map(str, groups)), key=lambda g: (int("".join(filter(str.isdigit, g)) or 0), g))


def group_counts(counts: pd.DataFrame, atom_to_group: dict,
                 fixed: tuple = ("individual", "cluster")) -> pd.DataFrame:
    """A counts table per cell type: each group's column is the sum of its atoms' columns.

    Also for tables of mean proportions (``by_individual_cluster.tsv``, ``fixed`` cluster,
    n_individuals, n_cells): a mean of sums is the sum of the means.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster, then cells per atom (``C<l>``).
    atom_to_group : dict
        Atom name (``C<l>``) -> group name (``T<g>``); every atom column must have one.

    Returns
    -------
    DataFrame individual, cluster, then cells per group (``T<g>``, in number order).
    """
    atoms = [c for c in counts.columns if c not in fixed]
    missing = sorted(set(atoms) - set(map(str, atom_to_group)))
    if missing:
        raise NAMInputError(f"cell_types/groups.tsv has no row for atoms {missing}")
    groups = _group_order(atom_to_group[a] for a in atoms)
    summed = counts[atoms].T.groupby([atom_to_group[a] for a in atoms]).sum().T
    return pd.concat([counts[list(fixed)], summed[groups]], axis=1)


def counts_with_cells(counts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The cell-cluster columns (``C<l>``) of a counts table, individuals with cells only."""
    for column in ("individual", "cluster"):
        if column not in counts.columns:
            raise NAMInputError(f"counts table lacks column {column!r}; has {list(counts.columns)}")
    cell_cols = [c for c in counts.columns if c not in ("individual", "cluster")]
    if not cell_cols:
        raise NAMInputError("counts table has no cell-cluster columns")
    totals = counts[cell_cols].sum(axis=1)
    return counts.loc[totals > 0].reset_index(drop=True), cell_cols


def tested_cell_clusters(counts: pd.DataFrame, min_mean_cells: float = MIN_MEAN_CELLS) -> list[str]:
    """The cell clusters that average at least ``min_mean_cells`` cells per individual with cells.

    Parameters
    ----------
    counts : DataFrame
        individual, cluster, then cells per cell cluster.
    min_mean_cells : float
        See :data:`MIN_MEAN_CELLS`; 0 tests every cluster.

    Returns
    -------
    list of the cell-cluster column names kept, in table order.
    """
    counts, cell_cols = counts_with_cells(counts)
    mean = counts[cell_cols].to_numpy(dtype=np.float64).mean(axis=0)
    kept = [str(c) for c, m in zip(cell_cols, mean, strict=True) if m >= min_mean_cells]
    if len(kept) < len(cell_cols):
        logger.info("not tested (fewer than %g cells per individual on average): %s",
                    min_mean_cells, [c for c in cell_cols if c not in kept])
    return kept
