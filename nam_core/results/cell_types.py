"""Cell types as groups of NAM's cell atoms.

NAM's atoms are often sub-states of one cell type: a type whose cells are not elliptical in PC
space is fitted with several atoms. :func:`group_atoms` joins atoms into types with one of the
criteria of :mod:`nam_core.results.atom_grouping` (connected components of the joined pairs) on
a seeded subsample of at most ``max_cells`` cells, so memory stays bounded at a million cells.
It reads the PCs and the atom labels only and never touches the fit.

The subsample keeps at least ``MIN_ATOM_CELLS`` cells of every atom that has them, so a rare
atom is tested even at a million cells. An atom with fewer cells than that in the whole data
carries too little evidence for any test and is too small to report as a type: it joins the type
of the nearest tested atom (Euclidean distance between the atoms' mean PCs; statistic
``"too_few_cells"``, value the distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..errors import NAMInputError
from .atom_grouping import CRITERIA
from .labels import grouped_labels

__all__ = ["DEFAULT_CRITERION", "MIN_ATOM_CELLS", "TABLE_MISSING", "CellTypes", "atom_substates", "group_atoms"]

DEFAULT_CRITERION = "dip"
MIN_ATOM_CELLS = 10
TABLE_COLUMNS = ["atom", "group", "n_cells", "joined_with", "statistic", "value", "threshold"]
#: The columns of ``groups.tsv`` that may be empty, each with its meaning (for ``write_tsv``).
TABLE_MISSING = {
    "value": "an atom with no other atom to compare with has no statistic",
    "threshold": f"an atom of fewer than {MIN_ATOM_CELLS} cells is not tested; it joins the "
                 "type of the nearest atom",
}


@dataclass
class CellTypes:
    """Atoms grouped into cell types.

    atom_to_group : atom label -> group label ``"T1"``, ``"T2"``, ... numbered by cells,
        largest first.
    table : one row per atom with the columns ``TABLE_COLUMNS`` (``groups.tsv``).
    """

    atom_to_group: dict[str, str]
    table: pd.DataFrame

    def cell_groups(self, atom_labels) -> np.ndarray:
        """Group label of each cell: array of str (n_cells,) from its atom label."""
        return grouped_labels(atom_labels, self.atom_to_group, "atom labels")


def _components(n, joined_pairs):
    """Connected components of the joined pairs: array (n,) of each atom's smallest member."""
    if not joined_pairs:
        return np.arange(n)
    a, b = np.asarray(joined_pairs, dtype=int).T
    graph = sp.coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = {c: i for i, c in reversed(list(enumerate(component)))}
    return np.array([smallest[c] for c in component])


def _check(pcs, atom_labels, criterion):
    pcs = np.asarray(pcs, dtype=np.float64)
    labels = np.asarray(atom_labels).astype(str)
    if pcs.ndim != 2:
        raise NAMInputError(f"pcs must be a 2-D array (cells, PCs); got shape {pcs.shape}")
    if labels.shape != (pcs.shape[0],):
        raise NAMInputError(
            f"atom_labels has {labels.size} entries but pcs has {pcs.shape[0]} cells")
    if not np.isfinite(pcs).all():
        raise NAMInputError("pcs contain NaN or infinite values")
    if criterion not in CRITERIA:
        raise NAMInputError(f"unknown grouping criterion {criterion!r}; "
                            f"choose one of {sorted(CRITERIA)}")
    return pcs, labels


