"""The comparisons between individual clusters that every table reports, and their cell-type names."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = ["contrasts", "with_cell_types"]


def contrasts(individual_clusters, sizes) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each cluster against the rest, then every pair: (label, weights of A, weights of B).

    Parameters
    ----------
    individual_clusters : sequence of str (K,)
    sizes : array (K,)
        Individuals in each cluster; "the rest" is the size-weighted mean of the other clusters.

    Returns
    -------
    list of (contrast label such as ``"I1 vs rest"`` or ``"I1 vs I2"``, weights (K,) of side A,
    weights (K,) of side B); each weight vector sums to 1.
    """
    names = list(map(str, individual_clusters))
    sizes = np.asarray(sizes, dtype=np.float64)
    K = len(names)
    out = []
    if K < 2:
        return out
    for k in range(K):
        a = np.eye(K)[k]
        b = np.where(np.arange(K) == k, 0.0, sizes)
        out.append((f"{names[k]} vs rest", a, b / b.sum()))
    if K > 2:  # with two clusters each pair is already "I1 vs rest"
        for i, j in itertools.combinations(range(K), 2):
            out.append((f"{names[i]} vs {names[j]}", np.eye(K)[i], np.eye(K)[j]))
    return out


def with_cell_types(table: pd.DataFrame, names: dict | None) -> pd.DataFrame:
    """``table`` with column cell_type after cell_cluster: ``names[cell_cluster]`` or "unassigned".

    Returns ``table`` itself, changed in place, or unchanged when ``names`` is None.
    """
    if names is None:
        return table
    table.insert(table.columns.get_loc("cell_cluster") + 1, "cell_type",
                 table["cell_cluster"].map(lambda c: names.get(c, "unassigned")))
    return table
