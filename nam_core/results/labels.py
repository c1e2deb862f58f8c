"""Names of clusters, and their numbers back.

``I1, I2, ...`` for individual clusters, ``C1, C2, ...`` for cell atoms (``T3`` and
``C3 CD14 Monocyte`` are cluster 3).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import NAMInputError

__all__ = ["individual_cluster_names", "cell_cluster_names", "cluster_number", "grouped_labels"]


def individual_cluster_names(labels) -> np.ndarray:
    """``I1, I2, ...`` for 0-based individual-cluster labels (J,)."""
    return np.char.add("I", (np.asarray(labels, dtype=np.int64) + 1).astype(str))


def cell_cluster_names(labels) -> np.ndarray:
    """``C1, C2, ...`` for 0-based cell-cluster labels (N,)."""
    return np.char.add("C", (np.asarray(labels, dtype=np.int64) + 1).astype(str))


def cluster_number(name: str) -> int:
    """The first number in a cluster name: 3 for "C3" and for "C3 CD14 Monocyte"."""
    match = re.search(r"\d+", str(name))
    return int(match.group()) if match else 0


def grouped_labels(labels, label_to_group: dict, what: str) -> np.ndarray:
    """The group of each label: array of str (n,) from ``label_to_group``.

    A label without a group raises NAMInputError naming the first five (``what``: the kind of
    label, for the message).
    """
    labels = np.asarray(labels).astype(str)
    unknown = sorted(set(np.unique(labels)) - set(label_to_group))
    if unknown:
        raise NAMInputError(f"{what} not in the grouping: {unknown[:5]}")
    return np.array([label_to_group[a] for a in labels], dtype=object)