def group_atoms(pcs, atom_labels, criterion=DEFAULT_CRITERION, max_cells=50_000, seed=0):
    """Group NAM's cell atoms into cell types.

    Parameters
    ----------
    pcs : array (n_cells, p)
        The expression PCs NAM was fitted on.
    atom_labels : array of str (n_cells,)
        Each cell's atom (``nam_cell_cluster``).
    criterion : ``"dip"``, ``"paga"`` or ``"entropy"``.
    max_cells : int
        Cells in the seeded subsample the criterion sees.
    seed : int
        Seed of the subsample and of the tests; the same seed gives the same groups.

    Returns
    -------
    CellTypes
    """
    pcs, labels = _check(pcs, atom_labels, criterion)
    atoms, codes, n_all = np.unique(labels, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    sub = _subsample(codes, n_all, max_cells, rng)
    n_sub = np.bincount(codes[sub], minlength=len(atoms))
    usable = n_sub >= MIN_ATOM_CELLS
    edges, statistic, threshold = CRITERIA[criterion](pcs[sub], codes[sub], len(atoms),
                                                      usable, rng)
    nearest = _nearest_atom_edges(pcs, codes, n_all, usable)
    roots = _components(len(atoms), [(a, b) for a, b, _, ok in [*edges, *nearest] if ok])
    return _name_groups(atoms, n_all, roots, edges, nearest, usable, statistic, threshold)


def _subsample(codes, n_all, max_cells, rng):
    """Sorted indices of a seeded subsample of at most ``max_cells`` cells.

    Topped up so every atom with at least ``MIN_ATOM_CELLS`` cells has that many in it.
    """
    if len(codes) <= max_cells:
        return np.arange(len(codes))
    sub = rng.choice(len(codes), max_cells, replace=False)
    n_sub = np.bincount(codes[sub], minlength=n_all.size)
    extra = []
    for atom in np.flatnonzero((n_sub < MIN_ATOM_CELLS) & (n_all >= MIN_ATOM_CELLS)):
        unused = np.setdiff1d(np.flatnonzero(codes == atom), sub)
        extra.append(rng.choice(unused, MIN_ATOM_CELLS - n_sub[atom], replace=False))
    return np.sort(np.concatenate([sub, *extra]))


def _nearest_atom_edges(pcs, codes, n_all, usable):
    """(small atom, nearest tested atom, distance, True) for every atom too small to test.

    The distance is Euclidean, between the atoms' mean PCs over all their cells.
    """
    if usable.all() or not usable.any():
        return []
    means = np.column_stack([np.bincount(codes, weights=pcs[:, k], minlength=n_all.size)
                             for k in range(pcs.shape[1])]) / np.maximum(n_all, 1)[:, None]
    tested = np.flatnonzero(usable)
    edges = []
    for atom in np.flatnonzero(~usable):
        distance = np.linalg.norm(means[tested] - means[atom], axis=1)
        nearest = int(np.argmin(distance))
        edges.append((int(atom), int(tested[nearest]), float(distance[nearest]), True))
    return edges


def _name_groups(atoms, n_all, roots, edges, nearest, usable, statistic, threshold):
    """Number groups by cells (largest first, ties by first atom) and build the table.

    ``edges``: the criterion's (atom, atom, value, joined); ``nearest``: (small atom, nearest
    tested atom, distance, True) of the atoms too small to test.
    """
    sizes = {r: int(n_all[roots == r].sum()) for r in np.unique(roots)}
    order = sorted(sizes, key=lambda r: (-sizes[r], r))
    name = {r: f"T{i + 1}" for i, r in enumerate(order)}
    joined_with = [""] * len(atoms)
    value = [np.nan] * len(atoms)
    for a, b, v, ok in edges:  # the joining edge if any, else the strongest candidate
        for x, y in ((a, b), (b, a)):
            if ok and joined_with[x] == "":
                joined_with[x], value[x] = str(atoms[y]), v
            elif joined_with[x] == "" and not (v <= value[x]):
                value[x] = v
    for small, tested, distance, _ in nearest:
        joined_with[small], value[small] = str(atoms[tested]), distance
    table = pd.DataFrame({
        "atom": atoms.astype(str),
        "group": [name[r] for r in roots],
        "n_cells": n_all.astype(int),
        "joined_with": joined_with,
        "statistic": [statistic if u else "too_few_cells" for u in usable],
        "value": np.asarray(value, dtype=float),
        "threshold": np.where(usable, float(threshold), np.nan),
    })
    table = table.sort_values(["group", "n_cells"], ascending=[True, False],
                              key=lambda s: s.str[1:].astype(int) if s.name == "group" else s)
    table = table.reset_index(drop=True)
    return CellTypes(dict(zip(table["atom"], table["group"], strict=True)), table)


def atom_substates(groups: pd.DataFrame, atom_names: pd.DataFrame, type_names: pd.DataFrame,
                   markers: pd.DataFrame, n_markers: int = 3) -> pd.DataFrame:
    """Each atom read as a sub-state of its cell type (``cell_types/atoms.tsv``).

    Parameters
    ----------
    groups : DataFrame
        ``cell_types/groups.tsv`` (atom, group, n_cells, joined_with, statistic, value).
    atom_names, type_names : DataFrame
        ``cell_types/names.tsv`` (per atom, key ``cluster``) and ``type_names.tsv`` (per type,
        key ``group``), each with ``cell_type``.
    markers : DataFrame
        ``markers.tsv`` of the atoms (cluster, rank, gene).
    n_markers : int
        Top markers of each atom listed.

    Returns
    -------
    DataFrame, one row per atom, types in number order and atoms by size within a type:
    group, cell_type (the type's name), atom, atom_name (the name the atom would get alone),
    n_cells, share_of_type (of the type's cells, in [0, 1]), top_markers (comma-separated),
    joined_with, statistic, value.
    """
    type_name = dict(zip(type_names["group"].astype(str), type_names["cell_type"], strict=True))
    atom_name = dict(zip(atom_names["cluster"].astype(str), atom_names["cell_type"], strict=True))
    top = (markers[markers["rank"] <= n_markers].sort_values(["cluster", "rank"])
           .groupby("cluster")["gene"].agg(",".join))
    table = groups.copy()
    table["atom"] = table["atom"].astype(str)
    missing = sorted(set(table["group"].astype(str)) - set(type_name))
    if missing:
        raise NAMInputError(f"cell_types/type_names.tsv has no name for types {missing}")
    type_cells = table.groupby("group")["n_cells"].transform("sum")
    out = pd.DataFrame({
        "group": table["group"].astype(str),
        "cell_type": table["group"].astype(str).map(type_name),
        "atom": table["atom"],
        "atom_name": table["atom"].map(atom_name).fillna(""),
        "n_cells": table["n_cells"].astype(int),
        "share_of_type": (table["n_cells"] / type_cells).round(4),
        "top_markers": table["atom"].map(top).fillna(""),
        "joined_with": table["joined_with"].fillna(""),
        "statistic": table["statistic"],
        "value": table["value"],
    })
    order = out["group"].str[1:].astype(int)
    return (out.assign(_order=order).sort_values(["_order", "n_cells"], ascending=[True, False])
            .drop(columns="_order").reset_index(drop=True))
