"""Names of clusters: ``I1, I2, ...`` for individual clusters, ``C1, C2, ...`` for cell atoms, and
their numbers back (``T3`` and ``C3 CD14 Monocyte`` are cluster 3)."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["individual_cluster_names", "cell_cluster_names", "cluster_number"]


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
